//! The freshness and resilience policies' part of a call: answering before a load
//! ends (a stale value the leader found in Redis, a kept value past a `timeout`, or a
//! `hard_timeout` error), answering in place of a failed load (fail-safe), and what
//! a fresh hit past its refresh point means (refresh-ahead, XFetch, sliding).

use std::future::Future;
use std::panic;

use super::lead::{Keep, Lead};
use super::read::Role;
use super::{
    xfetch, Cache, CacheKey, CacheValue, Lifetime, Seen, ShareFn, Tags, TimedOutFn, NEVER,
};
use crate::clock;
use crate::error::TimedOut;
use crate::flight::{Flight, Landed, Origin};
use crate::l1::L1Store;
use crate::l2::entry::SharedFallback;
use crate::shape::Shape;
use crate::stats::Counter;
use crate::tags::{self, Stamps};

/// A value that can answer in place of a failed load.
pub(super) struct Fallback<V> {
    value: V,
    stamps: Stamps,
    /// How long it is still fresh (a failed refresh-ahead must not shorten that)
    /// and may still be kept, in milliseconds from now.
    fresh_for: u64,
    keep_for: u64,
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// A miss that may be answered before its load ends: under a `timeout`, or with
    /// stale-while-revalidate (the leader may find a stale value in Redis). The load
    /// runs in its own task, so a caller that stops waiting does not stop it. The
    /// leading caller awaits that task, the others the flight; each takes a stale
    /// value the leader offers, or, past the timeout, a value still kept in L1, and
    /// the load goes on to refresh the cache. With neither, the caller waits.
    pub(super) async fn load_detached<S, M, F>(
        &'static self,
        key: K,
        share: ShareFn<S>,
        make: M,
        runtime: tokio::runtime::Handle,
        timed_out: TimedOutFn<S>,
    ) -> S::Out
    where
        S: Shape<Value = V> + 'static,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F) + Send + 'static,
        F: Future<Output = S::Out> + Send + 'static,
    {
        let mut make = Some(make);
        loop {
            let (flight, task) = match self.join_or_lead(&key) {
                Role::Hit(value) => {
                    self.stats.bump(Counter::L1Hit);
                    return S::join(value);
                }
                Role::Lead(flight) => {
                    let make = make.take().expect("a caller leads at most once");
                    let lead = Lead::new(self, key.clone(), flight.clone());
                    let task = runtime.spawn(self.lead::<S, _, _>(lead, share, make));
                    (flight, Some(task))
                }
                Role::Follow(flight) => (flight, None),
            };
            let outcome = async {
                match task {
                    Some(task) => Err(task.await),
                    None => Ok(flight.wait(share).await),
                }
            };
            let patience = self.patience::<S>(&key, timed_out);
            let landed = tokio::select! {
                outcome = outcome => outcome,
                stale = flight.stale_offered() => {
                    self.stats.bump(Counter::L2Hit);
                    self.stats.bump(Counter::StaleServed);
                    return S::join(stale);
                }
                kept = patience => match kept {
                    Ok(value) => return self.answer_stale::<S>(value),
                    Err(timed_out) => {
                        self.stats.bump(Counter::Miss);
                        return timed_out;
                    }
                },
            };
            match landed {
                // The leading caller: its own task hands back the outcome.
                Err(Ok((out, origin))) => {
                    self.count(origin);
                    return out;
                }
                Err(Err(error)) => panic::resume_unwind(error.into_panic()),
                // A follower keeps its `make` on a retry: it may lead the next try.
                Ok(landed) => {
                    if let Some(out) = self.answer_follower::<S>(landed) {
                        return out;
                    }
                }
            }
        }
    }

    /// Past `timeout`: a value still kept for `key`, or with `hard_timeout` the
    /// function's error; never, without a timeout or either of those.
    async fn patience<S>(&self, key: &K, timed_out: TimedOutFn<S>) -> Result<V, S::Out>
    where
        S: Shape<Value = V>,
    {
        let Some(timeout) = self.options.timeout else {
            return std::future::pending().await;
        };
        tokio::time::sleep(timeout).await;
        match (self.kept_value(key), timed_out) {
            (Some(value), _) => Ok(value),
            (None, Some(timed_out)) => Err(timed_out(TimedOut {
                cache: self.name.to_string(),
                after: timeout,
            })),
            (None, None) => std::future::pending().await,
        }
    }

    /// A value still kept for `key` (stale, or a fail-safe fallback), not invalidated.
    fn kept_value(&self, key: &K) -> Option<V> {
        let now = clock::coarse_ms();
        self.store
            .read(key, |e| {
                e.is_retained(now, self.tag_epoch).then(|| e.value.clone())
            })
            .flatten()
    }

    fn answer_stale<S: Shape<Value = V>>(&self, value: V) -> S::Out {
        self.stats.bump(Counter::L1Hit);
        self.stats.bump(Counter::StaleServed);
        S::join(value)
    }

    /// A value to answer with in place of a failed load: the entry still kept in L1, or
    /// the one Redis held, within the fail-safe window and not invalidated.
    pub(super) fn fallback(
        &self,
        key: &K,
        shared: Option<SharedFallback<V>>,
    ) -> Option<Fallback<V>> {
        self.options.fail_safe?;
        let now = clock::precise_ms();
        let kept = self.store.read(key, |entry| {
            let keep_until = entry.times.keep_until();
            if now >= keep_until {
                return None;
            }
            let stamps = entry.stamps.to_load(&self.tag)?;
            Some(Fallback {
                value: entry.value.clone(),
                stamps,
                fresh_for: entry.times.fresh_until().saturating_sub(now),
                keep_for: keep_until - now,
            })
        });
        kept.flatten().or_else(|| {
            let SharedFallback {
                value,
                lifetime,
                stamps,
            } = shared?;
            // Redis's tag versions were current when it was read; the stamps taken
            // before that read carry that moment into L1.
            let keep_for = lifetime.fresh_for.saturating_add(lifetime.keep_for);
            tags::all_current(&stamps).then_some(Fallback {
                value,
                stamps,
                fresh_for: 0,
                keep_for,
            })
        })
    }

    /// Answers the leader and its waiters with `fallback`, and keeps it as fresh for
    /// the retry back-off so the failing loader is not called again for that key in
    /// the meantime (then it is retried; the value stays as a fallback until its
    /// window ends).
    pub(super) fn answer_with_fallback<S>(
        &self,
        lead: &mut Lead<'_, K, V>,
        fallback: Fallback<V>,
    ) -> S::Out
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
    {
        let back_off = clock::to_ms(self.options.fail_safe_retry).min(fallback.keep_for);
        let fresh_for = back_off.max(fallback.fresh_for);
        let lifetime = Lifetime {
            fresh_for,
            stale_for: 0,
            keep_for: fallback.keep_for - fresh_for,
            refresh_after: NEVER,
        };
        let value = fallback.value;
        let keep = Keep {
            value: value.clone(),
            stamps: fallback.stamps,
            lifetime: Some(lifetime),
        };
        lead.land_with::<S::Out>(
            || Landed::Value(value.clone(), Origin::FailSafe),
            Some(keep),
        );
        S::join(value)
    }

    /// A background refresh (stale-while-revalidate, refresh-ahead) that failed,
    /// without `stale_if_error` (whose fail-safe answer backs off the same way): the
    /// held value stays, and no read refreshes it again for `retry_after`'s default
    /// back-off, within the windows it already had: a stale value is served as fresh
    /// until then, and a refresh ahead is due then. Before, every read in the window
    /// started another load of the failing loader.
    pub(super) fn back_off_failed_refresh(&self, key: &K, flight: &Flight<V>) {
        if !flight.is_refresh() {
            return;
        }
        let now = clock::precise_ms();
        let retry_at = now.saturating_add(clock::to_ms(self.options.fail_safe_retry));
        let _flights = self.flights.lock();
        // Invalidated while it loaded: the value is gone, or not to be served.
        if flight.is_doomed() {
            return;
        }
        self.store.update(key, |entry| {
            let mut times = entry.times.get();
            if now >= times.stale_until {
                return;
            }
            if now >= times.fresh_until {
                times.fresh_until = retry_at.min(times.stale_until);
            }
            times.refresh_at = retry_at.min(times.fresh_until);
            entry.times = times.into();
        });
    }

    /// A fresh hit past its `refresh_at` (out of line: the hit path stays small).
    /// `refresh_ahead = 0.8`: refresh. XFetch: refresh by chance (`xfetch.rs`).
    /// `sliding`: extend, and answer as fresh.
    #[cold]
    pub(super) fn past_refresh_point(&self, key: &K, value: V, now: u64) -> Seen<V> {
        if self.options.sliding {
            self.slide(key, now);
            return Seen::Fresh(value);
        }
        let due = match self.options.xfetch {
            None => true,
            Some(beta) => {
                let fresh_until = self.store.read(key, |entry| entry.times.fresh_until());
                let gap_ms = fresh_until.unwrap_or(now).saturating_sub(now);
                let delta = self
                    .recent_load_micros
                    .load(std::sync::atomic::Ordering::Relaxed);
                xfetch::due(gap_ms, delta, beta, xfetch::draw)
            }
        };
        if due {
            Seen::Refresh(value)
        } else {
            Seen::Fresh(value)
        }
    }
}
