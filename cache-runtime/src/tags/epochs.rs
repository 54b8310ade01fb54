//! The local epochs of named tags: a fixed array of counters, a tag's found by the
//! hash of its name. An entry checks its tags against these counters, so a named tag
//! needs no allocation of its own, nor a pointer chase on a hit.
//!
//! Tags whose names hash to the same counter share it: invalidating one drops the
//! entries of the others too. That costs a spurious miss, never a stale read. With
//! 2^20 counters and 10^5 live tags, about one invalidation in ten also drops the
//! entries of one other tag.

use std::hash::BuildHasher;
use std::num::NonZeroU64;
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
    &EPOCHS[slot as usize]
}

/// The slot of `epoch`, if it is one of the named tags' counters (and not a cache's
/// or the global tag's own).
pub(crate) fn slot_of_epoch(epoch: &AtomicU64) -> Option<u32> {
    let first = std::ptr::from_ref(&EPOCHS[0]) as usize;
    let offset = (std::ptr::from_ref(epoch) as usize).checked_sub(first)?;
    let slot = offset / std::mem::size_of::<AtomicU64>();
    (slot < SLOTS).then_some(slot as u32)
}

/// Bits of a packed stamp that hold the version; the slot takes the rest.
const VERSION_BITS: u32 = 64 - BITS;
const VERSION_MASK: u64 = (1 << VERSION_BITS) - 1;

/// A named tag's stamp as an entry keeps it: its slot and version in one word (a
/// version wraps after 2^44 invalidations of one counter), and its cell where there is
/// one, held so that its Redis bookkeeping lives as long as the entry. The word is
/// never 0 (no name is on slot 0), which leaves room for an enum's tag beside it.
#[derive(Debug, Clone)]
pub(crate) struct PackedStamp {
    cell: Option<Arc<TagCell>>,
    packed: NonZeroU64,
}

impl PackedStamp {
    /// `stamp`, a named tag's.
    pub(crate) fn of(stamp: &TagStamp) -> Self {
        let slot = slot_of_epoch(stamp.epoch)
            .expect("a named tag's stamp is on a shared counter: TagCell::named, TagStamp::named");
        Self::packing(stamp.cell.clone(), slot, stamp.version)
    }

    /// A place for a stamp that an entry does not use: always current.
    pub(crate) fn unused() -> Self {
        Self::packing(None, UNUSED_SLOT, 0)
    }

    fn packing(cell: Option<Arc<TagCell>>, slot: u32, version: u64) -> Self {
        let packed = (u64::from(slot) << VERSION_BITS) | (version & VERSION_MASK);
        Self {
            cell,
            packed: NonZeroU64::new(packed).expect("slots of stamps are not 0"),
        }
    }

    pub(crate) fn is_unused(&self) -> bool {
        self.slot() == UNUSED_SLOT
    }

    fn slot(&self) -> u32 {
        (self.packed.get() >> VERSION_BITS) as u32
    }

    fn version(&self) -> u64 {
        self.packed.get() & VERSION_MASK
    }

    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        let now = epoch(self.slot()).load(Ordering::Acquire);
        (now & VERSION_MASK) == self.version()
    }

    /// Back to a load's stamp, for a value kept anew; `None` once invalidated (so a
    /// later version cannot be taken for the one the value was loaded under).
    pub(crate) fn unpack(&self) -> Option<TagStamp> {
        let epoch = epoch(self.slot());
        let version = epoch.load(Ordering::Acquire);
        ((version & VERSION_MASK) == self.version()).then(|| TagStamp {
            cell: self.cell.clone(),
            epoch,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_stamp_follows_its_counter() {
        let stamp = TagStamp::named("epochs-test:packed");
        let packed = PackedStamp::of(&stamp);
        assert!(packed.is_current());
        let again = packed.unpack().expect("current");
        assert_eq!(again.version, stamp.version);
        super::super::bump_named("epochs-test:packed");
        assert!(!packed.is_current());
        assert!(packed.unpack().is_none());
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
        let shared = PackedStamp::of(&TagStamp::named(&second));
        assert_ne!(slot_of(b"epochs-test:alone"), slot_of(second.as_bytes()));
        super::super::bump_named(&first);
        assert!(!shared.is_current(), "a spurious miss for the other tag");
        assert!(
            PackedStamp::of(&alone).is_current(),
            "a tag on another counter"
        );
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
