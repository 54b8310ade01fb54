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

/// [`Times`] as an L1 entry keeps them, in 24 bytes instead of 32: the refresh point,
/// and the other three as distances in milliseconds (the end of freshness from the
/// refresh point, the two windows from the end of freshness). The refresh point is the
/// one a hit reads, so it is kept as it is: a hit compares it with the time, with
/// nothing to add.
///
/// A distance beyond `u32`'s range (49 days) is kept shorter: a stale window or a
/// fail-safe fallback then ends early, and a refresh ahead comes later, still within
/// freshness; never the other way round. Times past the end of the keep window are
/// brought back to it (an entry is not used past it anyway), so freshness and the
/// stale window always end within it. No refresh point reads back as a refresh due
/// at the end of freshness, which a read treats the same: a fresh entry is served
/// as it is, a later one is not fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryTimes {
    refresh_at: u64,
    /// How long after the refresh point freshness ends (0: no refresh is due before).
    refresh_lead: u32,
    stale_for: u32,
    keep_for: u32,
}

/// A distance that never ends.
const NO_END: u32 = u32::MAX;

/// A span of milliseconds as a distance, shortened to the longest one that ends.
fn distance_of(span: u64) -> u32 {
    u32::try_from(span).map_or(NO_END - 1, |span| span.min(NO_END - 1))
}

impl From<Times> for EntryTimes {
    fn from(times: Times) -> Self {
        let fresh_until = times.fresh_until.min(times.keep_until);
        let distance = |until: u64| match until.min(times.keep_until) {
            NEVER => NO_END,
            until => distance_of(until.saturating_sub(fresh_until)),
        };
        let refresh_lead = distance_of(fresh_until.saturating_sub(times.refresh_at));
        Self {
            // Never past the end of freshness, and `refresh_at + refresh_lead` is
            // that end exactly.
            refresh_at: fresh_until - u64::from(refresh_lead),
            refresh_lead,
            stale_for: distance(times.stale_until),
            keep_for: distance(times.keep_until),
        }
    }
}

impl EntryTimes {
    #[inline]
    fn after_freshness(&self, distance: u32) -> u64 {
        if distance == NO_END {
            NEVER
        } else {
            self.fresh_until().saturating_add(u64::from(distance))
        }
    }

    #[inline]
    pub(crate) fn fresh_until(&self) -> u64 {
        self.refresh_at + u64::from(self.refresh_lead)
    }

    #[inline]
    pub(crate) fn stale_until(&self) -> u64 {
        self.after_freshness(self.stale_for)
    }

    #[inline]
    pub(crate) fn keep_until(&self) -> u64 {
        self.after_freshness(self.keep_for)
    }

    /// Fresh, and not yet at the refresh point: served with nothing to decide.
    #[inline]
    pub(crate) fn is_fresh_before_refresh(&self, now: u64) -> bool {
        // The refresh point is never past the end of freshness: one comparison.
        now < self.refresh_at
    }

    /// When a read should refresh the entry ahead; the end of freshness if never.
    #[inline]
    pub(crate) fn refresh_at(&self) -> u64 {
        self.refresh_at
    }

    pub(crate) fn get(&self) -> Times {
        Times {
            fresh_until: self.fresh_until(),
            stale_until: self.stale_until(),
            keep_until: self.keep_until(),
            refresh_at: self.refresh_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_times_keep_what_fits_and_shorten_what_does_not() {
        let day = 86_400_000;
        let times = Lifetime {
            fresh_for: 60_000,
            stale_for: 30_000,
            keep_for: day,
            refresh_after: 45_000,
        }
        .from(1_000_000);
        assert_eq!(EntryTimes::from(times).get(), times);
        let never = Lifetime {
            fresh_for: NEVER,
            stale_for: NEVER,
            keep_for: NEVER,
            refresh_after: NEVER,
        }
        .from(5);
        assert_eq!(EntryTimes::from(never).get(), never);
        let stale_forever = Lifetime {
            fresh_for: 10,
            stale_for: NEVER,
            keep_for: NEVER,
            refresh_after: NEVER,
        }
        .from(5);
        let no_refresh_point = Times {
            refresh_at: stale_forever.fresh_until,
            ..stale_forever
        };
        assert_eq!(EntryTimes::from(stale_forever).get(), no_refresh_point);

        let long = Lifetime {
            fresh_for: 60 * day,
            stale_for: 60 * day,
            keep_for: 90 * day,
            refresh_after: day,
        }
        .from(7);
        let kept = EntryTimes::from(long).get();
        assert_eq!(kept.fresh_until, long.fresh_until);
        assert!(kept.stale_until < long.stale_until && kept.stale_until > long.fresh_until);
        assert!(kept.keep_until < long.keep_until && kept.keep_until >= kept.stale_until);
        assert!(kept.refresh_at > long.refresh_at && kept.refresh_at < long.fresh_until);
        assert_eq!(std::mem::size_of::<EntryTimes>(), 24);
    }

    #[test]
    fn times_past_the_keep_window_are_brought_back_to_it() {
        let odd = Times {
            fresh_until: 100,
            stale_until: 200,
            keep_until: 50,
            refresh_at: 80,
        };
        let kept = EntryTimes::from(odd).get();
        assert_eq!(kept.keep_until, 50);
        assert!(kept.fresh_until <= 50 && kept.stale_until <= 50);
        let stale_forever_kept_a_while = Times {
            fresh_until: 100,
            stale_until: NEVER,
            keep_until: 500,
            refresh_at: NEVER,
        };
        let kept = EntryTimes::from(stale_forever_kept_a_while).get();
        assert_eq!((kept.stale_until, kept.keep_until), (500, 500));
    }
}
