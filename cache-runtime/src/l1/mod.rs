//! The in-process tier. The engine talks to a store through [`L1Store`], so the
//! default quick_cache store and the moka store (feature `moka`) are interchangeable
//! and pass the same engine tests.

#[cfg(feature = "moka")]
mod moka;
mod quick;
mod stamps;

use crate::sync::AtomicU64;
use crate::times::EntryTimes;

pub(crate) use stamps::EntryStamps;

#[cfg(feature = "moka")]
pub use self::moka::MokaStore;
pub use quick::QuickStore;

/// The store the generated code uses: moka with the `moka` feature, else quick_cache.
#[cfg(not(feature = "moka"))]
pub type DefaultStore<K, V> = QuickStore<K, V>;
/// The store the generated code uses: moka with the `moka` feature, else quick_cache.
#[cfg(feature = "moka")]
pub type DefaultStore<K, V> = MokaStore<K, V>;

/// A cached value with its times (coarse-clock milliseconds) and tag stamps.
#[derive(Clone)]
pub struct Entry<V> {
    pub(crate) value: V,
    pub(crate) times: EntryTimes,
    pub(crate) stamps: EntryStamps,
}

impl<V> Entry<V> {
    /// Worth keeping: within its lifetime (a fail-safe fallback included) and not
    /// invalidated by a tag; `cache_epoch` is its cache's own tag's counter.
    #[inline]
    pub(crate) fn is_retained(&self, now: u64, cache_epoch: &AtomicU64) -> bool {
        now < self.times.keep_until() && self.stamps.are_current(cache_epoch)
    }
}

/// What the engine needs from an in-process store.
pub trait L1Store<K, V>: Send + Sync + 'static {
    /// A store bounded to about `capacity` entries.
    fn with_capacity(capacity: u64) -> Self
    where
        Self: Sized;
    /// Runs `read` on the entry for `key` without cloning the entry. `key` may be a
    /// borrowed form of the key (`&str` for `String`).
    fn read<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V>) -> R) -> Option<R>
    where
        Q: ?Sized + std::hash::Hash + crate::values::Equivalent<K>;
    /// [`read`](Self::read) with a reader that may answer nothing: one `None` for
    /// both, which a hit then checks once rather than twice.
    #[inline(always)]
    fn read_some<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V>) -> Option<R>) -> Option<R>
    where
        Q: ?Sized + std::hash::Hash + crate::values::Equivalent<K>,
    {
        self.read(key, read).flatten()
    }
    /// Stores `entry` for `key`, replacing any.
    fn insert(&self, key: K, entry: Entry<V>);
    /// Drops the entry for `key`.
    fn remove(&self, key: &K);
    /// Removes the entry for `key` only if `doomed` says so, so a fresh entry written
    /// by a concurrent load is not removed in place of the expired one.
    fn remove_if(&self, key: &K, doomed: impl FnOnce(&Entry<V>) -> bool);
    /// Changes the entry for `key` in place, if there is one (`sliding`'s extension).
    fn update(&self, key: &K, change: impl FnOnce(&mut Entry<V>));
    /// How many parts [`retain_part`](Self::retain_part) splits the store into.
    fn parts(&self) -> usize;
    /// Keeps only the entries of part `part` (`< parts()`) for which `keep` is true,
    /// so that a sweep can visit a large store a bounded piece at a time.
    fn retain_part(&self, part: usize, keep: impl Fn(&Entry<V>) -> bool);
    /// Drops every entry.
    fn clear(&self);
    /// How many entries are held.
    fn len(&self) -> u64;
    /// True when no entry is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
pub(crate) mod contract {
    //! The tests every store must pass.
    use super::*;
    use crate::times::Times;

    /// Live entries stay usable for a minute; dead ones expired long ago.
    fn entry(value: u32, live: bool) -> Entry<u32> {
        let until = if live {
            crate::clock::precise_ms() + 60_000
        } else {
            0
        };
        Entry {
            value,
            times: times_until(until).into(),
            stamps: EntryStamps::default(),
        }
    }

    fn times_until(until: u64) -> Times {
        Times {
            fresh_until: until,
            stale_until: until,
            keep_until: until,
            refresh_at: until,
        }
    }

    pub(crate) fn run<S: L1Store<u64, u32>>() {
        let is_dead = |e: &Entry<u32>| e.times.keep_until() == 0;
        let store = S::with_capacity(100);
        assert_eq!(store.read(&1, |e| e.value), None);
        store.insert(1, entry(10, true));
        assert_eq!(store.read(&1, |e| e.value), Some(10));
        store.remove_if(&1, is_dead);
        assert_eq!(
            store.read(&1, |e| e.value),
            Some(10),
            "remove_if removed a live entry"
        );
        store.insert(2, entry(20, true));
        store.remove_if(&2, |e| e.value == 20);
        assert_eq!(
            store.read(&2, |e| e.value),
            None,
            "remove_if kept a doomed entry"
        );
        store.insert(3, entry(30, true));
        for part in 0..store.parts() {
            store.retain_part(part, |e| e.value != 30);
        }
        assert_eq!(
            store.read(&3, |e| e.value),
            None,
            "retain kept a rejected entry"
        );
        assert_eq!(
            store.read(&1, |e| e.value),
            Some(10),
            "retain dropped a kept entry"
        );
        store.update(&1, |e| e.times = EntryTimes::from(times_until(4_242)));
        assert_eq!(
            store.read(&1, |e| e.times.fresh_until()),
            Some(4_242),
            "updated in place"
        );
        store.update(&99, |_| panic!("no entry to update"));
        assert_eq!(store.read(&99, |e| e.value), None, "update adds nothing");
        store.remove(&1);
        assert_eq!(store.read(&1, |e| e.value), None);
        for key in 0..1_000 {
            store.insert(key, entry(key as u32, true));
        }
        assert!(
            store.len() <= 200,
            "capacity 100 not honoured: {}",
            store.len()
        );
        store.clear();
        assert_eq!(store.len(), 0);
    }
}
