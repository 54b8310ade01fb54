//! The leader's side of a flight: landing its outcome for the waiters (and storing
//! the value) exactly once, even when the leader's future is dropped mid-load; the
//! loader's turn and its duration (step 3, around [`loader`](super::loader)).

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;

use super::{Cache, CacheKey, CacheOptions, CacheValue, Lifetime};
use crate::clock;
use crate::flight::{Flight, Landed, Origin};
use crate::flights::Locked;
use crate::l1::L1Store;
use crate::l2::entry::AddedTags;
use crate::stats::Counter;
use crate::tags::{self, Stamps};
use crate::this_load::Overrides;

/// A loader's outcome: its output, or the payload of its panic.
pub(super) type Outcome<Out> = Result<Out, Box<dyn Any + Send>>;

/// What a landing stores in L1: the value, its stamps, and its remaining lifetime
/// when it came from Redis (else the cache's own ttl applies).
pub(super) struct Keep<V> {
    pub(super) value: V,
    pub(super) stamps: Stamps,
    pub(super) lifetime: Option<Lifetime>,
}

/// What a loader's `this_load` overrides make of what it returned (step 4), the
/// same for a single key and for each key of a batch.
pub(super) struct Settled {
    /// Answered, not cached (`skip_caching`, or refused by `validate`).
    pub(super) skip: bool,
    /// The loader's own ttl, if it set one.
    lifetime: Option<Lifetime>,
    /// The tags it added, stamped now (none when skipped).
    pub(super) added: AddedTags,
}

impl Settled {
    /// What to keep in L1 for `value`, loaded under `stamps`: nothing when skipped.
    pub(super) fn keep<V: Clone>(&self, value: &V, stamps: &Stamps) -> Option<Keep<V>> {
        (!self.skip).then(|| Keep {
            value: value.clone(),
            stamps: self.added.with(stamps),
            lifetime: self.lifetime,
        })
    }

    /// The lifetime a loaded value is written to Redis with.
    pub(super) fn written_lifetime(&self, options: &CacheOptions) -> Lifetime {
        self.lifetime.unwrap_or_else(|| options.lifetime())
    }
}

/// The leader's duty to land its flight, even when its future is dropped mid-load.
pub(super) struct Lead<'a, K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    pub(super) cache: &'a Cache<K, V>,
    pub(super) key: K,
    pub(super) flight: Arc<Flight<V>>,
    pub(super) landed: bool,
}

impl<'a, K, V> Lead<'a, K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// The guard of `flight`, just registered for `key`: made before anything that
    /// may fail or never run (a tag's `Display` that panics, a spawned task dropped
    /// unpolled by its runtime's shutdown), so the waiters are always answered.
    pub(super) fn new(cache: &'a Cache<K, V>, key: K, flight: Arc<Flight<V>>) -> Self {
        Self {
            cache,
            key,
            flight,
            landed: false,
        }
    }

    /// Stores a stale value found in Redis while the load goes on, for a key L1 has
    /// nothing to serve for; like a landing, under the flights lock, so an
    /// invalidation of the key is not undone. A value L1 still serves is this
    /// process's newest: a `put!` whose write has not reached Redis yet is newer than
    /// what Redis answered, and the refresh of that value is this load.
    pub(super) fn keep_stale(&self, value: V, stamps: Stamps, lifetime: Lifetime) {
        let cache = self.cache;
        let _flights = cache.flights.lock();
        let keep = !self.flight.is_doomed() && tags::all_current(&stamps);
        if keep && !cache.holds_servable(&self.key) {
            let entry = cache.entry(value, &stamps, Some(lifetime));
            cache.store.insert(self.key.clone(), entry);
        }
    }

    /// Lands a value found in Redis (or left there by the lock's holder), kept in L1
    /// for what is left of its lifetime; returns it for the leader's own answer.
    pub(super) fn land_from_shared<Out: Send + 'static>(
        &mut self,
        value: V,
        stamps: Stamps,
        lifetime: Lifetime,
    ) -> V {
        let keep = Keep {
            value: value.clone(),
            stamps,
            lifetime: Some(lifetime),
        };
        self.land_with::<Out>(|| Landed::Value(value.clone(), Origin::L2), Some(keep));
        value
    }

    pub(super) fn land<Out: Send + 'static>(
        &mut self,
        landed: Landed<V, Out>,
        store: Option<Keep<V>>,
    ) {
        self.land_with(|| landed, store);
    }

    /// [`land`](Self::land), making the waiters' landing (a copy of the value, of
    /// the error) only if a waiter may read it.
    pub(super) fn land_with<Out: Send + 'static>(
        &mut self,
        landed: impl FnOnce() -> Landed<V, Out>,
        store: Option<Keep<V>>,
    ) {
        self.landed = true;
        self.cache.land(&self.key, &self.flight, landed, store);
    }
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// Lands `flight` for `key`: stores the value (unless the flight was doomed or a
    /// tag it recorded moved), retires the flight, then hands `landed` to its waiters,
    /// made only if there are any ([`Locked::is_watched`]). Storing and retiring
    /// happen under the flights lock, so a caller never finds neither.
    ///
    /// [`Locked::is_watched`]: crate::flights::Locked::is_watched
    pub(super) fn land<Out: Send + 'static>(
        &self,
        key: &K,
        flight: &Arc<Flight<V>>,
        landed: impl FnOnce() -> Landed<V, Out>,
        store: Option<Keep<V>>,
    ) {
        let mut flights = self.flights.lock();
        self.settle(&mut flights, key, flight, store, clock::precise_ms());
        let watched = flights.is_watched(flight);
        drop(flights);
        if watched {
            flight.land(landed());
        }
    }

    /// [`land`](Self::land) for many flights, under one lock and one clock reading.
    pub(super) fn land_many<'a, Out: Send + 'static>(
        &self,
        landings: impl IntoIterator<Item = (&'a K, &'a Arc<Flight<V>>, Landed<V, Out>, Option<Keep<V>>)>,
    ) where
        K: 'a,
        V: 'a,
    {
        let mut flights = self.flights.lock();
        let now = clock::precise_ms();
        let landed: Vec<_> = landings
            .into_iter()
            .map(|(key, flight, landed, store)| {
                self.settle(&mut flights, key, flight, store, now);
                (flight, landed)
            })
            .collect();
        drop(flights);
        for (flight, landed) in landed {
            flight.land(landed);
        }
    }

    fn settle(
        &self,
        flights: &mut Locked<'_, K, V>,
        key: &K,
        flight: &Arc<Flight<V>>,
        store: Option<Keep<V>>,
        now: u64,
    ) {
        match store {
            Some(Keep {
                value,
                stamps,
                lifetime,
            }) => {
                let entry = self.entry_at(value, &stamps, lifetime, now);
                let store = || self.store.insert(key.clone(), entry);
                flights.store_and_retire(key, flight, &stamps, store);
            }
            None => flights.retire(key, flight),
        }
    }
}

impl<K, V> Drop for Lead<'_, K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    fn drop(&mut self) {
        if !self.landed {
            // Cancelled: hand the load to a waiter.
            self.land(Landed::<V, ()>::Retry, None);
        }
    }
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// One span per load, single-key or batch (never on a hit): which tier answered,
    /// how it ended, how long it took and, for a batch, how many keys it loaded;
    /// cheap when disabled, off below debug.
    pub(super) fn load_span(&self) -> tracing::Span {
        tracing::debug_span!(
            "stratacache.load",
            cache = %self.name,
            answered_by = tracing::field::Empty,
            outcome = tracing::field::Empty,
            micros = tracing::field::Empty,
            keys = tracing::field::Empty,
        )
    }

    /// Counts one loader run and its duration: the stats' histogram, and the
    /// `metrics` facade's when that feature is on.
    fn record_load(&self, took: std::time::Duration) {
        self.stats.record_load(took);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let before = self
            .recent_load_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        let average = match before {
            0 => micros,
            _ => before.saturating_mul(7).saturating_add(micros) / 8,
        };
        self.recent_load_micros
            .store(average, std::sync::atomic::Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::histogram!("stratacache_load_duration_seconds", "cache" => self.name.to_string())
            .record(took.as_secs_f64());
        self.stats.bump(Counter::Load);
    }

    /// Step 3 of every load, single-key or batch: `run` (the loader, polled as
    /// [`loader`](super::loader) polls it) in the cache's turn if `max_loads` bounds
    /// it, its duration recorded; returns the outcome, the overrides and the duration.
    pub(super) async fn run_loader<Out>(
        &self,
        run: impl Future<Output = (Outcome<Out>, Overrides)>,
        span: &tracing::Span,
    ) -> (Outcome<Out>, Overrides, std::time::Duration) {
        let turn = pin!(self.bulkhead.enter(self.options.max_loads, &self.stats));
        let turn = in_span(span, turn).await;
        let started = std::time::Instant::now();
        let (outcome, overrides) = run.await;
        let took = started.elapsed();
        drop(turn);
        self.record_load(took);
        (outcome, overrides, took)
    }

    /// Step 4's part common to every load: what the overrides make of its values.
    pub(super) fn settle_overrides(&self, overrides: Overrides) -> Settled {
        if overrides.invalid {
            self.stats.bump(Counter::Invalid);
        }
        let lifetime = overrides
            .ttl
            .map(|ttl| self.options.lifetime_with_ttl(Some(ttl)));
        let added = match overrides.skip {
            true => AddedTags::default(),
            false => AddedTags::stamp(overrides.tags),
        };
        if !self.reads_redis() {
            added.kept_unread();
        }
        Settled {
            skip: overrides.skip,
            lifetime,
            added,
        }
    }
}

/// Polls `step` inside `span`, where it lies: `Instrument` would move the step into
/// its wrapper, and a load's steps are large (a copy of each on every miss).
pub(super) fn in_span<'a, F: Future>(
    span: &'a tracing::Span,
    mut step: Pin<&'a mut F>,
) -> impl Future<Output = F::Output> + 'a {
    std::future::poll_fn(move |cx| {
        let _entered = span.enter();
        step.as_mut().poll(cx)
    })
}

pub(crate) async fn catch_unwind<F: Future>(future: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx| {
        match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    })
    .await
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(non-string panic payload)"
    }
}
