//! Tag versions: O(1) invalidation whatever the number of entries.
//!
//! Every tag has a version counter, its local epoch. A load records the versions of
//! its tags *before* the loader runs; an entry is valid only while every recorded
//! version is still current. Invalidating a tag is one increment, and every entry that
//! recorded the old version becomes invisible at once, including a load that raced
//! the invalidation: it recorded the old version before it read its data.
//!
//! The global tag and each cache's own tag have a counter of their own. Named tags
//! share a fixed array of counters, by the hash of their names (`epochs`): a named
//! tag costs no allocation, and a collision costs a spurious miss, never a stale read.
//! A named tag gets a [`TagCell`] only in a process with the Redis tier, where it
//! remembers the last version of the tag's Redis counter seen, to catch a missed
//! invalidation.
//!
//! A load holds its tags as [`TagStamp`]s (the counter and the version seen); an
//! entry keeps the sum of those versions and where each tag's counter is
//! ([`NamedSlot`], and `l1/stamps.rs`). Versions only grow, so the sum of the current
//! ones equals the entry's exactly while none has moved: checking validity on a hit
//! is a few atomic loads and one comparison: no formatting, no map lookup, no
//! allocation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use crate::sync::AtomicU64;

mod epochs;
mod index;
mod name;

pub(crate) use epochs::NamedSlot;
pub(crate) use index::{held, intern, named_cells, sweep_unused};
pub use name::TagName;

/// One tag's Redis bookkeeping: the last version of the tag's Redis counter this
/// process has seen (`UNKNOWN` until it has seen one), its local epoch (its own, or
/// its name's slot in the shared array) and, for a named tag, its name, kept here so
/// that a tag costs one allocation.
#[derive(Debug)]
pub struct TagCell {
    epoch: &'static AtomicU64,
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
    /// A cell with a counter of its own: a cache's. The counter lives as long as the
    /// process (8 bytes per cache, and caches are never dropped), since the stamps of
    /// loads point at it.
    fn default() -> Self {
        Self {
            epoch: Box::leak(Box::new(AtomicU64::new(0))),
            remote: AtomicU64::new(UNKNOWN),
            name: TagName::new(""),
        }
    }
}

impl TagCell {
    /// A cell for the named tag `name`, on its name's shared counter.
    pub(crate) fn named(name: &str) -> Self {
        Self {
            epoch: epochs::epoch(epochs::slot_of(name.as_bytes())),
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

    /// The last version of the tag's Redis counter this process knows of, if any.
    /// Redis held it before this process heard of it, so a read sent after this
    /// returns that or more, unless Redis lost it (see `backplane::rollback`).
    pub(crate) fn known_remote(&self) -> Option<u64> {
        let remote = self.remote.load(Ordering::Acquire);
        (!is_unknown(remote)).then_some(remote)
    }

    /// Redis lost the versions above `version` (`backplane::rollback`): the counter
    /// goes on from there, and what this process knew above it says nothing now.
    pub(crate) fn went_back_to(&self, version: u64) {
        self.remote.store(version, Ordering::Release);
    }

    #[cfg(test)]
    pub(crate) fn version(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The tag's local counter, which a cache keeps at hand for its hits.
    pub(crate) fn epoch(&self) -> &'static AtomicU64 {
        self.epoch
    }
}

/// A tag's counter plus the version a load saw before it started; and the tag's cell
/// where there is one (always for the global and cache tags; for a named tag, in a
/// process with the Redis tier).
#[derive(Debug, Clone)]
pub struct TagStamp {
    cell: Option<Arc<TagCell>>,
    epoch: &'static AtomicU64,
    version: u64,
}

impl TagStamp {
    pub(crate) fn new(cell: Arc<TagCell>) -> Self {
        let epoch = cell.epoch;
        let version = epoch.load(Ordering::Acquire);
        Self {
            cell: Some(cell),
            epoch,
            version,
        }
    }

    /// A stamp of the named tag `name`: with its cell once Redis versions are tracked,
    /// else of its shared counter alone.
    pub(crate) fn named(name: &str) -> Self {
        Self::named_by(name.as_bytes(), || name)
    }

    /// [`named`](Self::named) for a call's tag, read as text only for its cell.
    pub(crate) fn of_call(name: &TagName) -> Self {
        Self::named_by(name.as_bytes(), || name.as_str())
    }

    fn named_by<'a>(bytes: &[u8], name: impl FnOnce() -> &'a str) -> Self {
        if !TRACKS_REMOTE.load(Ordering::Acquire) {
            let slot = epochs::slot_of(bytes);
            let epoch = epochs::epoch(slot);
            let version = epoch.load(Ordering::Acquire);
            // Paired with `track_remote_versions` (both sides SeqCst): either it finds
            // the slot marked and bumps it past `version`, or this finds the switch
            // and takes a cell.
            epochs::mark_untracked(slot);
            if !TRACKS_REMOTE.load(Ordering::SeqCst) {
                return Self {
                    cell: None,
                    epoch,
                    version,
                };
            }
        }
        Self::new(intern(name()))
    }

    pub(crate) fn cell(&self) -> Option<&TagCell> {
        self.cell.as_deref()
    }

    /// The tag's cell, shared, for an entry to hold.
    pub(crate) fn cell_handle(&self) -> Option<Arc<TagCell>> {
        self.cell.clone()
    }

    /// Records a version of the tag's Redis counter (see [`TagCell::observe_remote`]);
    /// nothing to record without a cell.
    pub(crate) fn observe_remote(&self, seen: u64) {
        if let Some(cell) = &self.cell {
            cell.observe_remote(seen);
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.epoch.load(Ordering::Acquire) == self.version
    }
}

/// The stamps of one load, shared by the in-flight record and the stored entry.
pub type Stamps = Arc<[TagStamp]>;

/// True while no tag recorded in `stamps` has been invalidated since.
#[inline]
pub(crate) fn all_current(stamps: &[TagStamp]) -> bool {
    stamps.iter().all(TagStamp::is_current)
}

/// Marks every tag of `stamps` as holding a value whose load read none of their
/// Redis counters (see [`TagCell::kept_unread`]); before that load's loader runs.
pub(crate) fn kept_unread(stamps: &[TagStamp]) {
    stamps
        .iter()
        .filter_map(TagStamp::cell)
        .for_each(TagCell::kept_unread);
}

/// The tag that every entry carries: bumping it clears every cache.
pub(crate) static GLOBAL: LazyLock<Arc<TagCell>> = LazyLock::new(|| {
    Arc::new(TagCell {
        epoch: epochs::epoch(epochs::GLOBAL_SLOT),
        remote: AtomicU64::new(UNKNOWN),
        name: TagName::new(""),
    })
});

/// Whether named tags get cells, to track their Redis counters: from the moment the
/// Redis tier is installed.
static TRACKS_REMOTE: AtomicBool = AtomicBool::new(false);

/// The Redis tier is installed: from now on named tags get cells. The entries kept
/// before under named tags, which have none, are dropped: their slots are bumped,
/// after the switch, so a stamp taken before it cannot keep a value that lives on.
/// Entries without named tags stay.
pub(crate) fn track_remote_versions() {
    TRACKS_REMOTE.store(true, Ordering::SeqCst);
    epochs::bump_untracked();
}

/// Invalidates the named tag `tag` in this process: its counter is bumped, with the
/// tags that share it.
pub(crate) fn bump_named(tag: &str) {
    epochs::epoch(epochs::slot_of(tag.as_bytes())).fetch_add(1, Ordering::AcqRel);
}

/// The versions of the global tag and of a cache's own tag, summed. Both only grow,
/// so the sum changes exactly when either does: an entry checks the two tags every
/// entry carries against one number.
#[inline]
pub(crate) fn base_version(cache_epoch: &AtomicU64) -> u64 {
    let global = epochs::epoch(epochs::GLOBAL_SLOT).load(Ordering::Acquire);
    global.wrapping_add(cache_epoch.load(Ordering::Acquire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_makes_recorded_stamp_stale() {
        let cell = intern("tags-test:bump");
        let stamps: Stamps = Arc::from(vec![TagStamp::new(cell.clone())]);
        let without_cell: Stamps = Arc::from(vec![TagStamp::named("tags-test:bump")]);
        assert!(all_current(&stamps) && all_current(&without_cell));
        bump_named("tags-test:bump");
        assert!(!all_current(&stamps));
        assert!(
            !all_current(&without_cell),
            "the cell and the name share a counter"
        );
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
