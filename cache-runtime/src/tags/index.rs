//! The index of named tags: one cell per tag that an entry or a load holds, found by
//! name when a load stamps its tags or an invalidation arrives.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use super::TagCell;

/// A cell in the index, hashed and compared by its name's bytes (which it holds
/// itself); the index is searched with `tag.as_bytes()`.
struct ByName(Arc<TagCell>);

impl Borrow<[u8]> for ByName {
    fn borrow(&self) -> &[u8] {
        self.0.name_bytes()
    }
}

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name_bytes().hash(state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name_bytes() == other.0.name_bytes()
    }
}

impl Eq for ByName {}

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
    cells: HashSet<ByName, foldhash::fast::RandomState>,
    /// How many cells the shard held after its last sweep.
    swept_len: usize,
}

impl TagShard {
    /// Drops cells only the index holds, and gives memory back once mostly empty.
    fn sweep(&mut self) {
        self.cells.retain(|cell| Arc::strong_count(&cell.0) > 1);
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

/// The cell for `tag`, created (on its name's shared counter) if nobody holds it.
pub(crate) fn intern(tag: &str) -> Arc<TagCell> {
    let shard = shard(tag);
    if let Some(cell) = shard.read().cells.get(tag.as_bytes()) {
        return cell.0.clone();
    }
    let mut shard = shard.write();
    if let Some(cell) = shard.cells.get(tag.as_bytes()) {
        return cell.0.clone();
    }
    if 4 * shard.cells.len() >= 5 * shard.swept_len.max(MIN_SWEPT_LEN) {
        shard.sweep();
    }
    let cell = Arc::new(TagCell::named(tag));
    shard.cells.insert(ByName(cell.clone()));
    cell
}

/// The cell of `tag` if an entry or a load holds it.
pub(crate) fn held(tag: &str) -> Option<Arc<TagCell>> {
    shard(tag)
        .read()
        .cells
        .get(tag.as_bytes())
        .map(|cell| cell.0.clone())
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
                .map(|ByName(cell)| (cell.name().into(), cell.clone()))
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
    fn churning_tags_keep_the_index_within_a_bound_of_the_live_cells() {
        let live: Vec<_> = (0..1_000)
            .map(|i| intern(&format!("tags-test:live:{i}")))
            .collect();
        for i in 0..200_000 {
            drop(intern(&format!("tags-test:churn:{i}")));
        }
        let indexed = named_cells().len();
        // Per shard: at most 1.25 times its live cells, or twice the floor below which
        // it is not swept on growth (other tests' cells included).
        let bound = 2 * live.len() + SHARDS * 2 * MIN_SWEPT_LEN + 200;
        assert!(
            indexed <= bound,
            "{indexed} cells indexed for 1000 live tags"
        );
        assert!(live.iter().all(|cell| held(cell.name()).is_some()));
    }

    #[test]
    fn unheld_tags_are_not_created_by_invalidation_and_are_swept() {
        super::super::bump_named("tags-test:nobody");
        assert!(held("tags-test:nobody").is_none());
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
