//! An entry's tag stamps, in the entry itself so that a hit checks them without
//! following a pointer to a separate allocation.

use std::sync::Arc;

use crate::tags::{self, PackedStamp, Stamps, TagCell, TagStamp};

/// The tags an entry was stored under, with the versions its load saw.
///
/// The two tags every entry carries, the global tag and its cache's own, are one
/// number: their versions summed (see [`tags::base_version`]). Named tags are held
/// inline up to two; more spill to the heap.
#[derive(Clone)]
pub(crate) struct EntryStamps {
    base: u64,
    named: Named,
}

/// Two places inline (unused ones always current), or the heap: 32 bytes, the enum's
/// tag fitting in a packed stamp's word, which is never 0.
#[derive(Clone)]
enum Named {
    Inline([PackedStamp; 2]),
    Spilled(Box<[PackedStamp]>),
}

impl Named {
    fn as_slice(&self) -> &[PackedStamp] {
        match self {
            Self::Inline(inline) => inline,
            Self::Spilled(spilled) => spilled,
        }
    }
}

impl Default for EntryStamps {
    fn default() -> Self {
        Self {
            base: 0,
            named: Named::Inline([PackedStamp::unused(), PackedStamp::unused()]),
        }
    }
}

impl EntryStamps {
    /// The stamps of a load, as `Cache::stamp` makes them: the global tag's, the
    /// cache's own, then the named tags'.
    pub(crate) fn of_load(stamps: &[TagStamp]) -> Self {
        let (base, named) = stamps.split_at(2);
        debug_assert!(base[0]
            .cell()
            .is_some_and(|cell| std::ptr::eq(cell, &**tags::GLOBAL)));
        let mut packed = named.iter().map(PackedStamp::of);
        let named = if named.len() <= 2 {
            let mut next = || packed.next().unwrap_or_else(PackedStamp::unused);
            Named::Inline([next(), next()])
        } else {
            Named::Spilled(packed.collect())
        };
        Self {
            base: base[0].version().wrapping_add(base[1].version()),
            named,
        }
    }

    /// True while no tag of the entry has been invalidated since its load stamped it;
    /// `cache_tag` is its cache's own tag.
    #[inline]
    pub(crate) fn are_current(&self, cache_tag: &TagCell) -> bool {
        tags::base_version(cache_tag) == self.base
            && match &self.named {
                Named::Inline([first, second]) => first.is_current() && second.is_current(),
                Named::Spilled(all) => all.iter().all(PackedStamp::is_current),
            }
    }

    /// These stamps as a load's again (a fail-safe value kept anew), if they are still
    /// current. The two base versions are read first and then checked against the
    /// sum, so an invalidation between the check and the copy cannot be masked.
    pub(crate) fn to_load(&self, cache_tag: &Arc<TagCell>) -> Option<Stamps> {
        let global = TagStamp::new(tags::GLOBAL.clone());
        let cache = TagStamp::new(cache_tag.clone());
        let base = global.version().wrapping_add(cache.version());
        if base != self.base {
            return None;
        }
        let named: Option<Vec<TagStamp>> = (self.named.as_slice().iter())
            .filter(|stamp| !stamp.is_unused())
            .map(PackedStamp::unpack)
            .collect();
        Some([global, cache].into_iter().chain(named?).collect())
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
        assert!(entry.are_current(&cache_tag));
        other_cache.bump();
        assert!(entry.are_current(&cache_tag), "another cache's tag");
        cache_tag.bump();
        assert!(!entry.are_current(&cache_tag));
        assert!(entry.to_load(&cache_tag).is_none());

        let entry = EntryStamps::of_load(&load_stamps(&cache_tag, &["stamps-test:a"]));
        let again = entry.to_load(&cache_tag).expect("current");
        assert_eq!(again.len(), 3);
        assert!(tags::all_current(&again));
        tags::bump_named("stamps-test:a");
        assert!(!entry.are_current(&cache_tag));
        assert!(!tags::all_current(&again));
    }

    #[test]
    fn an_entry_holds_two_named_stamps_inline_and_more_on_the_heap() {
        let cache_tag = Arc::new(TagCell::default());
        let entry = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1", "s:2"]));
        assert!(matches!(entry.named, Named::Inline(_)));
        assert_eq!(std::mem::size_of::<EntryStamps>(), 40);
        let one = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1"]));
        assert!(one.are_current(&cache_tag));
        assert_eq!(one.to_load(&cache_tag).expect("current").len(), 3);
        let three = EntryStamps::of_load(&load_stamps(&cache_tag, &["s:1", "s:2", "s:3"]));
        assert!(matches!(three.named, Named::Spilled(_)));
        assert_eq!(three.to_load(&cache_tag).expect("current").len(), 5);
        tags::bump_named("s:3");
        assert!(!three.are_current(&cache_tag) && one.are_current(&cache_tag));
    }
}
