//! Lifetimes and times of entries, in milliseconds: how long a value stays fresh,
//! servable stale and kept as a fallback, and the same made absolute. A leaf: the
//! engine, the stores and the Redis envelope all use it.

/// "Never" in lifetimes and times.
pub(crate) const NEVER: u64 = u64::MAX;

/// How long (milliseconds from now) a value is fresh; then servable stale while it is
/// refreshed; then kept as a fail-safe fallback (`keep_for` counts from the end of
/// freshness, and covers the stale window); and when a read should refresh it ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub(crate) fresh_for: u64,
    pub(crate) stale_for: u64,
    pub(crate) keep_for: u64,
    pub(crate) refresh_after: u64,
}

/// A [`Lifetime`] made absolute, in one clock's milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) fresh_until: u64,
    pub(crate) stale_until: u64,
    pub(crate) keep_until: u64,
    pub(crate) refresh_at: u64,
}

impl Lifetime {
    pub(crate) fn from(self, now: u64) -> Times {
        let fresh_until = now.saturating_add(self.fresh_for);
        Times {
            fresh_until,
            stale_until: fresh_until.saturating_add(self.stale_for),
            keep_until: fresh_until.saturating_add(self.keep_for),
            refresh_at: now.saturating_add(self.refresh_after),
        }
    }
}

impl Times {
    /// What is left of these times at `now`, as a lifetime. Past freshness, the stale
    /// and keep windows count from `now`: what is left of them, not their full length.
    pub(crate) fn remaining(self, now: u64) -> Lifetime {
        let left = |until: u64| {
            if until == NEVER {
                NEVER
            } else {
                until.saturating_sub(now)
            }
        };
        let windows_from = self.fresh_until.max(now);
        Lifetime {
            fresh_for: left(self.fresh_until),
            stale_for: self.stale_until.saturating_sub(windows_from),
            keep_for: self.keep_until.saturating_sub(windows_from),
            refresh_after: left(self.refresh_at),
        }
    }
}
