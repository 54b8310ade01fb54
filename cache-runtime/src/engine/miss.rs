//! A call that missed L1 (or asked to reload): it joins the key's flight, or leads a
//! load through the pipeline's steps, again when the flight it joined cannot answer.

use std::future::Future;
use std::pin::pin;

use super::lead::Lead;
use super::loader::{self, Hatch};
use super::read::Role;
use super::reentry;
use super::{Cache, CacheKey, CacheValue, ShareFn, Tags};
use crate::flight::{Landed, Origin};
use crate::shape::Shape;
use crate::stats::Counter;

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// A call that missed L1 (or asked to reload, `forced`): joins the key's flight,
    /// or leads a load; again when the flight it joined cannot answer it. `make` is
    /// called only if this call leads.
    pub(super) async fn load<S, M, F>(
        &self,
        key: K,
        share: ShareFn<S>,
        make: M,
        forced: bool,
    ) -> S::Out
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        let hatch = Hatch::default();
        let steps = pin!(self.load_steps::<S>(key, share, forced, &hatch));
        loader::drive(steps, &hatch, make).await
    }

    /// [`load`](Self::load) but for its loader, which it asks `hatch` for.
    async fn load_steps<S>(
        &self,
        key: K,
        share: ShareFn<S>,
        mut forced: bool,
        hatch: &Hatch<S::Out>,
    ) -> S::Out
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        loop {
            let role = if std::mem::take(&mut forced) {
                Role::Lead(self.reload_flight(&key))
            } else {
                self.join_or_lead(&key)
            };
            match role {
                Role::Hit(value) => {
                    self.stats.bump(Counter::L1Hit);
                    return S::join(value);
                }
                Role::Lead(flight) => {
                    // Boxed: a caller that finds the key loading, or loaded, carries
                    // none of the leader's steps.
                    let lead = Lead::new(self, key, flight);
                    let (out, origin) = Box::pin(self.lead_steps::<S>(lead, share, hatch)).await;
                    self.count(origin);
                    return out;
                }
                Role::Follow(flight) => {
                    reentry::refuse_own_flight(reentry::flight_id(&flight), &self.name);
                    if let Some(out) = self.answer_follower::<S>(flight.wait(share).await) {
                        return out;
                    }
                }
            }
        }
    }

    /// A waiter's answer from the flight it joined, counted; `None` when the flight
    /// could not answer (its leader was cancelled, or its outcome cannot be shared)
    /// and the waiter must go round again, possibly as the next leader.
    pub(super) fn answer_follower<S>(&self, landed: Landed<V, S::Out>) -> Option<S::Out>
    where
        S: Shape<Value = V>,
    {
        match landed {
            Landed::Value(value, origin) => {
                self.count(origin);
                Some(S::join(value))
            }
            Landed::Shared(out) => {
                self.stats.bump(Counter::Miss);
                Some(out)
            }
            Landed::Absent => S::absent().inspect(|_| self.stats.bump(Counter::Miss)),
            Landed::Retry => None,
            Landed::Panicked(message) => {
                self.stats.bump(Counter::Miss);
                panic!("the loader of cache `{}` panicked: {message}", self.name)
            }
        }
    }

    /// Counts how a caller that missed L1 was answered.
    pub(super) fn count(&self, origin: Origin) {
        self.stats.bump(origin.counter());
        if origin == Origin::FailSafe {
            self.stats.bump(Counter::StaleServed);
        }
    }
}
