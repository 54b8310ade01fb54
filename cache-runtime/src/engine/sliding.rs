//! `sliding`: each hit extends a value's freshness to now + ttl. The extension is
//! made at most once per ttl/4 per key (a write in L1, and a compare-and-set in
//! Redis: `l2/sliding.rs`), so a value read at least that often stays fresh, and
//! one not read expires between 3/4 of its ttl and its ttl after the last read.
//!
//! The next extension is due at the entry's `refresh_at` (a sliding cache has no
//! refresh-ahead), so the hit path checks nothing more than for any other cache.

use super::{clock, Cache, CacheKey, CacheValue, NEVER};
use crate::l1::L1Store;

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// Extends the entry for `key`, read at `now`, here and then in Redis.
    pub(super) fn slide(&self, key: &K, now: u64) {
        let Some(ttl) = self.options.ttl else {
            return;
        };
        let ttl_ms = clock::to_ms(ttl);
        self.store.update(key, |entry| {
            let mut times = entry.times.get();
            let shift = now.saturating_add(ttl_ms).saturating_sub(times.fresh_until);
            let moved = |time: u64| {
                if time == NEVER {
                    NEVER
                } else {
                    time.saturating_add(shift)
                }
            };
            times.fresh_until = moved(times.fresh_until);
            times.stale_until = moved(times.stale_until);
            times.keep_until = moved(times.keep_until);
            times.refresh_at = now.saturating_add(ttl_ms / 4);
            entry.times = times.into();
        });
        let Some(target) = self.shared_target(key, &[]) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(fault) = target.l2.slide(&target.entry_key, ttl_ms).await {
                    tracing::debug!(%fault, "stratacache: a sliding extension did not reach Redis");
                }
            });
        }
    }
}
