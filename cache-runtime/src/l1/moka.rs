//! The moka store (feature `moka`). moka evicts entries itself once their stale
//! window has passed, through a per-entry expiry policy.

use std::hash::Hash;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use super::{Entry, L1Store};
use crate::clock;

/// The store of the `moka` feature: `moka::sync::Cache`, which evicts expired entries itself.
pub struct MokaStore<K, V> {
    cache: Cache<K, Entry<V>>,
}

struct UntilStale;

const SWEEP_PARTS: usize = 64;

impl<K, V> Expiry<K, Entry<V>> for UntilStale {
    fn expire_after_create(&self, _: &K, entry: &Entry<V>, _: Instant) -> Option<Duration> {
        let keep_until = entry.times.keep_until();
        let left = keep_until.saturating_sub(clock::coarse_ms());
        (keep_until != u64::MAX).then(|| Duration::from_millis(left))
    }

    fn expire_after_update(
        &self,
        key: &K,
        entry: &Entry<V>,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, entry, at)
    }
}

impl<K, V> L1Store<K, V> for MokaStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn with_capacity(capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilStale)
            .build();
        Self { cache }
    }

    fn read<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V>) -> R) -> Option<R>
    where
        Q: ?Sized + Hash + crate::values::Equivalent<K>,
    {
        self.cache.get(key).map(|entry| read(&entry))
    }

    fn insert(&self, key: K, entry: Entry<V>) {
        self.cache.insert(key, entry);
    }

    fn remove(&self, key: &K) {
        self.cache.invalidate(key);
    }

    fn remove_if(&self, key: &K, doomed: impl FnOnce(&Entry<V>) -> bool) {
        // moka has no conditional remove by key; an atomic compute does the same.
        let mut doomed = Some(doomed);
        self.cache.entry(key.clone()).and_compute_with(|current| {
            use moka::ops::compute::Op;
            match current {
                Some(entry) if doomed.take().is_some_and(|f| f(entry.value())) => Op::Remove,
                _ => Op::Nop,
            }
        });
    }

    fn update(&self, key: &K, change: impl FnOnce(&mut Entry<V>)) {
        let mut change = Some(change);
        self.cache.entry(key.clone()).and_compute_with(|current| {
            use moka::ops::compute::Op;
            match (current, change.take()) {
                (Some(entry), Some(change)) => {
                    let mut entry = entry.into_value();
                    change(&mut entry);
                    Op::Put(entry)
                }
                _ => Op::Nop,
            }
        });
    }

    /// moka cannot visit a part of its entries, only all of them, and it expires
    /// entries itself: a sweep needs only drop the tag-invalidated ones, so it visits
    /// the whole cache once in `SWEEP_PARTS` calls, keeping its cost per call bounded
    /// on average as the default store's is.
    fn parts(&self) -> usize {
        SWEEP_PARTS
    }

    fn retain_part(&self, part: usize, keep: impl Fn(&Entry<V>) -> bool) {
        if part != 0 {
            return;
        }
        let doomed: Vec<_> = self
            .cache
            .iter()
            .filter(|(_, e)| !keep(e))
            .map(|(k, _)| (*k).clone())
            .collect();
        for key in doomed {
            self.cache.invalidate(&key);
        }
    }

    fn clear(&self) {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks();
    }

    fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_the_store_contract() {
        super::super::contract::run::<super::MokaStore<u64, u32>>();
    }
}
