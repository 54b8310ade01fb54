//! Redis going back: a counter read below a version this process knew it held
//! before the read was sent. Redis lost the invalidations that took it there
//! (restarted from a snapshot older than them, or a replica promoted before it had
//! caught up), and holds again the entries they superseded: under a tag, valid under
//! the counter as it was then; for an entry (`invalidate!`, `put!`, `refresh!`), the
//! entry its tombstone or value had replaced. Either was served, to a process that
//! never heard of those invalidations (one started since), until its ttl. So the
//! invalidation is made again, here and in Redis: a tag's takes its counter past
//! every version it held then (`l2::counters`); an entry's, which the counter cannot
//! name, is its whole cache's.
//!
//! What a process knew is taken before the read is sent: a version read lower than
//! one heard while the read was on its way is no loss (the bump's message overtook
//! the read).

use std::sync::Arc;

use crate::l2::L2;
use crate::outbox::{Invalidation, Sending};
use crate::tags::{self, TagCell, NO_COUNTER};
use crate::{entry_changes, registry};

/// A counter whose read is checked for going back, with the highest version this
/// process knew of before the read was sent.
pub(super) struct Checked {
    known: Option<u64>,
    counter: Counter,
}

enum Counter {
    Global(Arc<TagCell>),
    CacheTag(String, Arc<TagCell>),
    Named(Arc<TagCell>),
    /// A cache's entry-change counter (`entry_changes`).
    EntryChanges(String),
}

impl Checked {
    pub(super) fn global() -> Self {
        let cell = tags::GLOBAL.clone();
        Self {
            known: cell.known_remote(),
            counter: Counter::Global(cell),
        }
    }

    pub(super) fn cache_tag(cache: &str, cell: Arc<TagCell>) -> Self {
        Self {
            known: cell.known_remote(),
            counter: Counter::CacheTag(cache.to_owned(), cell),
        }
    }

    pub(super) fn named(cell: Arc<TagCell>) -> Self {
        Self {
            known: cell.known_remote(),
            counter: Counter::Named(cell),
        }
    }

    pub(super) fn entry_changes(cache: &str) -> Self {
        Self {
            known: entry_changes::highest_known(cache),
            counter: Counter::EntryChanges(cache.to_owned()),
        }
    }

    /// Takes in `seen`, the version read; true if Redis went back, and the
    /// invalidation is to be made again ([`make_again`]). An entry-change counter
    /// that did not go back is the caller's to take in (`entry_changes::missed`).
    pub(super) fn observe(&self, seen: u64) -> bool {
        let went_back = seen != NO_COUNTER && self.known.is_some_and(|known| seen < known);
        match &self.counter {
            Counter::Global(cell) | Counter::CacheTag(_, cell) | Counter::Named(cell) => {
                if went_back {
                    // Once: the next read finds the counter at `seen` or past it.
                    cell.went_back_to(seen);
                } else {
                    cell.observe_remote(seen);
                }
            }
            Counter::EntryChanges(cache) if went_back => entry_changes::went_back_to(cache, seen),
            Counter::EntryChanges(_) => {}
        }
        went_back
    }

    /// Makes the invalidation again, here (what was read from Redis since it went
    /// back may be kept in L1) and in Redis, delivered or queued as any other.
    fn make_again(&self, l2: &'static L2) {
        let invalidation = match &self.counter {
            Counter::Global(_) => {
                tags::GLOBAL.bump();
                registry::clear_all_stores();
                Invalidation::all()
            }
            Counter::CacheTag(cache, _) | Counter::EntryChanges(cache) => {
                Invalidation::cache(cache, registry::clear_named(cache))
            }
            Counter::Named(cell) => {
                tags::bump_named(cell.name());
                Invalidation::tag(cell.name())
            }
        };
        tokio::spawn(Sending::new(l2, invalidation).deliver());
    }
}

/// Makes again the invalidations of the counters a resync found gone back.
pub(super) fn make_again<'a>(l2: &'static L2, went_back: impl IntoIterator<Item = &'a Checked>) {
    let made = make_each_again(l2, went_back);
    if made > 0 {
        tracing::warn!(
            counters = made,
            "stratacache: counters found below versions Redis held (restored from an older snapshot, or a replica promoted before it caught up); their invalidations made again"
        );
    }
}

/// Makes again the entry-level invalidations of `caches` (each its whole cache's):
/// a Redis server came up with data from before them (`restarts`), and may hold
/// the entries they replaced, under counters that did not go back.
pub(super) fn make_entry_changes_again(l2: &'static L2, caches: &[String]) {
    let checked: Vec<Checked> = caches
        .iter()
        .map(|cache| Checked::entry_changes(cache))
        .collect();
    let made = make_each_again(l2, &checked);
    if made > 0 {
        tracing::warn!(
            caches = made,
            "stratacache: a Redis server came up with data from before (a snapshot, a log, a replica promoted); the entry-level invalidations of the caches changed here made again"
        );
    }
}

fn make_each_again<'a>(l2: &'static L2, checked: impl IntoIterator<Item = &'a Checked>) -> u64 {
    let mut made = 0;
    for checked in checked {
        checked.make_again(l2);
        made += 1;
    }
    if made > 0 {
        crate::stats::count_invalidations_made_again(made);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_read_below_a_version_known_before_the_read_went_back_once() {
        let cell = Arc::new(TagCell::named("rollback-a"));
        cell.observe_remote(10);
        let read = Checked::named(cell.clone());
        assert!(read.observe(7), "Redis lost versions 8 to 10");
        assert_eq!(cell.known_remote(), Some(7));
        let next = Checked::named(cell.clone());
        assert!(!next.observe(7), "made again once, not at every read");
    }

    #[test]
    fn a_version_heard_while_the_read_was_on_its_way_is_no_loss() {
        let cell = Arc::new(TagCell::named("rollback-b"));
        cell.observe_remote(10);
        let read = Checked::named(cell.clone());
        // The bump's message overtakes the read, which Redis answered before it.
        cell.invalidated_at(11);
        assert!(!read.observe(10));
        assert_eq!(cell.known_remote(), Some(11));
    }

    #[test]
    fn a_counter_lost_or_never_read_is_no_going_back() {
        let cell = Arc::new(TagCell::named("rollback-c"));
        let unknown = Checked::named(cell.clone());
        assert!(!unknown.observe(5));
        let known = Checked::named(cell.clone());
        assert!(!known.observe(NO_COUNTER), "a missing counter is no news");
        assert_eq!(cell.known_remote(), Some(5));
    }
}
