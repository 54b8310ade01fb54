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

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

/// Per cache: the newest version heard of, and the counter as the last resync read it.
#[derive(Clone, Copy)]
struct Known {
    heard: u64,
    read: u64,
}

static KNOWN: LazyLock<Mutex<HashMap<String, Known>>> = LazyLock::new(Default::default);

/// A change of one of `cache`'s entries reached Redis at `version`: announced by
/// another process, or made by this one.
pub(crate) fn heard(cache: &str, version: u64) {
    let mut known = KNOWN.lock();
    match known.get_mut(cache) {
        Some(known) => known.heard = known.heard.max(version),
        None => {
            known.insert(
                cache.to_owned(),
                Known {
                    heard: version,
                    read: 0,
                },
            );
        }
    }
}

/// The resync read `cache`'s counter at `now` (0: Redis holds none, as before the
/// first change). True if this
/// process missed a change: a version read one resync ago was never heard of, its
/// message lost; or, with `unheard_is_missed` (no message can be on its way: the
/// first read after the subscription was made again, before any message it brings
/// is applied, or a read while not subscribed at all), any version newer than what
/// was heard.
pub(crate) fn missed(cache: &str, now: u64, unheard_is_missed: bool) -> bool {
    let mut known = KNOWN.lock();
    let known = known.entry(cache.to_owned()).or_insert(Known {
        // A cache not read before, nor heard of: after a gap, every change may have
        // been missed (it may have been in use since the last resync); else the
        // first read only notes the counter.
        heard: if unheard_is_missed { 0 } else { now },
        read: 0,
    });
    if now == 0 {
        // Lost with Redis, or no change yet: no news. The next change is numbered
        // above every one before it (the counters' floor), so nothing is mistaken.
        return false;
    }
    let missed = known.read > known.heard || (unheard_is_missed && now > known.heard);
    if missed {
        known.heard = known.heard.max(now);
    }
    known.read = now;
    missed
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
        heard(quiet, 9);
        assert!(!missed(quiet, 9, true));
        assert!(missed(quiet, 10, true));
    }
}
