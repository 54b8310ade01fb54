//! Tag versions: O(1) invalidation whatever the number of entries.
//!
//! Every tag has a version counter. A load records the versions of its tags *before*
//! the loader runs; an entry is valid only while every recorded version is still
//! current. Invalidating a tag is one increment, and every entry that recorded the
//! old version becomes invisible at once, including a load that raced the
//! invalidation: it recorded the old version before it read its data.
//!
//! Entries hold their tags as [`TagStamp`]s (a handle to the counter and the version
//! seen), so checking validity on a hit is a few atomic loads: no formatting, no map
//! lookup, no allocation.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use crate::sync::AtomicU64;

mod index;
mod name;

pub(crate) use index::{bump_named, held, intern, named_cells, sweep_unused};
use name::TagName;

/// One tag's version counter: a local epoch, plus the last version of the tag's
/// Redis counter this process has seen (`UNKNOWN` until it has seen one); and, for a
/// named tag, its name, kept here so that a tag costs one allocation.
#[derive(Debug)]
pub struct TagCell {
    version: AtomicU64,
    remote: AtomicU64,
    name: TagName,
}

const UNKNOWN: u64 = u64::MAX;
/// No version seen yet, and a value was kept under the tag without its Redis counter
/// read first (a `local` cache, or Redis down during the load): the first version
/// read later cannot be the one that value was loaded under.
const UNKNOWN_KEPT_UNREAD: u64 = u64::MAX - 1;

fn is_unknown(remote: u64) -> bool {
    remote >= UNKNOWN_KEPT_UNREAD
}

/// The remote version read for a tag whose counter Redis does not hold: no
/// information, never a lower version (Redis's counters are never 0).
pub(crate) const NO_COUNTER: u64 = 0;

trait RemoteVersion {
    /// Stores `version` if it is higher or nothing is known; returns the previous value.
    fn fetch_max_known(&self, version: u64) -> u64;
}

impl RemoteVersion for AtomicU64 {
    fn fetch_max_known(&self, version: u64) -> u64 {
        let update =
            |previous: u64| (is_unknown(previous) || version > previous).then_some(version);
        self.fetch_update(Ordering::AcqRel, Ordering::Acquire, update)
            .unwrap_or_else(|previous| previous)
    }
}

impl Default for TagCell {
    fn default() -> Self {
        Self::named("")
    }
}

impl TagCell {
    /// A cell for the tag `name` (empty for a cache's or the global tag).
    pub(crate) fn named(name: &str) -> Self {
        Self {
            version: AtomicU64::new(0),
            remote: AtomicU64::new(UNKNOWN),
            name: TagName::new(name),
        }
    }

    /// The tag's name; empty for a cache's or the global tag.
    pub(crate) fn name(&self) -> &str {
        self.name.as_str()
    }

    fn name_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// Records a version of this tag's Redis counter. A higher version than the last
    /// one seen means an invalidation this process was not told about (a lost
    /// message): the local epoch is bumped, so stale L1 entries stop being served.
    /// So does a first version seen after a value was kept under the tag unread:
    /// nothing says that value is older than it.
    pub(crate) fn observe_remote(&self, seen: u64) {
        if seen == NO_COUNTER {
            // Redis holds no counter (lost, or never created): no news of this tag.
            return;
        }
        let previous = self.remote.fetch_max_known(seen);
        let news = match previous {
            UNKNOWN => false,
            UNKNOWN_KEPT_UNREAD => true,
            known => seen > known,
        };
        if news {
            self.bump();
        }
    }

    /// A value is about to be kept under this tag without a version of its Redis
    /// counter read before its load (see [`UNKNOWN_KEPT_UNREAD`]). Only matters
    /// until a first version is seen.
    pub(crate) fn kept_unread(&self) {
        if self.remote.load(Ordering::Relaxed) == UNKNOWN {
            let _ = self.remote.compare_exchange(
                UNKNOWN,
                UNKNOWN_KEPT_UNREAD,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// Another process invalidated this tag, taking its Redis counter to `version`.
    /// Bumps the local epoch unless this process already knew of that version (from a
    /// read or a resync), so one invalidation is applied once.
    pub(crate) fn invalidated_at(&self, version: u64) {
        let previous = self.remote.fetch_max_known(version);
        if is_unknown(previous) || version > previous {
            self.bump();
        }
    }

    /// This process invalidated the tag (and bumped it already); Redis's counter is now
    /// `version`.
    pub(crate) fn learn_remote(&self, version: u64) {
        self.remote.fetch_max_known(version);
    }

    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// A tag handle plus the version a load saw before it started.
#[derive(Debug, Clone)]
pub struct TagStamp {
    cell: Arc<TagCell>,
    version: u64,
}

impl TagStamp {
    pub(crate) fn new(cell: Arc<TagCell>) -> Self {
        let version = cell.version();
        Self { cell, version }
    }

    pub(crate) fn cell(&self) -> &TagCell {
        &self.cell
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }
}

/// The stamps of one load, shared by the in-flight record and the stored entry.
pub type Stamps = Arc<[TagStamp]>;

/// True while no tag recorded in `stamps` has been invalidated since.
#[inline]
pub(crate) fn all_current(stamps: &[TagStamp]) -> bool {
    stamps.iter().all(|s| s.cell.version() == s.version)
}

/// Marks every tag of `stamps` as holding a value whose load read none of their
/// Redis counters (see [`TagCell::kept_unread`]); before that load's loader runs.
pub(crate) fn kept_unread(stamps: &[TagStamp]) {
    stamps.iter().for_each(|stamp| stamp.cell.kept_unread());
}

/// The tag that every entry carries: bumping it clears every cache.
pub(crate) static GLOBAL: LazyLock<Arc<TagCell>> = LazyLock::new(Default::default);

/// The versions of the global tag and of a cache's own tag, summed. Both only grow,
/// so the sum changes exactly when either does: an entry checks the two tags every
/// entry carries against one number.
#[inline]
pub(crate) fn base_version(cache_tag: &TagCell) -> u64 {
    GLOBAL.version().wrapping_add(cache_tag.version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_makes_recorded_stamp_stale() {
        let cell = intern("tags-test:bump");
        let stamps: Stamps = Arc::from(vec![TagStamp::new(cell.clone())]);
        assert!(all_current(&stamps));
        assert!(bump_named("tags-test:bump"));
        assert!(!all_current(&stamps));
        let fresh: Stamps = Arc::from(vec![TagStamp::new(cell)]);
        assert!(all_current(&fresh));
    }

    #[test]
    fn a_higher_remote_version_bumps_the_local_epoch_once_known() {
        let cell = TagCell::default();
        cell.observe_remote(5);
        assert_eq!(
            cell.version(),
            0,
            "the first sighting only learns the version"
        );
        cell.observe_remote(5);
        cell.observe_remote(4);
        assert_eq!(cell.version(), 0);
        cell.observe_remote(6);
        assert_eq!(cell.version(), 1, "a missed invalidation is caught up");
    }

    #[test]
    fn a_first_version_read_after_a_value_was_kept_unread_bumps_the_epoch() {
        let read_first = TagCell::default();
        read_first.observe_remote(5);
        assert_eq!(read_first.version(), 0, "a load that read first: no news");
        let unread = TagCell::default();
        unread.kept_unread();
        unread.observe_remote(NO_COUNTER);
        assert_eq!(unread.version(), 0, "no counter in Redis: no news either");
        unread.observe_remote(5);
        assert_eq!(
            unread.version(),
            1,
            "the value kept unread may be older than version 5"
        );
        unread.observe_remote(5);
        assert_eq!(unread.version(), 1, "known from then on");
    }

    #[test]
    fn a_message_applies_an_invalidation_once() {
        let cell = TagCell::default();
        cell.observe_remote(1);
        cell.invalidated_at(2);
        assert_eq!(cell.version(), 1);
        cell.observe_remote(2);
        assert_eq!(
            cell.version(),
            1,
            "a read after the message must not bump again"
        );
        let sender = TagCell::default();
        sender.bump();
        sender.learn_remote(3);
        sender.observe_remote(3);
        assert_eq!(
            sender.version(),
            1,
            "the sender's own invalidation is applied once"
        );
        let unknown = TagCell::default();
        unknown.invalidated_at(1);
        assert_eq!(
            unknown.version(),
            1,
            "with nothing known, a message always bumps"
        );
    }
}
