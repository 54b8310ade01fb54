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
//! - a value read from Redis is stored only if no entry write happened during the
//!   read: a batch's read checks [`Locked::writes_since`], and a load's stale value
//!   needs its flight not doomed (an entry write dooms it) and L1 holding nothing to
//!   serve (a `put!` still on its way to Redis is newer than what Redis answered).
//!
//! So a caller never finds neither a flight nor the value it stored, a load never
//! stores after an invalidation of its key has returned, and one key has at most
//! one live (not doomed) flight. A flight is handed out only here, under the lock
//! ([`Locked::joinable`], [`Locked::lead`]): once retired, nobody new can reach it,
//! so a leader alone with it lands nothing ([`Locked::is_watched`]). The lock is
//! held for short synchronous sections only, never across an `.await`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::flight::Flight;
use crate::sync::{AtomicU64, Mutex, MutexGuard};
use crate::tags::{self, TagStamp};

type Map<K, V> = HashMap<K, Arc<Flight<V>>, foldhash::fast::RandomState>;

pub(crate) struct Flights<K, V> {
    map: Mutex<Map<K, V>>,
    /// Bumped, under the lock, by every change to one entry that a value read from
    /// Redis at the same time could undo.
    entry_writes: AtomicU64,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
            entry_writes: AtomicU64::new(0),
        }
    }
}

/// The flights, locked. Every locked operation is a method here.
pub(crate) struct Locked<'a, K, V> {
    map: MutexGuard<'a, Map<K, V>>,
    entry_writes: &'a AtomicU64,
}

impl<K: Hash + Eq, V: Clone> Flights<K, V> {
    pub(crate) fn lock(&self) -> Locked<'_, K, V> {
        Locked {
            map: self.map.lock(),
            entry_writes: &self.entry_writes,
        }
    }

    /// The entry-write count now, before a read from Redis (see
    /// [`Locked::writes_since`]).
    pub(crate) fn writes(&self) -> u64 {
        self.entry_writes.load(Ordering::Acquire)
    }
}

impl<K: Hash + Eq, V: Clone> Locked<'_, K, V> {
    /// The key's flight, if one may still answer a call made now.
    pub(crate) fn joinable(&self, key: &K) -> Option<Arc<Flight<V>>> {
        self.map.get(key).filter(|f| f.can_join()).cloned()
    }

    /// Registers `flight` as the key's load, whose caller leads it. A flight it
    /// displaces could no longer be joined (a tag it recorded moved during its load):
    /// out of the map, no later `put!`, `refresh!` or invalidation of the key would
    /// reach it, and its write-back could land over theirs, so it is doomed now.
    pub(crate) fn lead(&mut self, key: K, flight: Flight<V>) -> Arc<Flight<V>> {
        let flight = Arc::new(flight);
        if let Some(displaced) = self.map.insert(key, flight.clone()) {
            displaced.doom();
        }
        flight
    }

    /// A `refresh!`: `flight` replaces the key's load, which may no longer store.
    pub(crate) fn replace(&mut self, key: K, flight: Flight<V>) -> Arc<Flight<V>> {
        self.note_entry_write();
        let flight = Arc::new(flight);
        if let Some(old) = self.map.insert(key, flight.clone()) {
            old.doom();
        }
        flight
    }

    /// An invalidation or a `put!` of the key: its load in flight may no longer
    /// store, and the next call starts a new one.
    pub(crate) fn doom(&mut self, key: &K) {
        self.note_entry_write();
        if let Some(flight) = self.map.remove(key) {
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
                self.note_entry_write();
            }
        }
        self.retire(key, flight);
    }

    /// A landing with nothing to store: retires `flight` unless another flight has
    /// replaced it.
    pub(crate) fn retire(&mut self, key: &K, flight: &Arc<Flight<V>>) {
        if self.map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            self.map.remove(key);
        }
    }

    /// Whether anyone besides its leader holds `flight`, once retired: a waiter, or a
    /// caller that may still wait. Only they can read its landing; with none (the
    /// usual miss), the landing (a copy of the value) need not be made. Flights are
    /// handed out only under this lock, so none is handed out after this answer.
    pub(crate) fn is_watched(&self, flight: &Arc<Flight<V>>) -> bool {
        Arc::strong_count(flight) > 1
    }

    /// Counts a change to one entry that a concurrent Redis read could undo (a
    /// forced reload landing).
    pub(crate) fn note_entry_write(&self) {
        self.entry_writes.fetch_add(1, Ordering::Release);
    }

    /// True if an entry write happened since [`Flights::writes`] returned `before`:
    /// then what a read from Redis made meanwhile may be older than L1.
    pub(crate) fn writes_since(&self, before: u64) -> bool {
        self.entry_writes.load(Ordering::Acquire) != before
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
        assert!(locked.writes_since(writes));
        locked.retire(&1, &first);
        assert!(
            Arc::ptr_eq(&locked.joinable(&1).unwrap(), &second),
            "a replaced leader's landing does not retire its successor"
        );
        locked.doom(&1);
        assert!(second.is_doomed() && locked.joinable(&1).is_none());
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
