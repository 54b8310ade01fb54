//! The cache-aside algorithm: look up L1, else run the loader once per key however
//! many callers wait, record tag versions before it runs, store what it returns.
//!
//! # Concurrent calls
//! Concurrent misses of one key run one loader (see [`crate::flight`]). The flights
//! map is locked only for short, synchronous sections, never across an `.await`. A
//! leader stores its value and retires its flight under that lock, and so does an
//! invalidation of the key, so a load can never store a value after the invalidation
//! of its key has returned.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::clock;
use crate::flight::{Flight, Landed};
use crate::l1::{DefaultStore, Entry, L1Store};
use crate::shape::{Shape, Split};
use crate::stats::{CacheStats, CacheStatsSnapshot, Counter};
use crate::tags::{self, Stamps, TagCell, TagStamp};

/// Per-function settings, from the attribute's arguments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// How long a value is fresh; `None` keeps it until evicted or invalidated.
    pub ttl: Option<Duration>,
    /// How long past its ttl a value may be served while it is refreshed.
    pub stale_window: Option<Duration>,
    /// The in-process bound, in entries.
    pub capacity: u64,
    /// In-process only: never written to a shared tier.
    pub local: bool,
    /// Shape version of the value, part of shared-tier keys.
    pub version: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            stale_window: None,
            capacity: 10_000,
            local: false,
            version: 0,
        }
    }
}

impl CacheOptions {
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = Some(window);
        self
    }
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}

/// The tags a load returns with its loader future: formatted only on a miss.
pub type Tags = Vec<String>;

type FlightOf<S> = Flight<<S as Shape>::Value, <S as Shape>::Out>;
type ShareFn<S> = Option<fn(&<S as Shape>::Out) -> <S as Shape>::Out>;

/// One cached function's cache.
pub struct Cache<K, S: Shape, St = DefaultStore<K, <S as Shape>::Value>> {
    name: Box<str>,
    options: CacheOptions,
    store: St,
    flights: Mutex<HashMap<K, Arc<FlightOf<S>>, foldhash::fast::RandomState>>,
    /// The implicit tag every entry of this cache carries: bumping it clears the cache.
    tag: Arc<TagCell>,
    stats: CacheStats,
}

enum Role<S: Shape> {
    Hit(S::Value),
    Lead(Arc<FlightOf<S>>),
    Follow(Arc<FlightOf<S>>),
}

enum Seen<V> {
    Fresh(V),
    Stale(V),
    Gone,
}

impl<K, S, St> Cache<K, S, St>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Shape,
    S::Out: Send,
    St: L1Store<K, S::Value>,
{
    pub fn new(name: impl Into<Box<str>>, options: CacheOptions) -> Self {
        Self {
            name: name.into(),
            store: St::with_capacity(options.capacity.max(1)),
            options,
            flights: Mutex::default(),
            tag: Arc::default(),
            stats: CacheStats::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// Cache-aside call whose loader may borrow the caller's arguments. A stale value
    /// is never served here (serving it needs a background refresh, hence
    /// [`get_or_load_refreshing`](Self::get_or_load_refreshing)).
    pub async fn get_or_load<M, F>(&self, key: K, share: ShareFn<S>, make: M) -> S::Out
    where
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        if let Seen::Fresh(value) = self.lookup(&key) {
            self.stats.bump(Counter::L1Hit);
            return S::join(value);
        }
        self.load(key, share, make).await
    }

    /// Cache-aside call with stale-while-revalidate: inside the stale window the stale
    /// value is returned at once and one background refresh per key is spawned on the
    /// current tokio runtime (outside a runtime, the caller loads instead).
    pub async fn get_or_load_refreshing<M, F>(
        &'static self,
        key: K,
        share: ShareFn<S>,
        make: M,
    ) -> S::Out
    where
        M: FnOnce() -> (Tags, F) + Send + 'static,
        F: Future<Output = S::Out> + Send + 'static,
    {
        match self.lookup(&key) {
            Seen::Fresh(value) => {
                self.stats.bump(Counter::L1Hit);
                S::join(value)
            }
            Seen::Stale(value) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    self.stats.bump(Counter::L1Hit);
                    self.stats.bump(Counter::StaleServed);
                    if let Some(flight) = self.start_flight(&key) {
                        runtime.spawn(self.lead(key, flight, share, make));
                    }
                    S::join(value)
                }
                Err(_) => self.load(key, share, make).await,
            },
            Seen::Gone => self.load(key, share, make).await,
        }
    }

    #[inline]
    fn lookup(&self, key: &K) -> Seen<S::Value> {
        let now = clock::coarse_ms();
        let seen = self.store.read(key, |entry| {
            if !entry.is_usable(now) {
                Seen::Gone
            } else if now < entry.fresh_until {
                Seen::Fresh(entry.value.clone())
            } else if self.options.stale_window.is_some() {
                Seen::Stale(entry.value.clone())
            } else {
                Seen::Gone
            }
        });
        match seen {
            Some(Seen::Gone) => {
                self.drop_unusable(key, now);
                Seen::Gone
            }
            Some(seen) => seen,
            None => Seen::Gone,
        }
    }

    fn is_fresh(&self, key: &K) -> bool {
        let now = clock::coarse_ms();
        self.store
            .read(key, |e| e.is_usable(now) && now < e.fresh_until)
            .unwrap_or(false)
    }

    #[cold]
    fn drop_unusable(&self, key: &K, now: u64) {
        let mut invalidated = false;
        self.store.remove_if(key, |entry| {
            invalidated = !tags::all_current(&entry.stamps);
            invalidated || now >= entry.stale_until
        });
        if invalidated {
            self.stats.bump(Counter::Invalidation);
        }
    }

    /// Registers a refresh flight for `key` unless one that may still answer exists,
    /// or one has just landed: the caller read its stale value before that landing.
    fn start_flight(&self, key: &K) -> Option<Arc<FlightOf<S>>> {
        let mut flights = self.flights.lock();
        if flights.get(key).is_some_and(|f| f.can_join()) || self.is_fresh(key) {
            return None;
        }
        let flight = Arc::new(Flight::new());
        flights.insert(key.clone(), flight.clone());
        Some(flight)
    }

    async fn load<M, F>(&self, key: K, share: ShareFn<S>, make: M) -> S::Out
    where
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        self.stats.bump(Counter::Miss);
        loop {
            match self.join_or_lead(&key) {
                Role::Hit(value) => return S::join(value),
                Role::Lead(flight) => return self.lead(key, flight, share, make).await,
                Role::Follow(flight) => match flight.wait(share).await {
                    Landed::Value(value) => return S::join(value),
                    Landed::Shared(out) => return out,
                    Landed::Retry => continue,
                    Landed::Panicked(message) => {
                        panic!("the loader of cache `{}` panicked: {message}", self.name)
                    }
                },
            }
        }
    }

    fn join_or_lead(&self, key: &K) -> Role<S> {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(key).filter(|f| f.can_join()) {
            return Role::Follow(flight.clone());
        }
        // A leader stores before it retires its flight, both under this lock: with no
        // flight to join, a value it just stored is visible here.
        if let Seen::Fresh(value) = self.lookup(key) {
            return Role::Hit(value);
        }
        let flight = Arc::new(Flight::new());
        flights.insert(key.clone(), flight.clone());
        Role::Lead(flight)
    }

    /// Runs the loader as the leader of `flight` and lands its outcome.
    async fn lead<M, F>(
        &self,
        key: K,
        flight: Arc<FlightOf<S>>,
        share: ShareFn<S>,
        make: M,
    ) -> S::Out
    where
        M: FnOnce() -> (Tags, F),
        F: Future<Output = S::Out>,
    {
        let mut lead = Lead {
            cache: self,
            key,
            flight,
            landed: false,
        };
        let (tags, loader) = make();
        let stamps = self.stamp(&tags);
        lead.flight.set_stamps(stamps.clone());
        let started = Instant::now();
        let outcome = catch_unwind(loader).await;
        self.stats.record_load(started.elapsed());
        self.stats.bump(Counter::Load);
        let out = match outcome {
            Ok(out) => out,
            Err(payload) => {
                self.stats.bump(Counter::LoadError);
                lead.land(Landed::Panicked(panic_message(&*payload).into()), None);
                panic::resume_unwind(payload);
            }
        };
        match S::split(out) {
            Split::Store(value) => {
                lead.land(Landed::Value(value.clone()), Some((value.clone(), stamps)));
                S::join(value)
            }
            Split::StoreFailed(value) => {
                self.stats.bump(Counter::LoadError);
                lead.land(Landed::Value(value.clone()), Some((value.clone(), stamps)));
                S::join(value)
            }
            Split::Error(out) => {
                self.stats.bump(Counter::LoadError);
                lead.land(
                    share.map_or(Landed::Retry, |share| Landed::Shared(share(&out))),
                    None,
                );
                out
            }
            Split::Empty(out) => {
                lead.land(
                    share.map_or(Landed::Retry, |share| Landed::Shared(share(&out))),
                    None,
                );
                out
            }
        }
    }

    /// Reads the version of every tag of a load, before its loader runs.
    fn stamp(&self, names: &[String]) -> Stamps {
        let mut stamps = Vec::with_capacity(names.len() + 2);
        stamps.push(TagStamp::new(tags::GLOBAL.clone()));
        stamps.push(TagStamp::new(self.tag.clone()));
        stamps.extend(names.iter().map(|name| TagStamp::new(tags::intern(name))));
        stamps.into()
    }

    fn entry(&self, value: S::Value, stamps: Stamps) -> Entry<S::Value> {
        let now = clock::precise_ms();
        let fresh_until = self
            .options
            .ttl
            .map_or(u64::MAX, |ttl| now.saturating_add(clock::to_ms(ttl)));
        let window = self.options.stale_window.map_or(0, clock::to_ms);
        Entry {
            value,
            fresh_until,
            stale_until: fresh_until.saturating_add(window),
            stamps,
        }
    }

    /// Drops the entry for `key`, and dooms a load of it in flight so that load cannot
    /// store its value afterwards.
    pub fn invalidate(&self, key: &K) {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.remove(key) {
            flight.doom();
        }
        self.store.remove(key);
        drop(flights);
        self.stats.bump(Counter::Invalidation);
    }

    /// Drops every entry of this cache; loads in flight will not store theirs.
    pub fn clear(&self) {
        self.tag.bump();
        self.store.clear();
        self.stats.bump(Counter::Invalidation);
    }

    /// True if a usable (fresh or stale-servable) value is held for `key`.
    pub fn contains(&self, key: &K) -> bool {
        !matches!(self.lookup(key), Seen::Gone)
    }

    pub(crate) fn clear_store(&self) {
        self.store.clear();
    }

    pub(crate) fn sweep(&self, now: u64) {
        let invalidated = std::cell::Cell::new(0);
        self.store.retain(|entry| {
            let current = tags::all_current(&entry.stamps);
            invalidated.set(invalidated.get() + u64::from(!current));
            current && now < entry.stale_until
        });
        for _ in 0..invalidated.get() {
            self.stats.bump(Counter::Invalidation);
        }
    }

    pub(crate) fn snapshot(&self) -> CacheStatsSnapshot {
        self.stats.snapshot(&self.name, self.store.len())
    }
}

/// The leader's duty to land its flight, even when its future is dropped mid-load.
struct Lead<'a, K, S: Shape, St>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S::Out: Send,
    St: L1Store<K, S::Value>,
{
    cache: &'a Cache<K, S, St>,
    key: K,
    flight: Arc<FlightOf<S>>,
    landed: bool,
}

impl<K, S, St> Lead<'_, K, S, St>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Shape,
    S::Out: Send,
    St: L1Store<K, S::Value>,
{
    fn land(&mut self, landed: Landed<S::Value, S::Out>, store: Option<(S::Value, Stamps)>) {
        self.landed = true;
        let cache = self.cache;
        let mut flights = cache.flights.lock();
        if let Some((value, stamps)) = store {
            // Stale stamps mean an invalidation came during the load: the entry would
            // never be served, so it is not worth its memory.
            if !self.flight.is_doomed() && tags::all_current(&stamps) {
                cache
                    .store
                    .insert(self.key.clone(), cache.entry(value, stamps));
            }
        }
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.key);
        }
        drop(flights);
        self.flight.land(landed);
    }
}

impl<K, S, St> Drop for Lead<'_, K, S, St>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: Shape,
    S::Out: Send,
    St: L1Store<K, S::Value>,
{
    fn drop(&mut self) {
        if !self.landed {
            // Cancelled: hand the load to a waiter.
            self.land(Landed::Retry, None);
        }
    }
}

async fn catch_unwind<F: Future>(future: F) -> Result<F::Output, Box<dyn Any + Send>> {
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

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(non-string panic payload)"
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
