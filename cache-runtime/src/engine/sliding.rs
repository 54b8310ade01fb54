//! `sliding`: each hit extends a value's freshness to now + ttl. The extension is
//! made at most once per ttl/4 per key (a write in L1, and a compare-and-set in
//! Redis: `l2/sliding.rs`), so a value read at least that often stays fresh, and
//! one not read expires between 3/4 of its ttl and its ttl after the last read.

use super::{clock, Cache, CacheKey, CacheOptions, CacheValue, Times, NEVER};
use crate::l1::L1Store;

/// Whether a hit at `now` extends a value fresh until `times.fresh_until`: its
/// last extension (or load) is at least ttl/4 old.
#[inline]
pub(super) fn due(options: &CacheOptions, times: &Times, now: u64) -> bool {
    let Some(ttl) = options.ttl else {
        return false;
    };
    let ttl_ms = clock::to_ms(ttl);
    times.fresh_until.saturating_sub(now) + ttl_ms / 4 <= ttl_ms
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    #[cold]
    pub(super) fn slide(&self, key: &K, now: u64) {
        let Some(ttl) = self.options.ttl else {
            return;
        };
        let ttl_ms = clock::to_ms(ttl);
        self.store.update(key, |entry| {
            let times = &mut entry.times;
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
