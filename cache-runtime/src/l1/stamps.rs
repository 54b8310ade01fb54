//! An entry's tag stamps, in the entry itself so that a hit checks them without
//! following a pointer to a separate allocation.

use std::sync::Arc;

use crate::sync::AtomicU64;
use crate::tags::{self, NamedSlot, Stamps, TagCell, TagStamp};

/// The tags an entry was stored under, and the sum of the versions its load saw.
///
/// Every version only grows, so the current versions of the entry's tags sum to the
/// stored sum exactly while none of them has moved: a hit reads the counters and
/// compares once. The two tags every entry carries, the global tag and its cache's
/// own, are read through the cache (see [`tags::base_version`]); named tags are held
/// inline up to two, more on the heap, each with its cell where it has one, held so
/// that the tag's Redis bookkeeping lives as long as the entry.
#[derive(Clone)]
pub(crate) struct EntryStamps {
    versions: u64,
    named: Named,
}

type Cell = Option<Arc<TagCell>>;

/// Two places inline (an unused one's counter never moves), or the heap: 24 bytes,
/// the enum's tag fitting in a slot, which is never 0.
#[derive(Clone)]
enum Named {
    Inline {
        slots: [NamedSlot; 2],
        cells: [Cell; 2],
    },
    Spilled(Box<[(NamedSlot, Cell)]>),
}

impl Named {
    /// Every place, with its cell (off the hit path: a fail-safe value kept anew).
    fn places(&self) -> Vec<(NamedSlot, &Cell)> {
        match self {
            Self::Inline { slots, cells } => slots.iter().copied().zip(cells).collect(),
            Self::Spilled(all) => all.iter().map(|(slot, cell)| (*slot, cell)).collect(),
        }
    }
}

impl Default for EntryStamps {
    fn default() -> Self {
        Self {
            versions: 0,
            named: Named::Inline {
                slots: [NamedSlot::unused(); 2],
                cells: [None, None],
            },
        }
    }
}

/// The sum of `versions`, in the one way every side computes it.
fn sum(versions: impl Iterator<Item = u64>) -> u64 {
    versions.fold(0, u64::wrapping_add)
}

impl EntryStamps {
    /// The stamps of a load, as `Cache::stamp` makes them: the global tag's, the
    /// cache's own, then the named tags'.
    pub(crate) fn of_load(stamps: &[TagStamp]) -> Self {
        debug_assert!(stamps[0]
            .cell()
            .is_some_and(|cell| std::ptr::eq(cell, &**tags::GLOBAL)));
        let named = &stamps[2..];
        let place = |stamp: &TagStamp| (NamedSlot::of(stamp), stamp.cell_handle());
        let named = if named.len() <= 2 {
            let mut places = named.iter().map(place);
            let mut next = || places.next().unwrap_or((NamedSlot::unused(), None));
            let ((first, first_cell), (second, second_cell)) = (next(), next());
            Named::Inline {
                slots: [first, second],
                cells: [first_cell, second_cell],
            }
        } else {
            Named::Spilled(named.iter().map(place).collect())
        };
        Self {
            versions: sum(stamps.iter().map(TagStamp::version)),
            named,
        }
    }

    /// True while no tag of the entry has been invalidated since its load stamped it;
    /// `cache_epoch` is its cache's own tag's counter.
    #[inline]
    pub(crate) fn are_current(&self, cache_epoch: &AtomicU64) -> bool {
        let named = match &self.named {
            Named::Inline {
                slots: [first, second],
                ..
            } => first.version().wrapping_add(second.version()),
            Named::Spilled(all) => sum(all.iter().map(|(slot, _)| slot.version())),
        };
        tags::base_version(cache_epoch).wrapping_add(named) == self.versions
    }

    /// These stamps as a load's again (a fail-safe value kept anew), if they are still
    /// current: every counter is read once, and the versions read are the load's
    /// exactly when they sum to the same (none can have gone down), so an
    /// invalidation between the check and the copy cannot be masked.
    pub(crate) fn to_load(&self, cache_tag: &Arc<TagCell>) -> Option<Stamps> {
        let global = TagStamp::new(tags::GLOBAL.clone());
        let cache = TagStamp::new(cache_tag.clone());
        let named = (self.named.places().into_iter())
            .filter(|(slot, _)| !slot.is_unused())
            .map(|(slot, cell)| slot.stamp_now(cell.clone()));
        let stamps: Vec<TagStamp> = [global, cache].into_iter().chain(named).collect();
        (sum(stamps.iter().map(TagStamp::version)) == self.versions).then(|| stamps.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_stamps(cache_tag: &Arc<TagCell>, named: &[&str]) -> Stamps {
        [tags::GLOBAL.clone(), cache_tag.clone()]
            .into_iter()
            .map(TagStamp::new)
            .chain(named.iter().map(|name| TagStamp::named(name)))
            .collect()
    }

    #[test]
    fn a_bump_of_the_cache_s_tag_or_a_named_one_makes_the_entry_stale() {
        let cache_tag = Arc::new(TagCell::default());
        let other_cache = Arc::new(TagCell::default());
        let entry = EntryStamps::of_load(&load_stamps(&cache_tag, &["stamps-test:a"]));
        assert!(entry.are_current(cache_tag.epoch()));
        other_cache.bump();
        assert!(entry.are_current(cache_tag.epoch()), "another cache's tag");
        cache_tag.bump();
        assert!(!entry.are_current(cache_tag.epoch()));
        assert!(entry.to_load(&cache_tag).is_none());

        let entry = EntryStamps::of_load(&load_stamps(&cache_tag, &["stamps-test:a"]));
        let again = entry.to_load(&cache_tag).expect("current");
        assert_eq!(again.len(), 3);
        assert!(tags::all_current(&again));
        tags::bump_named("stamps-test:a");
        assert!(!entry.are_current(cache_tag.epoch()));
        assert!(!tags::all_current(&again));
    }

    #[test]
    fn an_entry_holds_two_named_stamps_inline_and_more_on_the_heap() {
        let cache_tag = Arc::new(TagCell::default());
        let entry = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1", "s:2"]));
        assert!(matches!(entry.named, Named::Inline { .. }));
        assert_eq!(std::mem::size_of::<EntryStamps>(), 32);
        let one = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1"]));
        assert!(one.are_current(cache_tag.epoch()));
        assert_eq!(one.to_load(&cache_tag).expect("current").len(), 3);
        let three = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1", "s:2", "s:3"]));
        assert!(matches!(three.named, Named::Spilled(_)));
        assert_eq!(three.to_load(&cache_tag).expect("current").len(), 5);
        tags::bump_named("s:3");
        assert!(!three.are_current(cache_tag.epoch()) && one.are_current(cache_tag.epoch()));
    }
}
