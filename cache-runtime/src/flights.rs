//! The loads in flight of one cache, by key, and the one lock that guards them.
//!
//! # The invariant
//! Every change to a key's L1 entry that a load in flight could undo, and every
//! change to the key's flight, happens while holding this lock ([`Flights::lock`]):
//! - a leader stores its value and retires its flight together ([`Locked::retire`]);
//! - an invalidation, a `put!` or a `refresh!` of the key dooms its flight
//!   ([`Locked::doom`], [`Locked::replace`]), so that flight can no longer store, and
//!   counts an entry write;
//! - a new leader dooms the flight it displaces ([`Locked::lead`]: one that could no
//!   longer be joined, which no later write of the key would reach);
//! - a value read from Redis is stored only if no write of its entry happened during
//!   the read: a batch's read checks [`Locked::written_since`] for each key, and a
//!   load's stale value needs its flight not doomed (an entry write dooms it) and L1
//!   holding nothing to serve (a `put!` still on its way to Redis is newer than what
//!   Redis answered).
//!
//! So a caller never finds neither a flight nor the value it stored, a load never
//! stores after an invalidation of its key has returned, and one key has at most
//! one live (not doomed) flight. A flight is handed out only here, under the lock
//! ([`Locked::joinable`], [`Locked::lead`]): once retired, nobody new can reach it,
//! so a leader alone with it lands nothing ([`Locked::is_watched`]). The lock is
//! held for short synchronous sections only, never across an `.await`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::flight::Flight;
use crate::sync::{AtomicU64, Mutex, MutexGuard};
use crate::tags::{self, TagStamp};

type Map<K, V> = HashMap<K, Arc<Flight<V>>, foldhash::fast::RandomState>;

/// How many of the latest entry writes are remembered by key: asked about more
/// writes than this, [`Locked::written_since`] answers yes for every key.
const REMEMBERED_WRITES: usize = 64;

pub(crate) struct Flights<K, V> {
    guarded: Mutex<Guarded<K, V>>,
    /// Bumped, under the lock, by every change to one entry that a value read from
    /// Redis at the same time could undo.
    entry_writes: AtomicU64,
    /// Hashes the keys of [`Guarded::recent`] (the map's own hasher is behind the lock).
    key_hasher: foldhash::fast::RandomState,
}

struct Guarded<K, V> {
    map: Map<K, V>,
    /// The hash of the key of entry write `n` at `n % REMEMBERED_WRITES`: a batch's
    /// Redis read and write-back are given up only for the keys written meanwhile, not
    /// for every key of a cache with a steady trickle of `put!`s.
    recent: [u64; REMEMBERED_WRITES],
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            guarded: Mutex::new(Guarded {
                map: Map::default(),
                recent: [0; REMEMBERED_WRITES],
            }),
            entry_writes: AtomicU64::new(0),
            key_hasher: Default::default(),
        }
    }
}

/// The flights, locked. Every locked operation is a method here.
pub(crate) struct Locked<'a, K, V> {
    guarded: MutexGuard<'a, Guarded<K, V>>,
    entry_writes: &'a AtomicU64,
    key_hasher: &'a foldhash::fast::RandomState,
}

impl<K: Hash + Eq, V: Clone> Flights<K, V> {
    pub(crate) fn lock(&self) -> Locked<'_, K, V> {
        Locked {
            guarded: self.guarded.lock(),
            entry_writes: &self.entry_writes,
            key_hasher: &self.key_hasher,
        }
    }

    /// The entry-write count now, before a read from Redis (see
    /// [`Locked::written_since`]).
    pub(crate) fn writes(&self) -> u64 {
        self.entry_writes.load(Ordering::Acquire)
    }

    /// What [`Locked::written_since`] is asked about a key.
    pub(crate) fn key_hash(&self, key: &K) -> u64 {
        self.key_hasher.hash_one(key)
    }
}

impl<K: Hash + Eq, V: Clone> Locked<'_, K, V> {
    /// The key's flight, if one may still answer a call made now.
    pub(crate) fn joinable(&self, key: &K) -> Option<Arc<Flight<V>>> {
        self.guarded.map.get(key).filter(|f| f.can_join()).cloned()
    }

    /// Registers `flight` as the key's load, whose caller leads it. A flight it
    /// displaces could no longer be joined (a tag it recorded moved during its load):
    /// out of the map, no later `put!`, `refresh!` or invalidation of the key would
    /// reach it, and its write-back could land over theirs, so it is doomed now.
    pub(crate) fn lead(&mut self, key: K, flight: Flight<V>) -> Arc<Flight<V>> {
        let flight = Arc::new(flight);
        if let Some(displaced) = self.guarded.map.insert(key, flight.clone()) {
            displaced.doom();
        }
        flight
    }

    /// A `refresh!`: `flight` replaces the key's load, which may no longer store.
    pub(crate) fn replace(&mut self, key: K, flight: Flight<V>) -> Arc<Flight<V>> {
        self.note_entry_write(&key);
        let flight = Arc::new(flight);
        if let Some(old) = self.guarded.map.insert(key, flight.clone()) {
            old.doom();
        }
        flight
    }

    /// An invalidation or a `put!` of the key: its load in flight may no longer
    /// store, and the next call starts a new one.
    pub(crate) fn doom(&mut self, key: &K) {
        self.note_entry_write(key);
        if let Some(flight) = self.guarded.map.remove(key) {
            flight.doom();
        }
    }

    /// A landing: runs `store` (which puts the value in L1) unless `flight` was doomed
    /// or a tag in `stamps` moved since the load recorded it, then retires `flight`.
    /// Both under this lock, so a caller never finds neither the flight nor the value.
    pub(crate) fn store_and_retire(
        &mut self,
        key: &K,
        flight: &Arc<Flight<V>>,
        stamps: &[TagStamp],
        store: impl FnOnce(),
    ) {
        // Stale stamps mean an invalidation came during the load: the entry would
        // never be served, so it is not worth its memory.
        if !flight.is_doomed() && tags::all_current(stamps) {
            store();
            if flight.is_forced() {
                self.note_entry_write(key);
            }
        }
        self.retire(key, flight);
    }

    /// A landing with nothing to store: retires `flight` unless another flight has
    /// replaced it.
    pub(crate) fn retire(&mut self, key: &K, flight: &Arc<Flight<V>>) {
        if self
            .guarded
            .map
            .get(key)
            .is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            self.guarded.map.remove(key);
        }
    }

    /// Whether anyone besides its leader holds `flight`, once retired: a waiter, or a
    /// caller that may still wait. Only they can read its landing; with none (the
    /// usual miss), the landing (a copy of the value) need not be made. Flights are
    /// handed out only under this lock, so none is handed out after this answer.
    pub(crate) fn is_watched(&self, flight: &Arc<Flight<V>>) -> bool {
        Arc::strong_count(flight) > 1
    }

    /// Counts a change to `key`'s entry that a concurrent Redis read could undo.
    fn note_entry_write(&mut self, key: &K) {
        let write = self.entry_writes.fetch_add(1, Ordering::Release);
        self.guarded.recent[write as usize % REMEMBERED_WRITES] = self.key_hasher.hash_one(key);
    }

    /// True if the entry of the key hashed `key_hash` ([`Flights::key_hash`]) may have
    /// been written since [`Flights::writes`] returned `before`: then what a read from
    /// Redis made meanwhile may be older than L1, and a value loaded meanwhile older
    /// than that write. Yes for every key once more writes came than are remembered;
    /// a hash shared with a written key answers yes too: a write is never missed.
    pub(crate) fn written_since(&self, before: u64, key_hash: u64) -> bool {
        let now = self.entry_writes.load(Ordering::Acquire);
        if now.wrapping_sub(before) > REMEMBERED_WRITES as u64 {
            return true;
        }
        (before..now)
            .any(|write| self.guarded.recent[write as usize % REMEMBERED_WRITES] == key_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_live_flight_per_key_and_a_doomed_one_is_neither_joined_nor_retired_twice() {
        let flights: Flights<u64, String> = Flights::default();
        let mut locked = flights.lock();
        assert!(locked.joinable(&1).is_none());
        let first = locked.lead(1, Flight::new());
        assert!(Arc::ptr_eq(&locked.joinable(&1).unwrap(), &first));
        let writes = flights.writes();
        let second = locked.replace(1, Flight::forced());
        assert!(first.is_doomed(), "a refresh dooms the load it replaces");
        assert!(locked.written_since(writes, flights.key_hash(&1)));
        locked.retire(&1, &first);
        assert!(
            Arc::ptr_eq(&locked.joinable(&1).unwrap(), &second),
            "a replaced leader's landing does not retire its successor"
        );
        locked.doom(&1);
        assert!(second.is_doomed() && locked.joinable(&1).is_none());
    }

    #[test]
    fn a_write_is_remembered_by_key_until_more_writes_came_than_are_remembered() {
        let flights: Flights<u64, String> = Flights::default();
        let before = flights.writes();
        let mut locked = flights.lock();
        locked.doom(&1);
        locked.replace(2, Flight::forced());
        let written = |locked: &Locked<'_, u64, String>, key| {
            locked.written_since(before, flights.key_hash(&key))
        };
        assert!(written(&locked, 1) && written(&locked, 2));
        assert!(!written(&locked, 3), "no write of key 3 came");
        let after = flights.writes();
        assert!(!locked.written_since(after, flights.key_hash(&1)));
        for key in 10..10 + REMEMBERED_WRITES as u64 {
            locked.doom(&key);
        }
        assert!(
            written(&locked, 3),
            "past what is remembered, every key may have been written"
        );
        assert!(!locked.written_since(after + 2, flights.key_hash(&3)));
    }

    #[test]
    fn a_flight_displaced_by_a_new_leader_is_doomed() {
        let flights: Flights<u64, String> = Flights::default();
        let mut locked = flights.lock();
        let first = locked.lead(1, Flight::new());
        let second = locked.lead(1, Flight::new());
        assert!(
            first.is_doomed(),
            "out of the map, no write of the key reaches it"
        );
        assert!(!second.is_doomed());
        assert!(Arc::ptr_eq(&locked.joinable(&1).unwrap(), &second));
    }

    #[test]
    fn a_retired_flight_is_watched_while_a_waiter_holds_it() {
        let flights: Flights<u64, String> = Flights::default();
        let mut locked = flights.lock();
        let flight = locked.lead(1, Flight::new());
        let waiter = locked.joinable(&1).expect("a live flight is joinable");
        locked.retire(&1, &flight);
        assert!(locked.is_watched(&flight), "its waiter reads the landing");
        drop(waiter);
        assert!(!locked.is_watched(&flight), "nobody can read the landing");
    }
}
