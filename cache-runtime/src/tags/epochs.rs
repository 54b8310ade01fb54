//! The local epochs of named tags: a fixed array of counters, a tag's found by the
//! hash of its name. An entry checks its tags against these counters, so a named tag
//! needs no allocation of its own, nor a pointer chase on a hit.
//!
//! Tags whose names hash to the same counter share it: invalidating one drops the
//! entries of the others too. That costs a spurious miss, never a stale read. With
//! 2^20 counters and 10^5 live tags, about one invalidation in ten also drops the
//! entries of one other tag.

use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{TagCell, TagStamp};
use crate::sync::AtomicU64;

const BITS: u32 = 20;
/// How many counters there are.
pub(crate) const SLOTS: usize = 1 << BITS;

/// 8 MiB of zeroed memory, which the system maps in only as counters are touched.
#[cfg(not(stratacache_loom))]
static EPOCHS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
// loom's atomics cannot be constants: the model tests never name a tag, so this is
// never reached under loom, but it must build.
#[cfg(stratacache_loom)]
static EPOCHS: std::sync::LazyLock<Box<[AtomicU64]>> =
    std::sync::LazyLock::new(|| (0..SLOTS).map(|_| AtomicU64::new(0)).collect());

/// The slots a named tag was stamped on without a cell, before the Redis tier was
/// installed: one bit each (128 KiB, mapped in only where set). std's atomics even
/// under loom: the model tests never reach them.
static UNTRACKED: [std::sync::atomic::AtomicU64; SLOTS / 64] =
    [const { std::sync::atomic::AtomicU64::new(0) }; SLOTS / 64];

/// Marks `slot` as holding a stamp without a cell (see [`bump_untracked`]).
pub(crate) fn mark_untracked(slot: u32) {
    let (word, bit) = (&UNTRACKED[slot as usize / 64], 1 << (slot % 64));
    // Acquire: a bit seen set orders this thread after whoever set it, which the
    // pairing in `TagStamp::named` relies on.
    if word.load(Ordering::Acquire) & bit == 0 {
        word.fetch_or(bit, Ordering::SeqCst);
    }
}

/// Bumps every slot marked untracked, so the entries whose named tags have no cell
/// (they were stamped before the Redis tier was installed) are never served again.
pub(crate) fn bump_untracked() {
    for (index, word) in UNTRACKED.iter().enumerate() {
        let mut bits = word.swap(0, Ordering::SeqCst);
        while bits != 0 {
            let slot = index as u32 * 64 + bits.trailing_zeros();
            epoch(slot).fetch_add(1, Ordering::AcqRel);
            bits &= bits - 1;
        }
    }
}

/// The global tag's counter, which no name hashes to.
pub(crate) const GLOBAL_SLOT: u32 = 0;
/// A counter no name hashes to and nothing bumps: an unused place in an entry's
/// stamps points there, and is always current.
const UNUSED_SLOT: u32 = 1;

/// The counter index of tag `name`; the same in every run, so a process's tags
/// collide the same way each time.
pub(crate) fn slot_of(name: &[u8]) -> u32 {
    let hash = foldhash::fast::FixedState::with_seed(0x5eed_7a65).hash_one(name);
    ((hash >> (64 - BITS)) as u32).max(UNUSED_SLOT + 1)
}

/// The counter at `slot` (`< SLOTS`).
#[inline]
pub(crate) fn epoch(slot: u32) -> &'static AtomicU64 {
    debug_assert!((slot as usize) < SLOTS);
    // Masked, the index needs no bounds check: one instruction less per tag on a hit.
    &EPOCHS[slot as usize & (SLOTS - 1)]
}

/// The slot of `epoch`, if it is one of the named tags' counters (and not a cache's
/// or the global tag's own).
pub(crate) fn slot_of_epoch(epoch: &AtomicU64) -> Option<u32> {
    let first = std::ptr::from_ref(&EPOCHS[0]) as usize;
    let offset = (std::ptr::from_ref(epoch) as usize).checked_sub(first)?;
    let slot = offset / std::mem::size_of::<AtomicU64>();
    (slot < SLOTS).then_some(slot as u32)
}

/// Where an entry finds one of its named tags: the slot of the tag's counter. The
/// version its load saw is not kept here: an entry keeps the sum of all its tags'
/// versions (`l1/stamps.rs`). Never 0 (no name is on the global tag's slot), which
/// leaves room for an enum's tag beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NamedSlot(NonZeroU32);

impl NamedSlot {
    /// The slot of `stamp`, a named tag's.
    pub(crate) fn of(stamp: &TagStamp) -> Self {
        let slot = slot_of_epoch(stamp.epoch)
            .expect("a named tag's stamp is on a shared counter: TagCell::named, TagStamp::named");
        Self(NonZeroU32::new(slot).expect("slots of named tags are not 0"))
    }

    /// A place that an entry does not use: its counter is never bumped, so it adds
    /// nothing to the versions' sum, ever.
    pub(crate) fn unused() -> Self {
        Self(NonZeroU32::new(UNUSED_SLOT).expect("not 0"))
    }

    pub(crate) fn is_unused(self) -> bool {
        self.0.get() == UNUSED_SLOT
    }

    /// The current version of the tag's counter.
    #[inline]
    pub(crate) fn version(self) -> u64 {
        epoch(self.0.get()).load(Ordering::Acquire)
    }

    /// A stamp of the tag at its current version, with its cell, for a value kept
    /// anew (its caller checks that no version moved since the load).
    pub(crate) fn stamp_now(self, cell: Option<Arc<TagCell>>) -> TagStamp {
        let epoch = epoch(self.0.get());
        TagStamp {
            cell,
            epoch,
            version: epoch.load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_slot_reads_its_tag_s_counter() {
        let stamp = TagStamp::named("epochs-test:place");
        let slot = NamedSlot::of(&stamp);
        assert_eq!(slot.version(), stamp.version);
        assert_eq!(slot.stamp_now(None).version, stamp.version);
        super::super::bump_named("epochs-test:place");
        assert_eq!(slot.version(), stamp.version + 1);
        assert_eq!(NamedSlot::unused().version(), 0);
    }

    #[test]
    fn tags_sharing_a_counter_are_invalidated_together_and_no_other() {
        // Two names on one counter: found by the birthday bound within a few thousand.
        let mut seen = std::collections::HashMap::new();
        let (first, second) = (0..100_000)
            .map(|i| format!("epochs-test:collide:{i}"))
            .find_map(|name| {
                let slot = slot_of(name.as_bytes());
                seen.insert(slot, name.clone()).map(|other| (other, name))
            })
            .expect("a collision among 100,000 names");
        let alone = TagStamp::named("epochs-test:alone");
        let shared = TagStamp::named(&second);
        assert_ne!(slot_of(b"epochs-test:alone"), slot_of(second.as_bytes()));
        super::super::bump_named(&first);
        assert!(!shared.is_current(), "a spurious miss for the other tag");
        assert!(alone.is_current(), "a tag on another counter");
    }

    #[test]
    fn only_the_shared_counters_have_slots() {
        let slot = slot_of(b"epochs-test:slot");
        assert_eq!(slot_of_epoch(epoch(slot)), Some(slot));
        assert_eq!(
            slot_of_epoch(epoch(SLOTS as u32 - 1)),
            Some(SLOTS as u32 - 1)
        );
        let own = TagCell::default();
        assert_eq!(slot_of_epoch(own.epoch), None);
    }
}
