//! The steps of one single-key load around its loader, kept apart from the loader's
//! type: [`prepare`](Cache::prepare) (1. read the shared tier, 2. take the fleet lock)
//! and [`settle_outcome`](Cache::settle_outcome) (4. settle the outcome with the `this_load`
//! overrides, 5. land in L1, 6. write back, 7. announce). The steps ask for the loader
//! through a hatch (step 3, [`loader`]), so only its small driver is
//! generic over the loader: an edit of a cached function's body recompiles that,
//! not the pipeline.

use std::any::Any;
use std::future::Future;
use std::panic;
use std::pin::pin;
use std::time::Instant;

use super::lead::{in_span, panic_message, Lead, Outcome};
use super::loader::{self, Hatch};
use super::reentry;
use super::shared;
use super::{Cache, CacheKey, CacheValue, ShareFn, Tags};
use crate::flight::{Landed, Origin};
use crate::l2::entry::{HeldLock, SharedFallback, Target, WriteUnder};
use crate::shape::{Shape, Split};
use crate::stats::Counter;
use crate::superseded::Writing;
use crate::tags::Stamps;
use crate::this_load::Overrides;

/// A load whose loader is about to run: what steps 1 and 2 found, carried to step 4.
pub(super) struct Pending<'a, K: CacheKey, V: CacheValue> {
    lead: Lead<'a, K, V>,
    stamps: Stamps,
    /// `None` without a Redis target: a local load carries none of it.
    shared: Option<Box<SharedLoad<V>>>,
    span: tracing::Span,
    /// When the load began, for its span; `None` when no subscriber records the span.
    began: Option<Instant>,
}

/// What a load with a Redis target found there. Boxed: a load's future holds its
/// `Pending`, and every move of that future copies it whole.
struct SharedLoad<V> {
    target: Target,
    /// What the read before the loader found (tag versions, the entry) to write back
    /// under; `None`: do not write back.
    under: Option<WriteUnder>,
    fallback: Option<SharedFallback<V>>,
    /// The fleet lock, released after the write-back (or by a task if the load is
    /// dropped before).
    held: Option<HeldLock>,
    /// A `refresh!`'s value is newer than what Redis holds until written there (as a
    /// `put!`'s is): from its landing to its write-back, a read of its entry from
    /// Redis here misses. Held here, not in the load's future, which every move copies.
    writing: Option<Writing>,
}

/// What steps 1 and 2 leave: an answer from Redis, or a load to run.
pub(super) enum Prepared<'a, K: CacheKey, V: CacheValue> {
    Answered(V),
    Load(Pending<'a, K, V>),
}

impl<K: CacheKey, V: CacheValue> Pending<'_, K, V> {
    fn finish(&self, answered_by: &str, outcome: &str) {
        record_answer(&self.span, self.began, answered_by, outcome);
    }

    fn take_fallback(&mut self) -> Option<SharedFallback<V>> {
        self.shared.as_mut()?.fallback.take()
    }

    fn target(&self) -> Option<&Target> {
        Some(&self.shared.as_deref()?.target)
    }
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// Runs the leader's part: the named steps of a load, in its span. `lead` is the
    /// flight's guard, made where the flight was registered: dropped at any point, it
    /// hands the load to a waiter.
    pub(super) async fn lead<S, M, F>(
        &self,
        lead: Lead<'_, K, V>,
        share: ShareFn<S>,
        make: M,
    ) -> (S::Out, Origin)
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        let hatch = Hatch::default();
        let steps = pin!(self.lead_steps::<S>(lead, share, &hatch));
        loader::drive(steps, &hatch, make).await
    }

    /// [`lead`](Self::lead) but for its loader, which it asks `hatch` for.
    pub(super) async fn lead_steps<S>(
        &self,
        lead: Lead<'_, K, V>,
        share: ShareFn<S>,
        hatch: &Hatch<S::Out>,
    ) -> (S::Out, Origin)
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        let span = self.load_span();
        // The tags serve only here, between two awaits: the load's stamps and its
        // Redis target are taken from them, so the load's future does not carry them.
        let (stamps, target) = {
            let tags = hatch.make(&span).await;
            let stamps = self.stamp(&tags);
            (stamps, self.shared_target(&lead.key, &tags).map(Box::new))
        };
        // 1. read the shared tier, 2. take the fleet lock.
        let mut load = {
            let prepared = self.prepare::<S::Out>(lead, stamps, target, span.clone());
            let prepared = pin!(prepared);
            match in_span(&span, prepared).await {
                Prepared::Answered(value) => return (S::join(value), Origin::L2),
                Prepared::Load(load) => load,
            }
        };
        // 3. run the loader, in its turn if `max_loads` bounds this cache.
        let flight = reentry::flight_id(&load.lead.flight);
        let run = hatch.run(flight);
        let (outcome, overrides, _) = self.run_loader(run, &span).await;
        // 4. settle, 5. land in L1, 6. write back, 7. announce.
        let settled = pin!(self.settle_outcome::<S>(&mut load, outcome, overrides, share));
        in_span(&span, settled).await
    }

    /// Steps 1 and 2: the shared tier, then the fleet lock; either may answer.
    /// `target` is boxed: a load's future holds it, and a local load has none.
    pub(super) async fn prepare<'a, Out: Send + 'static>(
        &self,
        mut lead: Lead<'a, K, V>,
        stamps: Stamps,
        target: Option<Box<Target>>,
        span: tracing::Span,
    ) -> Prepared<'a, K, V> {
        let began = (!span.is_disabled()).then(Instant::now);
        lead.flight.set_stamps(stamps.clone());
        let before = self.read_before_load::<Out>(&mut lead, target.as_deref(), &stamps);
        let (under, fallback) = match before.await {
            shared::Before::Answered(value) => {
                record_answer(&span, began, "l2", "hit");
                return Prepared::Answered(value);
            }
            shared::Before::Load { under, fallback } => (under, fallback),
        };
        let may_lock = under.is_some();
        let locking = self.lock_before_load::<Out>(&mut lead, target.as_deref(), &stamps, may_lock);
        let held = match locking.await {
            Ok(held) => held,
            Err(value) => {
                record_answer(&span, began, "l2", "hit");
                return Prepared::Answered(value);
            }
        };
        let shared = target.map(|target| {
            Box::new(SharedLoad {
                target: *target,
                under,
                fallback,
                held,
                writing: None,
            })
        });
        Prepared::Load(Pending {
            lead,
            stamps,
            shared,
            span,
            began,
        })
    }

    /// Releases the fleet lock `load` holds, if it holds one (once: it is taken out).
    fn release_lock<'a>(
        &'a self,
        load: &'a mut Pending<'_, K, V>,
    ) -> impl Future<Output = ()> + 'a {
        let (target, held) = match load.shared.as_deref_mut() {
            Some(shared) => (Some(&shared.target), shared.held.take()),
            None => (None, None),
        };
        self.unlock(target, held)
    }

    /// Steps 4 to 7: what is cached and what the waiters get, then L1, then Redis.
    pub(super) async fn settle_outcome<S>(
        &self,
        load: &mut Pending<'_, K, V>,
        outcome: Outcome<S::Out>,
        overrides: Overrides,
        share: ShareFn<S>,
    ) -> (S::Out, Origin)
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        let out = match outcome {
            Ok(out) => out,
            // Boxed, as every step that only some loads take: a load's future is as
            // large as its largest step, and is copied whole on each move.
            Err(payload) => return Box::pin(self.settle_panic::<S>(load, payload)).await,
        };
        let value = match S::split(out) {
            Split::Store(value) => value,
            Split::StoreFailed(value) => {
                self.stats.bump(Counter::LoadError);
                value
            }
            Split::Error(out) => {
                self.release_lock(load).await;
                self.stats.bump(Counter::LoadError);
                let kept = load.take_fallback();
                if let Some(fallback) = self.fallback(&load.lead.key, kept) {
                    load.finish("loader", "fail-safe");
                    let out = self.answer_with_fallback::<S>(&mut load.lead, fallback);
                    return (out, Origin::FailSafe);
                }
                self.back_off_failed_refresh(&load.lead.key, &load.lead.flight);
                return self.settle_without_value::<S>(load, out, share, "error");
            }
            Split::Empty(out) => {
                self.release_lock(load).await;
                let refreshed = self.evict_refreshed(&load.lead.key, &load.lead.flight);
                let answer = self.settle_without_value::<S>(load, out, share, "empty");
                if refreshed {
                    Box::pin(self.drop_refreshed_in_redis(&load.lead.key, load.target())).await;
                }
                return answer;
            }
        };
        self.store_loaded(load, &value, overrides).await;
        (S::join(value), Origin::Loader)
    }

    /// An `Err` or a `None`: the waiters get a copy when the shape can share one, else
    /// they load in turn.
    fn settle_without_value<S>(
        &self,
        load: &mut Pending<'_, K, V>,
        out: S::Out,
        share: ShareFn<S>,
        outcome: &str,
    ) -> (S::Out, Origin)
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        let landed = || share.map_or(Landed::Retry, |share| Landed::Shared(share(&out)));
        load.lead.land_with::<S::Out>(landed, None);
        load.finish("loader", outcome);
        (out, Origin::Loader)
    }

    async fn settle_panic<S>(
        &self,
        load: &mut Pending<'_, K, V>,
        payload: Box<dyn Any + Send>,
    ) -> (S::Out, Origin)
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        self.release_lock(load).await;
        self.stats.bump(Counter::LoadError);
        let message = panic_message(&*payload).to_owned();
        let kept = load.take_fallback();
        if let Some(fallback) = self.fallback(&load.lead.key, kept) {
            tracing::error!(cache = %self.name, panic = %message, "stratacache: the loader panicked; answered with the fail-safe value");
            load.finish("loader", "fail-safe");
            let out = self.answer_with_fallback::<S>(&mut load.lead, fallback);
            return (out, Origin::FailSafe);
        }
        self.back_off_failed_refresh(&load.lead.key, &load.lead.flight);
        self.stats.bump(Counter::Miss);
        load.lead
            .land::<S::Out>(Landed::Panicked(message.into()), None);
        load.finish("loader", "panic");
        panic::resume_unwind(payload);
    }

    /// Steps 5 to 7 for a value: land in L1 under the tags the loader added too,
    /// answering the waiters; then write back (waiters do not wait for Redis); then
    /// release the lock, so processes waiting on it find the value, not a free lock.
    async fn store_loaded(&self, load: &mut Pending<'_, K, V>, value: &V, overrides: Overrides) {
        if let (Some(shared), true) = (load.shared.as_deref_mut(), load.lead.flight.is_forced()) {
            shared.writing = Some(Writing::new(&shared.target.entry_key));
        }
        let settled = self.settle_overrides(overrides);
        let refreshed = settled.skip && self.evict_refreshed(&load.lead.key, &load.lead.flight);
        let landed = || Landed::Value(value.clone(), Origin::Loader);
        load.lead
            .land_with::<()>(landed, settled.keep(value, &load.stamps));
        // Read once landed (a `refresh!`'s landing counts as a write of its key), with
        // no yield since: see `write_back_after_load`.
        let writes_before = self.flights.writes();
        if refreshed {
            Box::pin(self.drop_refreshed_in_redis(&load.lead.key, load.target())).await;
        }
        let shared = load.shared.as_deref_mut();
        if let (Some(shared), false) = (shared, settled.skip) {
            let under = shared.under.take();
            let (flight, target) = (&load.lead.flight, &shared.target);
            let key = self.flights.key_hash(&load.lead.key);
            let unwritten = || !self.flights.lock().written_since(writes_before, key);
            let write =
                self.write_back_after_load(flight, target, value, under, &settled, &unwritten);
            Box::pin(write).await;
            shared.writing = None;
        }
        self.release_lock(load).await;
        load.finish("loader", "ok");
    }
}

fn record_answer(span: &tracing::Span, began: Option<Instant>, answered_by: &str, outcome: &str) {
    // Reading the clock costs more than the rest of a disabled span.
    let Some(began) = began else { return };
    span.record("answered_by", answered_by);
    span.record("outcome", outcome);
    span.record("micros", began.elapsed().as_micros() as u64);
}
