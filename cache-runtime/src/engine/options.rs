//! Per-function settings, built by generated code from the attribute's arguments,
//! and the lifetimes they give an entry.

use std::time::Duration;

use crate::times::{Lifetime, NEVER};

use crate::clock;

/// Per-function settings, from the attribute's arguments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// How long a value is fresh; `None` keeps it until evicted or invalidated.
    pub ttl: Option<Duration>,
    /// How long past its ttl a value may be served while it is refreshed.
    pub stale_window: Option<Duration>,
    /// How long past its ttl a value is kept to answer in place of a failed load.
    pub fail_safe: Option<Duration>,
    /// After a fail-safe answer, how long the loader is left alone for that key.
    pub fail_safe_retry: Duration,
    /// Fraction of the ttl after which a read starts a background refresh.
    pub refresh_ahead: Option<f64>,
    /// XFetch's beta: reads refresh early by chance, more likely near expiry.
    pub xfetch: Option<f64>,
    /// Each hit extends the value's freshness to now + ttl (at most once per ttl/4).
    pub sliding: bool,
    /// How long a caller waits for a load before a kept value answers instead.
    pub timeout: Option<Duration>,
    /// One load per key for the whole fleet, through a lock in Redis.
    pub lock: bool,
    /// The in-process bound, in entries.
    pub capacity: u64,
    /// In-process only: never written to a shared tier.
    pub local: bool,
    /// Shape version of the value, part of shared-tier keys.
    pub version: u32,
    /// Compress payloads in Redis; `None` follows `Config::compress_above`.
    pub compress: Option<bool>,
    /// Encrypt payloads in Redis; `None` follows `Config::encrypt`.
    pub encrypt: Option<bool>,
    /// At most this many loader runs at once in this process; `None` follows
    /// `Config::max_loads` (unbounded by default).
    pub max_loads: Option<usize>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            stale_window: None,
            fail_safe: None,
            fail_safe_retry: Duration::from_secs(5),
            refresh_ahead: None,
            xfetch: None,
            sliding: false,
            timeout: None,
            lock: false,
            capacity: 10_000,
            local: false,
            version: 0,
            compress: None,
            encrypt: None,
            max_loads: None,
        }
    }
}

impl CacheOptions {
    /// How long a value is fresh.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    /// How long past its ttl a stale value may be served while it refreshes.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = Some(window);
        self
    }
    /// How long past its ttl a value may answer when its load fails.
    pub fn fail_safe(mut self, window: Duration) -> Self {
        self.fail_safe = Some(window);
        self
    }
    /// How long a fail-safe answer is kept before the load is tried again.
    pub fn fail_safe_retry(mut self, after: Duration) -> Self {
        self.fail_safe_retry = after;
        self
    }
    /// The fraction of the ttl after which a read refreshes in the background.
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.refresh_ahead = Some(fraction);
        self
    }
    /// Probabilistic early refresh (XFetch) with this beta (1.0 is the paper's
    /// default; larger refreshes earlier).
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.xfetch = Some(beta);
        self
    }
    /// Sliding expiration: a hit extends the value's freshness to now + ttl.
    pub fn sliding(mut self, sliding: bool) -> Self {
        self.sliding = sliding;
        self
    }
    /// How long a caller waits for a load before a kept value answers.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// One load per key for the whole fleet (a lock in Redis).
    pub fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }
    /// The L1 bound of this cache.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }
    /// Keep values in this process only.
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }
    /// Part of the Redis key: bump it when the value's meaning changes.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Compress this cache's payloads in Redis (above `Config::compress_above`, or
    /// 1 KiB if that is off), or never.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = Some(compress);
        self
    }
    /// Encrypt this cache's payloads in Redis, or not, whatever `Config::encrypt` says.
    pub fn encrypt(mut self, encrypt: bool) -> Self {
        self.encrypt = Some(encrypt);
        self
    }

    /// At most `n` loader runs of this cache at once in this process; the others
    /// wait their turn in order.
    pub fn max_loads(mut self, n: usize) -> Self {
        self.max_loads = Some(n);
        self
    }

    pub(crate) fn protection(&self) -> crate::l2::protection::PerCache {
        crate::l2::protection::PerCache {
            compress: self.compress,
            encrypt: self.encrypt,
        }
    }

    /// What the entries of a shared cache need of these options.
    pub(crate) fn entry_settings(&self) -> crate::l2::entry::EntrySettings {
        crate::l2::entry::EntrySettings {
            version: self.version,
            serves_stale: self.stale_window.is_some(),
            keeps_fallback: self.fail_safe.is_some(),
            refresh_after: self.lifetime().refresh_after,
            protection: self.protection(),
        }
    }

    /// The lifetime of a value loaded now.
    pub(crate) fn lifetime(&self) -> Lifetime {
        self.lifetime_with_ttl(self.ttl)
    }

    /// The lifetime of a value loaded now whose loader chose `ttl`.
    pub(crate) fn lifetime_with_ttl(&self, ttl: Option<Duration>) -> Lifetime {
        let fresh_for = ttl.map_or(NEVER, clock::to_ms);
        let stale_for = self.stale_window.map_or(0, clock::to_ms);
        let keep_for = stale_for.max(self.fail_safe.map_or(0, clock::to_ms));
        let refresh_after = match (self.refresh_ahead, self.xfetch, ttl) {
            (Some(fraction), _, Some(ttl)) => (clock::to_ms(ttl) as f64 * fraction) as u64,
            // Every fresh hit asks `xfetch::due`, which answers no at once far from
            // expiry.
            (None, Some(_), Some(_)) => 0,
            // `sliding`: the point of the next extension (see `sliding.rs`).
            (None, None, Some(ttl)) if self.sliding => clock::to_ms(ttl) / 4,
            _ => NEVER,
        };
        Lifetime {
            fresh_for,
            stale_for,
            keep_for,
            refresh_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::times::Times;

    #[test]
    fn lifetimes_cover_the_stale_and_fail_safe_windows() {
        let options = CacheOptions::default()
            .ttl(Duration::from_secs(10))
            .stale_window(Duration::from_secs(5))
            .fail_safe(Duration::from_secs(60))
            .refresh_ahead(0.8);
        let times = options.lifetime().from(1_000);
        assert_eq!(
            times,
            Times {
                fresh_until: 11_000,
                stale_until: 16_000,
                keep_until: 71_000,
                refresh_at: 9_000
            }
        );
        assert_eq!(times.remaining(1_000), options.lifetime());
        // Read 20 s in (stale since 11 s): nothing fresh or stale left, 51 s kept.
        let late = times.remaining(21_000);
        assert_eq!(
            (late.fresh_for, late.stale_for, late.keep_for),
            (0, 0, 50_000)
        );
        let stale = times.remaining(12_000);
        assert_eq!(
            (stale.fresh_for, stale.stale_for, stale.keep_for),
            (0, 4_000, 59_000)
        );
        let forever = CacheOptions::default().lifetime().from(5);
        assert_eq!(
            (forever.fresh_until, forever.keep_until, forever.refresh_at),
            (NEVER, NEVER, NEVER)
        );
    }
}
