//! The Redis entry protocol of one cache: where a key lives ([`target`]), reading
//! its entry with the versions of its tags in one round trip ([`read`], and
//! [`read_many`] for a batch), checking and writing the envelope ([`check`],
//! [`write`](mod@write)), and the fleet-wide load lock ([`lock`]).
//!
//! Any fault or bad value is a counted miss: nothing here can fail a call. The
//! engine decides what to do with what Redis holds (land it, serve it stale, load
//! past it); this module only speaks to Redis for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::codec::Codec;
use super::protection::PerCache;
use super::Fault;
use crate::stats::{CacheStats, Counter};

pub(crate) mod check;
pub(crate) mod lock;
pub(crate) mod read;
pub(crate) mod read_many;
pub(crate) mod target;
pub(crate) mod write;

pub(crate) use lock::{HeldLock, Locked};
pub(crate) use read::{Read, SharedFallback};
pub(crate) use read_many::Held;
pub(crate) use target::Target;
pub(crate) use write::{AddedTags, WriteUnder};

/// What a cache's options say about its entries in Redis, fixed when it is built.
#[derive(Clone, Copy)]
pub(crate) struct EntrySettings {
    /// The value type's version, part of every entry key.
    pub(crate) version: u32,
    /// A `stale_window`: an entry past its ttl may still serve, stale.
    pub(crate) serves_stale: bool,
    /// A `fail_safe` window: an entry past its ttl is a fallback for a failed load.
    pub(crate) keeps_fallback: bool,
    /// Where a loaded value's refresh falls, in ms after its creation (`NEVER`: none).
    pub(crate) refresh_after: u64,
    pub(crate) protection: PerCache,
}

/// The part of a cache that only a shared cache has: how its keys and values travel
/// to Redis, and the names they take there.
pub(crate) struct Shared<K, V> {
    pub(crate) codec: Codec<K, V>,
    settings: EntrySettings,
    names: OnceLock<target::RedisNames>,
    /// A bad value in Redis is logged once per cache, then only counted.
    complained: AtomicBool,
    /// A value kept out of Redis (over `max_payload`, or unencryptable) is logged
    /// once per cache, then only counted.
    warned_kept_in_process: AtomicBool,
}

impl<K, V> Shared<K, V> {
    pub(crate) fn new(codec: Codec<K, V>, settings: EntrySettings) -> Self {
        Self {
            codec,
            settings,
            names: OnceLock::new(),
            complained: AtomicBool::new(false),
            warned_kept_in_process: AtomicBool::new(false),
        }
    }
}

/// One shared cache's entries in Redis, borrowed for one step of a call: its Redis
/// part, with the name and counters its faults are logged and counted under.
pub(crate) struct Entries<'c, K, V> {
    pub(crate) cache: &'c str,
    pub(crate) stats: &'c CacheStats,
    pub(crate) shared: &'c Shared<K, V>,
}

impl<K, V> Entries<'_, K, V> {
    /// Counts (unless the circuit was open: Redis was not asked) and logs a fault.
    pub(crate) fn fault(&self, fault: &Fault) {
        count_fault(self.cache, self.stats, fault);
    }

    /// A value too large for Redis: held in this process only. Not a Redis fault.
    pub(crate) fn too_large_to_share(&self, len: usize, max_payload: usize) {
        self.stats.bump(Counter::Oversized);
        tracing::debug!(cache = %self.cache, len, max_payload, "stratacache: value over max_payload, kept in process only, not written to Redis");
        if !self
            .shared
            .warned_kept_in_process
            .swap(true, Ordering::Relaxed)
        {
            tracing::warn!(cache = %self.cache, len, max_payload, "stratacache: a value over max_payload is kept in process only, not written to Redis (logged once per cache; counted as `oversized`)");
        }
    }

    /// A value that may not be written to Redis as configured: kept in this process.
    fn kept_in_process(&self, reason: &str) {
        if !self
            .shared
            .warned_kept_in_process
            .swap(true, Ordering::Relaxed)
        {
            tracing::warn!(cache = %self.cache, reason, "stratacache: values of this cache are kept in process only, not written to Redis (logged once per cache)");
        }
    }

    /// Counts and logs a value in Redis that could not be used: a shape from
    /// another deploy and a refused signature have their own counters, everything
    /// else is an `l2_error`.
    pub(crate) fn unusable(&self, bad: check::Bad) {
        let counter = match bad {
            check::Bad::SchemaMismatch => Counter::SchemaMismatch,
            check::Bad::Refused(_) => Counter::Rejected,
            other => return self.complain(other),
        };
        self.stats.bump(counter);
        tracing::debug!(cache = %self.cache, reason = %bad, "stratacache: value in Redis not used, treated as a miss");
    }

    pub(crate) fn complain(&self, reason: impl std::fmt::Display) {
        self.stats.bump(Counter::L2Error);
        if !self.shared.complained.swap(true, Ordering::Relaxed) {
            tracing::warn!(cache = %self.cache, %reason, "stratacache: unusable value in Redis, treated as a miss (logged once per cache)");
        } else {
            tracing::debug!(cache = %self.cache, %reason, "stratacache: unusable value in Redis");
        }
    }
}

/// Counts (unless the circuit was open: Redis was not asked) and logs a fault of
/// cache `cache`'s Redis calls.
pub(crate) fn count_fault(cache: &str, stats: &CacheStats, fault: &Fault) {
    if !matches!(fault, Fault::Open) {
        stats.bump(Counter::L2Error);
    }
    tracing::debug!(cache = %cache, %fault, "stratacache: Redis call failed; answered without it");
}
