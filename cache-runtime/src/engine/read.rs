//! The L1 read of a call: the common hit (`fresh_value`, kept small and inline),
//! what any other lookup decides (`lookup_by`: refresh points, stale windows, dead
//! entries, which it drops), and a miss's look again under the flights lock
//! (`join_or_lead`).

use std::sync::Arc;

use super::{Cache, CacheKey, CacheValue};
use crate::clock;
use crate::flight::Flight;
use crate::l1::{Entry, L1Store};
use crate::stats::Counter;

/// A caller's part in the load of its key.
pub(super) enum Role<V> {
    Hit(V),
    Lead(Arc<Flight<V>>),
    Follow(Arc<Flight<V>>),
}

/// What a lookup found for a key.
pub(super) enum Seen<V> {
    Fresh(V),
    /// Fresh, and past the refresh-ahead point.
    Refresh(V),
    /// Past its ttl, inside the stale-while-revalidate window.
    Stale(V),
    /// Nothing servable (an entry kept only as a fail-safe fallback counts as nothing).
    Gone,
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// The common hit, with nothing to decide: a fresh entry before its refresh
    /// point. `None` sends the caller to [`lookup_by`](Self::lookup_by), which
    /// handles the rest (refresh points, stale windows, dead entries).
    #[inline(always)]
    pub(super) fn fresh_value<Q>(&self, key: &Q) -> Option<V>
    where
        Q: ?Sized + std::hash::Hash + crate::values::Equivalent<K>,
    {
        let now = clock::coarse_ms();
        self.store.read_some(key, |entry| {
            let fresh = entry.times.is_fresh_before_refresh(now);
            (fresh && entry.stamps.are_current(self.tag_epoch)).then(|| entry.value.clone())
        })
    }

    #[inline]
    pub(super) fn lookup(&self, key: &K) -> Seen<V> {
        self.lookup_by(key, || key.clone())
    }

    /// [`lookup`](Self::lookup) by a borrowed form of the key; `owned` makes the key
    /// for the rare answers that need one (a dead entry, a refresh point).
    #[inline]
    pub(super) fn lookup_by<Q>(&self, key: &Q, owned: impl FnOnce() -> K) -> Seen<V>
    where
        Q: ?Sized + std::hash::Hash + crate::values::Equivalent<K>,
    {
        let now = clock::coarse_ms();
        let dead = std::cell::Cell::new(false);
        // An entry's freshness and stale window end within its keep window
        // (`EntryTimes`): within them it is retained, unless a tag was invalidated.
        // Past them it is kept only as a fail-safe fallback: nothing to serve.
        let seen = self.store.read(key, |entry| {
            let times = &entry.times;
            if !entry.stamps.are_current(self.tag_epoch) {
                dead.set(true);
                Seen::Gone
            } else if now < times.fresh_until() {
                let value = entry.value.clone();
                if now < times.refresh_at() {
                    Seen::Fresh(value)
                } else {
                    Seen::Refresh(value)
                }
            } else if now < times.stale_until() {
                Seen::Stale(entry.value.clone())
            } else {
                dead.set(now >= times.keep_until());
                Seen::Gone
            }
        });
        match seen {
            Some(Seen::Fresh(value)) => Seen::Fresh(value),
            // Past `refresh_at`: what that means is decided out of line.
            Some(Seen::Refresh(value)) => self.past_refresh_point(&owned(), value, now),
            Some(Seen::Stale(value)) => Seen::Stale(value),
            Some(Seen::Gone) | None => {
                if dead.get() {
                    self.drop_unusable(&owned(), now);
                }
                Seen::Gone
            }
        }
    }

    /// Whether L1 holds a value it would serve now (fresh, or inside its stale
    /// window, its tags current), looked at without the side effects of a lookup.
    pub(super) fn holds_servable(&self, key: &K) -> bool {
        let now = clock::coarse_ms();
        let servable =
            |e: &Entry<V>| e.stamps.are_current(self.tag_epoch) && now < e.times.stale_until();
        self.store.read(key, servable).unwrap_or(false)
    }

    /// Fresh and not yet due for a refresh: what a refresh that just landed leaves
    /// (with XFetch: more than half its ttl left).
    pub(super) fn needs_no_refresh(&self, key: &K) -> bool {
        let now = clock::coarse_ms();
        let half_ttl = self
            .options
            .ttl
            .map_or(u64::MAX, |ttl| clock::to_ms(ttl) / 2);
        let xfetch = self.options.xfetch.is_some();
        let current = |e: &Entry<V>| {
            let times = e.times.get();
            let not_due = if xfetch {
                times.fresh_until.saturating_sub(now) > half_ttl
            } else {
                now < times.refresh_at
            };
            e.is_retained(now, self.tag_epoch) && now < times.fresh_until && not_due
        };
        self.store.read(key, current).unwrap_or(false)
    }

    #[cold]
    pub(super) fn drop_unusable(&self, key: &K, now: u64) {
        let mut invalidated = false;
        self.store.remove_if(key, |entry| {
            invalidated = !entry.stamps.are_current(self.tag_epoch);
            invalidated || now >= entry.times.keep_until()
        });
        if invalidated {
            self.stats.bump(Counter::Invalidation);
        }
    }

    /// The caller's part in the load of `key`: a hit, or the key's flight to join or
    /// to lead.
    pub(super) fn join_or_lead(&self, key: &K) -> Role<V> {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.joinable(key) {
            return Role::Follow(flight);
        }
        // A leader stores before it retires its flight, both under this lock: with no
        // flight to join, a value it just stored is visible here.
        if let Seen::Fresh(value) | Seen::Refresh(value) = self.lookup(key) {
            return Role::Hit(value);
        }
        Role::Lead(flights.lead(key.clone(), Flight::new()))
    }
}
