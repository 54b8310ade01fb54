//! Dropping entries: one key, one cache, here and (through Redis) everywhere; and
//! applying the invalidations other processes announce.

use std::future::Future;

use super::{shared, Cache, CacheKey, CacheValue};
use crate::backplane::Message;
use crate::l1::L1Store;
use crate::stats::Counter;

impl<K, V, St> Cache<K, V, St>
where
    K: CacheKey,
    V: CacheValue,
    St: L1Store<K, V>,
{
    /// Drops the entry for `key` here and in Redis, tells the other processes, and
    /// dooms a load of it in flight so that load cannot store its value afterwards.
    pub fn invalidate(
        &self,
        key: &K,
    ) -> impl Future<Output = Result<(), crate::Error>> + Send + 'static {
        self.evict_local(key);
        self.stats.bump(Counter::Invalidation);
        let remote = self.shared_target(key, &[]).map(|target| {
            let message = self.entry_message(&target);
            (target.l2, target.entry_key, message)
        });
        async move {
            match remote {
                Some((l2, entry_key, message)) => {
                    shared::publish(l2, None, Some(entry_key), move |_| message).await
                }
                None => Ok(()),
            }
        }
    }

    /// Drops every entry of this cache, here, in Redis and in the other processes;
    /// loads in flight will not store theirs.
    pub fn clear(&self) -> impl Future<Output = Result<(), crate::Error>> + Send + 'static {
        self.clear_local();
        let remote = crate::l2::active().map(|l2| {
            let counter = crate::l2::keys::cache_tag(&l2.namespace, &self.name);
            (l2, (counter, self.tag.clone()), self.name.to_string())
        });
        async move {
            match remote {
                Some((l2, bump, cache)) => {
                    let message = |version| Message::Cache { cache, version };
                    shared::publish(l2, Some(bump), None, message).await
                }
                None => Ok(()),
            }
        }
    }

    pub(crate) fn clear_local(&self) {
        self.tag.bump();
        self.store.clear();
        self.stats.bump(Counter::Invalidation);
    }

    fn evict_local(&self, key: &K) {
        let mut flights = self.flights.lock();
        self.note_entry_write();
        if let Some(flight) = flights.remove(key) {
            flight.doom();
        }
        self.store.remove(key);
    }

    /// Another process invalidated this key: evict it here (no Redis, no message).
    pub(crate) fn evict_encoded(&self, key_bytes: &[u8]) {
        if let Some(key) = self
            .codec
            .as_ref()
            .and_then(|codec| (codec.decode_key)(key_bytes))
        {
            self.evict_local(&key);
            self.stats.bump(Counter::Invalidation);
        }
    }
}
