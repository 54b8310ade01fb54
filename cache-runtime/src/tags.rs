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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use crate::sync::AtomicU64;

/// One tag's version counter: a local epoch, plus the last version of the tag's
/// Redis counter this process has seen (`UNKNOWN` until it has seen one).
#[derive(Debug)]
pub struct TagCell {
    version: AtomicU64,
    remote: AtomicU64,
}

const UNKNOWN: u64 = u64::MAX;

trait RemoteVersion {
    /// Stores `version` if it is higher or nothing is known; returns the previous value.
    fn fetch_max_known(&self, version: u64) -> u64;
}

impl RemoteVersion for AtomicU64 {
    fn fetch_max_known(&self, version: u64) -> u64 {
        let update = |previous: u64| (previous == UNKNOWN || version > previous).then_some(version);
        self.fetch_update(Ordering::AcqRel, Ordering::Acquire, update)
            .unwrap_or_else(|previous| previous)
    }
}

impl Default for TagCell {
    fn default() -> Self {
        Self {
            version: AtomicU64::new(0),
            remote: AtomicU64::new(UNKNOWN),
        }
    }
}

impl TagCell {
    /// Records a version of this tag's Redis counter. A higher version than the last
    /// one seen means an invalidation this process was not told about (a lost
    /// message): the local epoch is bumped, so stale L1 entries stop being served.
    pub(crate) fn observe_remote(&self, seen: u64) {
        if seen == crate::l2::counters::MISSING {
            // Redis holds no counter (lost, or never created): no news of this tag.
            return;
        }
        let previous = self.remote.fetch_max_known(seen);
        if previous != UNKNOWN && seen > previous {
            self.bump();
        }
    }

    /// Another process invalidated this tag, taking its Redis counter to `version`.
    /// Bumps the local epoch unless this process already knew of that version (from a
    /// read or a resync), so one invalidation is applied once.
    pub(crate) fn invalidated_at(&self, version: u64) {
        let previous = self.remote.fetch_max_known(version);
        if previous == UNKNOWN || version > previous {
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
}

/// The stamps of one load, shared by the in-flight record and the stored entry.
pub type Stamps = Arc<[TagStamp]>;

/// True while no tag recorded in `stamps` has been invalidated since.
#[inline]
pub(crate) fn all_current(stamps: &[TagStamp]) -> bool {
    stamps.iter().all(|s| s.cell.version() == s.version)
}

/// The tag that every entry carries: bumping it clears every cache.
pub(crate) static GLOBAL: LazyLock<Arc<TagCell>> = LazyLock::new(Default::default);

/// Named tags, in shards. A cell lives while an entry or a load holds it; cells
/// nobody holds are dropped, so `user:{id}` tags do not accumulate forever:
///
/// - when a shard has grown by a quarter since it was last swept, by the call that
///   adds a cell (amortized O(1) per new tag, so the index stays within about 1.25
///   times the live cells however fast keys churn);
/// - one shard per call of [`sweep_unused`] (every second), so an idle index shrinks
///   without a pass over every tag at once.
static NAMED: LazyLock<Box<[RwLock<TagShard>]>> =
    LazyLock::new(|| (0..SHARDS).map(|_| RwLock::default()).collect());
const SHARDS: usize = 64;
/// Below this a shard is not swept on growth: sweeping it would cost more than it saves.
const MIN_SWEPT_LEN: usize = 64;
static SWEEP_CURSOR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Default)]
struct TagShard {
    cells: HashMap<Box<str>, Arc<TagCell>, foldhash::fast::RandomState>,
    /// How many cells the shard held after its last sweep.
    swept_len: usize,
}

impl TagShard {
    /// Drops cells only the index holds, and gives memory back once mostly empty.
    fn sweep(&mut self) {
        self.cells.retain(|_, cell| Arc::strong_count(cell) > 1);
        if self.cells.capacity() > 4 * self.cells.len().max(MIN_SWEPT_LEN) {
            self.cells.shrink_to(2 * self.cells.len());
        }
        self.swept_len = self.cells.len();
    }
}

fn shard(tag: &str) -> &'static RwLock<TagShard> {
    use std::hash::BuildHasher;
    let hash = foldhash::fast::FixedState::with_seed(0x7a65).hash_one(tag);
    &NAMED[(hash >> 58) as usize % SHARDS]
}

/// The cell for `tag`, created at version 0 if nobody holds it.
pub(crate) fn intern(tag: &str) -> Arc<TagCell> {
    let shard = shard(tag);
    if let Some(cell) = shard.read().cells.get(tag) {
        return cell.clone();
    }
    let mut shard = shard.write();
    if let Some(cell) = shard.cells.get(tag) {
        return cell.clone();
    }
    if 4 * shard.cells.len() >= 5 * shard.swept_len.max(MIN_SWEPT_LEN) {
        shard.sweep();
    }
    shard.cells.entry(tag.into()).or_default().clone()
}

/// The cell of `tag` if an entry or a load holds it.
pub(crate) fn held(tag: &str) -> Option<Arc<TagCell>> {
    shard(tag).read().cells.get(tag).cloned()
}

/// Bumps `tag` if any entry or load holds it. A tag nobody holds needs no bump: a load
/// that starts afterwards creates the cell and reads data written before this call.
pub(crate) fn bump_named(tag: &str) -> bool {
    match shard(tag).read().cells.get(tag) {
        Some(cell) => {
            cell.bump();
            true
        }
        None => false,
    }
}

/// Every named tag that an entry or a load holds, for a resync.
pub(crate) fn named_cells() -> Vec<(Box<str>, Arc<TagCell>)> {
    NAMED
        .iter()
        .flat_map(|shard| {
            let shard = shard.read();
            let cells: Vec<_> = shard
                .cells
                .iter()
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect();
            cells
        })
        .collect()
}

/// Drops the cells that only the index holds, in the next shard.
pub(crate) fn sweep_unused() {
    let next = SWEEP_CURSOR.fetch_add(1, Ordering::Relaxed) % SHARDS;
    NAMED[next].write().sweep();
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

    #[test]
    fn churning_tags_keep_the_index_within_twice_the_live_cells() {
        let live: Vec<_> = (0..1_000)
            .map(|i| intern(&format!("tags-test:live:{i}")))
            .collect();
        for i in 0..200_000 {
            drop(intern(&format!("tags-test:churn:{i}")));
        }
        let held = named_cells().len();
        // Per shard: at most twice its live cells, or twice the floor below which it
        // is not swept on growth (other tests' cells included).
        let bound = 2 * live.len() + SHARDS * 2 * MIN_SWEPT_LEN + 200;
        assert!(held <= bound, "{held} cells held for 1000 live tags");
        assert!(named_cells().len() >= live.len());
    }

    #[test]
    fn unheld_tags_are_not_created_by_invalidation_and_are_swept() {
        assert!(!bump_named("tags-test:nobody"));
        let held = intern("tags-test:held");
        drop(intern("tags-test:dropped"));
        for _ in 0..SHARDS {
            sweep_unused();
        }
        let names: Vec<String> = named_cells().iter().map(|(k, _)| k.to_string()).collect();
        assert!(names.contains(&"tags-test:held".to_string()));
        assert!(!names.contains(&"tags-test:dropped".to_string()));
        drop(held);
    }
}
