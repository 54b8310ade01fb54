//! What this process has heard of the changes made to single entries elsewhere.
//!
//! An `invalidate!`, `put!` or `refresh!` reaches the other processes by a message
//! alone: no tag counter moves, so the resync, which catches up on a lost tag
//! invalidation by reading its counter, had nothing to read, and a process whose
//! subscription was down when the message went kept its copy until its ttl. So each
//! such change also bumps a counter per cache in Redis, and its message carries the
//! version reached. A process notes the versions it hears of ([`heard`]) and, at each
//! resync, reads the counters ([`missed`]): a version that a message should have
//! brought by now, and did not, means a change it missed, and the cache's L1 is
//! dropped (which entry changed, the counter cannot say).
//!
//! The counter counts one by one (`l2::counters`), so a version is accounted for only
//! once every version before it is: one message lost among others heard (a cluster's
//! bus that drops one) leaves a gap, which the resync finds. (The counter took the
//! writer's clock at each change, and the newest version heard stood for all before
//! it: such a loss went unnoticed.)

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::l2::counters::is_first_change;

/// How many versions heard out of order a cache keeps waiting for the ones before
/// them. Past it, the newest are not kept: the gap stays open, and the next resync
/// but one takes the versions it read for missed (the cache's L1 is dropped), which
/// is safe.
const MAX_EARLY: usize = 4096;

/// Per cache: which versions this process has accounted for, and the counter as the
/// last resync read it.
struct Known {
    /// Every version up to this one was heard of, or taken for missed. The counter
    /// counts one by one (`l2::counters`), so a version heard is accounted for only
    /// once the one before it is: a version heard past a gap leaves the gap open.
    through: u64,
    /// Versions heard above `through + 1`: arrived before a version below them, or
    /// past one that was lost.
    early: BTreeSet<u64>,
    read: u64,
}

impl Known {
    /// Every version up to `through` accounted for, none heard past it, none read.
    fn up_to(through: u64) -> Self {
        Self {
            through,
            early: BTreeSet::new(),
            read: 0,
        }
    }

    fn hear(&mut self, version: u64) {
        if version <= self.through {
            return;
        }
        if self.follows(version) {
            self.through = version;
            self.close_up();
        } else if self.early.len() < MAX_EARLY {
            self.early.insert(version);
        }
    }

    /// Whether `version` is the change right after `through`: the next count, or a
    /// counter's first change after it was read missing (0).
    fn follows(&self, version: u64) -> bool {
        version == self.through + 1 || (self.through == 0 && is_first_change(version))
    }

    /// Every version up to `version` is accounted for (taken for missed).
    fn settle(&mut self, version: u64) {
        self.through = self.through.max(version);
        self.close_up();
    }

    /// Drops the versions heard early that are now accounted for, and takes in
    /// those that now follow.
    fn close_up(&mut self) {
        while let Some(&next) = self.early.first() {
            if next <= self.through {
                self.early.pop_first();
            } else if self.follows(next) {
                self.early.pop_first();
                self.through = next;
            } else {
                break;
            }
        }
    }
}

static KNOWN: LazyLock<Mutex<HashMap<String, Known>>> = LazyLock::new(Default::default);

/// A change of one of `cache`'s entries reached Redis at `version`: announced by
/// another process, or made by this one. The first version of a cache heard of
/// before any resync read its counter is taken as accounted for, with all before it.
pub(crate) fn heard(cache: &str, version: u64) {
    let mut known = KNOWN.lock();
    match known.get_mut(cache) {
        Some(known) => known.hear(version),
        None => {
            known.insert(cache.to_owned(), Known::up_to(version));
        }
    }
}

/// The resync read `cache`'s counter at `now` (0: Redis holds none, as before the
/// first change). True if this process missed a change: a version at or below the
/// one read one resync ago was never heard of, its message lost; or, with
/// `unheard_is_missed` (no message can be on its way: the first read after the
/// subscription was made again, before any message it brings is applied, or a read
/// while not subscribed at all), any version up to `now`.
pub(crate) fn missed(cache: &str, now: u64, unheard_is_missed: bool) -> bool {
    let mut known = KNOWN.lock();
    // A cache not read before, nor heard of: after a gap, every change may have been
    // missed (it may have been in use since the last resync); else the first read
    // only notes the counter.
    let known = known
        .entry(cache.to_owned())
        .or_insert_with(|| Known::up_to(if unheard_is_missed { 0 } else { now }));
    if now == 0 {
        // Lost with Redis, or no change yet: no news. The next change is numbered
        // above every one before it (the counter's start), so nothing is mistaken.
        return false;
    }
    if now < known.read {
        // An older read than the last one taken in: two resyncs overlap (one begins
        // at every tick), and the later one's answer came first. It says nothing
        // new. (A counter that went back is found before this is asked, and counted
        // afresh: `backplane::rollback`. This took such a read for one, and dropped
        // the cache's L1.)
        return false;
    }
    let missed = known.read > known.through || (unheard_is_missed && now > known.through);
    if missed {
        known.settle(now);
    }
    known.read = now;
    missed
}

/// The highest version of `cache`'s counter this process knows Redis held (heard of,
/// or read), if any: a read sent after this finds that or more, unless Redis lost
/// it (`backplane::rollback`).
pub(crate) fn highest_known(cache: &str) -> Option<u64> {
    let known = KNOWN.lock();
    let known = known.get(cache)?;
    let early = known.early.last().copied().unwrap_or(0);
    let highest = known.through.max(known.read).max(early);
    (highest != 0).then_some(highest)
}

/// Redis lost the versions of `cache`'s counter above `version`
/// (`backplane::rollback`): they will be issued again, for other changes, so the
/// count starts afresh from it.
pub(crate) fn went_back_to(cache: &str, version: u64) {
    let mut known = Known::up_to(version);
    known.read = version;
    KNOWN.lock().insert(cache.to_owned(), known);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_read_and_never_heard_of_by_the_next_resync_is_missed() {
        let cache = "entry_changes.lost";
        assert!(
            !missed(cache, 10, false),
            "the first read notes the counter"
        );
        heard(cache, 11);
        assert!(!missed(cache, 12, false), "12's message may be on its way");
        heard(cache, 12);
        assert!(!missed(cache, 13, false), "12 was heard");
        assert!(
            missed(cache, 13, false),
            "13 never came in a whole interval"
        );
        assert!(!missed(cache, 13, false), "and is missed once");
        assert!(!missed(cache, 0, false), "no counter, no news");
    }

    #[test]
    fn the_first_change_is_missed_too() {
        let cache = "entry_changes.first";
        assert!(!missed(cache, 0, false), "no change yet");
        assert!(!missed(cache, 0, false));
        assert!(missed(cache, 9, true), "the first change came during a gap");
    }

    #[test]
    fn after_a_gap_anything_newer_than_what_was_heard_is_missed() {
        let cache = "entry_changes.gap";
        assert!(!missed(cache, 5, false));
        heard(cache, 6);
        assert!(!missed(cache, 6, true));
        assert!(
            missed(cache, 7, true),
            "7 came while the subscription was down"
        );
        assert!(!missed(cache, 7, true));
    }

    #[test]
    fn a_cache_first_read_after_a_gap_may_have_missed_every_change() {
        assert!(!missed("entry_changes.unchanged", 0, true), "no change yet");
        assert!(missed("entry_changes.new", 9, true));
        assert!(!missed("entry_changes.new", 9, false));
        let quiet = "entry_changes.first_heard";
        assert!(!missed(quiet, 0, false));
        heard(quiet, 1025);
        assert!(!missed(quiet, 1025, true));
        assert!(missed(quiet, 1026, true));
    }

    #[test]
    fn a_change_never_heard_between_two_heard_is_missed() {
        let cache = "entry_changes.between";
        assert!(!missed(cache, 10, false));
        heard(cache, 11);
        heard(cache, 13);
        assert!(!missed(cache, 13, false), "12's message may be on its way");
        assert!(
            missed(cache, 13, false),
            "12 never came in a whole interval, though 13 did"
        );
        heard(cache, 14);
        assert!(!missed(cache, 14, false), "and is missed once");
        assert!(!missed(cache, 14, false));
    }

    /// The counter read at 30, 31 and 32 heard of, then read at 32.
    fn read_30_then_32_heard(cache: &str) {
        assert!(!missed(cache, 30, false));
        heard(cache, 31);
        heard(cache, 32);
        assert!(!missed(cache, 32, false));
    }

    #[test]
    fn a_counter_that_went_back_is_counted_afresh() {
        let cache = "entry_changes.failover";
        read_30_then_32_heard(cache);
        assert_eq!(highest_known(cache), Some(32));
        // A replica promoted without 32 (`backplane::rollback` found it).
        went_back_to(cache, 31);
        heard(cache, 32);
        assert!(!missed(cache, 32, false));
        assert!(!missed(cache, 32, false), "the new 32 was heard");
    }

    #[test]
    fn a_read_older_than_the_last_taken_in_is_no_news() {
        let cache = "entry_changes.overlapping";
        read_30_then_32_heard(cache);
        assert!(
            !missed(cache, 31, false),
            "an earlier resync's read, answered after a later one's, dropped the cache's L1"
        );
        assert!(!missed(cache, 32, false));
    }

    #[test]
    fn versions_heard_out_of_order_leave_no_gap() {
        let cache = "entry_changes.reordered";
        assert!(!missed(cache, 20, false));
        for version in [23, 21, 21, 22] {
            heard(cache, version);
        }
        assert!(!missed(cache, 23, false));
        assert!(!missed(cache, 23, false), "every version came, one twice");
    }

    #[test]
    fn a_counters_first_change_follows_its_read_as_missing() {
        let first = 7 * 1024 + 1;
        let cache = "entry_changes.created";
        assert!(!missed(cache, 0, false), "no counter yet");
        heard(cache, first);
        heard(cache, first + 1);
        assert!(!missed(cache, first + 1, false));
        assert!(
            !missed(cache, first + 1, false),
            "the first change was heard"
        );

        let cache = "entry_changes.created_unheard";
        assert!(!missed(cache, 0, false));
        heard(cache, first + 1);
        assert!(!missed(cache, first + 1, false));
        assert!(missed(cache, first + 1, false), "the first change was lost");
    }
}
