//! The cache-aside algorithm: look up L1, else run the loader once per key however
//! many callers wait, record tag versions before it runs, store what it returns.
//!
//! # Concurrent calls
//! Concurrent misses of one key run one loader (see [`crate::flight`]). Every locked
//! operation on the loads in flight, and the invariant they keep, are in
//! [`crate::flights`]: a load can never store a value after the invalidation of its
//! key has returned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod answer;
mod batch;
pub(crate) mod bulkhead;
mod entry_ops;
mod invalidation;
mod lead;
mod loader;
mod miss;
mod options;
mod pipeline;
mod policies;
mod read;
mod reentry;
mod shared;
mod shared_many;
mod sliding;
mod xfetch;

pub(crate) use crate::times::{Lifetime, NEVER};
pub use crate::values::{Borrowed, CacheKey, CacheValue, KeyArg};
pub use answer::Answer;
pub(crate) use entry_ops::observed;
pub use entry_ops::{reloading, ReloadRequest};
pub(crate) use lead::catch_unwind;
pub use options::CacheOptions;
use read::Seen;

use crate::clock;
use crate::error::TimedOut;
use crate::flight::Flight;
use crate::flights::Flights;
use crate::l1::{DefaultStore, Entry, EntryStamps, L1Store};
use crate::l2::codec::Codec;
use crate::l2::entry::Shared;
use crate::shape::Shape;
use crate::stats::{CacheStats, CacheStatsSnapshot, Counter};
use crate::tags::{self, Stamps, TagCell, TagName, TagStamp};

/// The tags a load returns with its loader future: made only on a miss, held inline
/// (two), a constant tag borrowed and a formatted one written in place when short.
pub type Tags = smallvec::SmallVec<[TagName; 2]>;

type ShareFn<S> = Option<fn(&<S as Shape>::Out) -> <S as Shape>::Out>;
/// With `hard_timeout`: how a timed-out call builds the function's error.
pub type TimedOutFn<S> = Option<fn(TimedOut) -> <S as Shape>::Out>;

/// One cache: the entries of every function that names it (a function's own, unless
/// several share a `name`). Keyed by key and value type only, so a single-key
/// function and a batch function, or two functions returning `Option<V>` and
/// `Result<V, E>`, can share one; what a function's output means for the cache (its
/// [`Shape`]) is a parameter of each call.
pub struct Cache<K, V> {
    name: Box<str>,
    options: CacheOptions,
    store: DefaultStore<K, V>,
    flights: Flights<K, V>,
    /// The implicit tag every entry of this cache carries: bumping it clears the cache.
    tag: Arc<TagCell>,
    /// That tag's counter, which every hit reads: kept here, one pointer fewer away.
    tag_epoch: &'static crate::sync::AtomicU64,
    stats: CacheStats,
    /// Present unless the cache is `local`: how keys and values travel to Redis.
    shared: Option<Shared<K, V>>,
    /// `max_loads`: the turn each loader run waits for.
    bulkhead: bulkhead::Bulkhead,
    /// A moving average of this cache's load durations, in µs (XFetch's delta).
    recent_load_micros: std::sync::atomic::AtomicU64,
    /// The store part the next sweep visits.
    sweep_cursor: std::sync::atomic::AtomicUsize,
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// A cache named `name`; `codec` is `None` for a `local` cache.
    pub fn new(
        name: impl Into<Box<str>>,
        options: CacheOptions,
        codec: Option<Codec<K, V>>,
    ) -> Self {
        let tag = Arc::<TagCell>::default();
        Self {
            name: name.into(),
            store: DefaultStore::with_capacity(options.capacity.max(1)),
            flights: Flights::default(),
            tag_epoch: tag.epoch(),
            tag,
            stats: CacheStats::new(),
            shared: codec.map(|codec| Shared::new(codec, options.entry_settings())),
            sweep_cursor: Default::default(),
            bulkhead: Default::default(),
            recent_load_micros: Default::default(),
            options,
        }
    }

    /// The cache's name, as in the stats and the Redis keys.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cache-aside call whose loader may borrow the caller's arguments. A stale value
    /// is never served here (serving it needs a background refresh, hence
    /// [`get_or_load_refreshing`](Self::get_or_load_refreshing)).
    ///
    /// The lookup happens in this call, not in the first poll: a hit returns an
    /// `Answer` already holding the output.
    #[inline]
    pub fn get_or_load<'a, S, M, F, Q>(
        &'a self,
        key: Q,
        share: ShareFn<S>,
        make: M,
    ) -> Answer<S::Out, impl Future<Output = S::Out> + use<'a, K, V, S, M, F, Q>>
    where
        Q: KeyArg<K>,
        S: Shape<Value = V>,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        // A `refresh!` request returns here, so the hit keeps no flag across its
        // lookup (one instruction fewer).
        if entry_ops::reload_requested() {
            let load = self.load::<S, _, _>(key.into_key(), share, make, true);
            return Answer::Load(Box::pin(load));
        }
        if let Some(value) = self.l1_answer(&key) {
            return Answer::Ready(S::join(value));
        }
        let load = self.load::<S, _, _>(key.into_key(), share, make, false);
        Answer::Load(Box::pin(load))
    }

    /// [`get_or_load`](Self::get_or_load) for a sync caller: a hit's output at once,
    /// else the load driven to completion on this thread
    /// ([`block_on`](crate::blocking::block_on)).
    ///
    /// The load's future is built and boxed in a frame of its own (`boxed_load`): built
    /// here, inlined into the cached function, it would keep its size (the whole miss
    /// path, Redis steps included) in the function's frame while the loader runs, and
    /// a memoized recursion, whose every level is such a miss, would take it again at
    /// every level. An `async fn`'s load is built inline: its hit measured cheaper
    /// that way, and an async recursion is rare (it needs `Box::pin`).
    #[inline]
    pub fn get_or_wait<S, M, F, Q>(&self, key: Q, share: ShareFn<S>, make: M) -> S::Out
    where
        Q: KeyArg<K>,
        S: Shape<Value = V>,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        // As in `get_or_load`: a `refresh!` request returns here, so the hit keeps no
        // flag across its lookup.
        if entry_ops::reload_requested() {
            let load = self.boxed_load::<S, _, _>(key.into_key(), share, make, true);
            return crate::blocking::block_on(load);
        }
        if let Some(value) = self.l1_answer(&key) {
            return S::join(value);
        }
        let load = self.boxed_load::<S, _, _>(key.into_key(), share, make, false);
        crate::blocking::block_on(load)
    }

    /// A value L1 answers with, counted as a hit: fresh, or due for a refresh that
    /// this caller does not start. Always inlined in an optimized build: it is the
    /// hit, which the compiler left out of line in an `async fn`'s poll when this was
    /// only `#[inline]` (29 instructions more a hit). Not in a debug build, where
    /// each cached function would compile a copy of the lookup.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn l1_answer<Q: KeyArg<K>>(&self, key: &Q) -> Option<V> {
        // Each way to a hit counts it itself: joined before the count, the two would
        // leave the caller to test the answer again.
        if let Some(value) = self.fresh_value(key.lookup()) {
            self.stats.bump(Counter::L1Hit);
            return Some(value);
        }
        match self.lookup_by(key.lookup(), || key.to_key()) {
            Seen::Fresh(value) | Seen::Refresh(value) => {
                self.stats.bump(Counter::L1Hit);
                Some(value)
            }
            Seen::Stale(_) | Seen::Gone => None,
        }
    }

    /// A sync caller's load, built and boxed where no caller's frame keeps its room
    /// (see [`get_or_wait`](Self::get_or_wait)).
    #[inline(never)]
    fn boxed_load<S, M, F>(
        &self,
        key: K,
        share: ShareFn<S>,
        make: M,
        forced: bool,
    ) -> Pin<Box<impl Future<Output = S::Out> + use<'_, K, V, S, M, F>>>
    where
        S: Shape<Value = V>,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        Box::pin(self.load::<S, _, _>(key, share, make, forced))
    }

    /// Cache-aside call with background refreshes: inside the stale-while-revalidate
    /// window the stale value is returned at once, and past the refresh-ahead point the
    /// fresh one, while one refresh per key runs in a task spawned on the current tokio
    /// runtime (outside a runtime, a stale value is not served: the caller loads).
    /// `prepare` makes the loader, which owns what it needs (it may run in a task): it
    /// is only called when a load or refresh starts, so a hit copies no argument.
    #[inline]
    pub fn get_or_load_refreshing<S, M, F>(
        &'static self,
        key: impl KeyArg<K>,
        share: ShareFn<S>,
        prepare: impl FnOnce() -> M,
        timed_out: TimedOutFn<S>,
    ) -> Answer<S::Out, dyn Future<Output = S::Out> + Send>
    where
        S: Shape<Value = V> + 'static,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F) + Send + 'static,
        F: Future<Output = S::Out> + Send + 'static,
    {
        if entry_ops::reload_requested() {
            let load = self.load::<S, _, _>(key.into_key(), share, prepare(), true);
            return Answer::Load(Box::pin(load));
        }
        if let Some(value) = self.fresh_value(key.lookup()) {
            self.stats.bump(Counter::L1Hit);
            return Answer::Ready(S::join(value));
        }
        let served = match self.lookup_by(key.lookup(), || key.to_key()) {
            Seen::Fresh(value) => value,
            Seen::Refresh(value) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    self.refresh_detached::<S, _, _>(runtime, key.into_key(), share, prepare);
                }
                value
            }
            Seen::Stale(value) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    self.stats.bump(Counter::StaleServed);
                    self.refresh_detached::<S, _, _>(runtime, key.into_key(), share, prepare);
                    value
                }
                Err(_) => {
                    let load = self.load::<S, _, _>(key.into_key(), share, prepare(), false);
                    return Answer::Load(Box::pin(load));
                }
            },
            Seen::Gone => {
                let (key, make) = (key.into_key(), prepare());
                let may_answer_early =
                    self.options.timeout.is_some() || self.options.stale_window.is_some();
                return match tokio::runtime::Handle::try_current() {
                    Ok(runtime) if may_answer_early => Answer::Load(Box::pin(
                        self.load_detached::<S, _, _>(key, share, make, runtime, timed_out),
                    )),
                    _ => Answer::Load(Box::pin(self.load::<S, _, _>(key, share, make, false))),
                };
            }
        };
        self.stats.bump(Counter::L1Hit);
        Answer::Ready(S::join(served))
    }

    /// Starts one refresh of `key` in a task on `runtime`, unless one that may still
    /// answer is in flight; the loader is made only then.
    fn refresh_detached<S, M, F>(
        &'static self,
        runtime: tokio::runtime::Handle,
        key: K,
        share: ShareFn<S>,
        prepare: impl FnOnce() -> M,
    ) where
        S: Shape<Value = V> + 'static,
        S::Out: Send + 'static,
        M: FnOnce() -> (Tags, F) + Send + 'static,
        F: Future<Output = S::Out> + Send + 'static,
    {
        if let Some(flight) = self.start_flight(&key) {
            let lead = lead::Lead::new(self, key, flight);
            let make = prepare();
            runtime.spawn(async move { drop(self.lead::<S, _, _>(lead, share, make).await) });
        }
    }

    /// Registers a refresh flight for `key` unless one that may still answer exists,
    /// or one has just landed: the caller read its stale value before that landing.
    fn start_flight(&self, key: &K) -> Option<Arc<Flight<V>>> {
        let mut flights = self.flights.lock();
        if flights.joinable(key).is_some() || self.needs_no_refresh(key) {
            return None;
        }
        Some(flights.lead(key.clone(), Flight::refresh()))
    }

    /// Reads the version of every tag of a load, before its loader runs. A load that
    /// will read no Redis counter (a `local` cache, or no Redis) marks its tags so.
    fn stamp(&self, names: &[TagName]) -> Stamps {
        // Collected straight into the shared slice: one allocation, no copy.
        let stamps: Stamps = [tags::GLOBAL.clone(), self.tag.clone()]
            .into_iter()
            .map(TagStamp::new)
            .chain(names.iter().map(TagStamp::of_call))
            .collect();
        if !self.reads_redis() {
            tags::kept_unread(&stamps);
        }
        stamps
    }

    /// Whether a load of this cache reads Redis first (unless Redis fails).
    pub(super) fn reads_redis(&self) -> bool {
        self.shared.is_some() && crate::l2::active().is_some()
    }

    /// An entry stored now: with the cache's lifetime, or the one given (what is left
    /// of a value promoted from Redis, a fail-safe value's retry back-off).
    fn entry(&self, value: V, stamps: &[TagStamp], lifetime: Option<Lifetime>) -> Entry<V> {
        self.entry_at(value, stamps, lifetime, clock::precise_ms())
    }

    fn entry_at(
        &self,
        value: V,
        stamps: &[TagStamp],
        lifetime: Option<Lifetime>,
        now: u64,
    ) -> Entry<V> {
        let lifetime = lifetime.unwrap_or_else(|| self.options.lifetime());
        Entry {
            value,
            times: lifetime.from(now).into(),
            stamps: EntryStamps::of_load(stamps),
        }
    }

    pub(crate) fn tag_cell(&self) -> Arc<TagCell> {
        self.tag.clone()
    }

    pub(crate) fn clear_store(&self) {
        self.store.clear();
    }

    pub(crate) fn snapshot(&self) -> CacheStatsSnapshot {
        self.stats
            .snapshot(&self.name, self.store.len(), self.bulkhead.waiting())
    }
}

#[cfg(test)]
mod tests;
