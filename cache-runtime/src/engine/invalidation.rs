//! Dropping entries: one key, one cache, here and (through Redis) everywhere;
//! applying the invalidations other processes announce; sweeping dead entries.

use std::future::Future;
use std::sync::Arc;

use super::{Cache, CacheKey, CacheValue};
use crate::l1::L1Store;
use crate::outbox::{Invalidation, Sending};
use crate::stats::Counter;

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// Drops the entry for `key` here and in Redis, tells the other processes, and
    /// dooms a load of it in flight so that load cannot store its value afterwards.
    /// Redis and the others hear of it now, or from the outbox once Redis answers (or
    /// once the future is dropped, if it is dropped first).
    pub fn invalidate(
        &'static self,
        key: &K,
    ) -> impl Future<Output = Result<(), crate::Error>> + Send + 'static {
        self.evict_local(key);
        self.stats.bump(Counter::Invalidation);
        let sending = self.shared_target(key, &[]).map(|target| {
            let invalidation = self.entry_invalidation(&target, key.clone());
            Sending::new(target.l2, invalidation).deliver()
        });
        async move {
            if let Some(sending) = sending {
                sending.await;
            }
            Ok(())
        }
    }

    /// Drops every entry of this cache, here, in Redis and in the other processes;
    /// loads in flight will not store theirs.
    pub fn clear(&self) -> impl Future<Output = Result<(), crate::Error>> + Send + 'static {
        self.clear_local();
        crate::send(Invalidation::cache(&self.name, self.tag.clone()))
    }

    /// Deleting `key`'s entry in Redis and telling the others to drop their copy.
    /// Its delivery evicts the key here again: a read may have found the old entry in
    /// Redis before the deletion, and kept it.
    pub(super) fn entry_invalidation(
        &'static self,
        target: &crate::l2::entry::Target,
        key: K,
    ) -> Invalidation {
        let reapply = Arc::new(move || self.evict_local(&key));
        Invalidation::entry(
            &self.name,
            target.key_bytes.to_vec(),
            target.entry_key.clone(),
            Some(reapply),
        )
    }

    /// [`entry_invalidation`](Self::entry_invalidation) for a value this process
    /// keeps (a `put!`, a `refresh!`) but could not hand to Redis or the others:
    /// they drop the copy it replaces, and this process keeps its own.
    pub(super) fn entry_deletion(&self, target: &crate::l2::entry::Target) -> Invalidation {
        Invalidation::entry(
            &self.name,
            target.key_bytes.to_vec(),
            target.entry_key.clone(),
            None,
        )
    }

    /// Drops the expired and invalidated entries of one part of the store, the next
    /// in turn: the work per call is bounded by a part, never the whole cache (entries
    /// met before their part's turn are dropped by the hit that finds them dead).
    pub(crate) fn sweep(&self, now: u64) {
        let cursor = self
            .sweep_cursor
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let invalidated = std::cell::Cell::new(0);
        self.store
            .retain_part(cursor % self.store.parts(), |entry| {
                let current = entry.stamps.are_current(self.tag_epoch);
                invalidated.set(invalidated.get() + u64::from(!current));
                current && now < entry.times.keep_until()
            });
        for _ in 0..invalidated.get() {
            self.stats.bump(Counter::Invalidation);
        }
    }

    pub(crate) fn clear_local(&self) {
        self.tag.bump();
        self.store.clear();
        self.stats.bump(Counter::Invalidation);
    }

    pub(super) fn evict_local(&self, key: &K) {
        let mut flights = self.flights.lock();
        flights.doom(key);
        self.store.remove(key);
    }

    /// Another process invalidated this key: evict it here (no Redis, no message).
    pub(crate) fn evict_encoded(&self, key_bytes: &[u8]) {
        if let Some(key) = self
            .shared
            .as_ref()
            .and_then(|shared| (shared.codec.decode_key)(key_bytes))
        {
            self.evict_local(&key);
            self.stats.bump(Counter::Invalidation);
        }
    }
}
