//! Which stats stripe this thread counts into, and whether it owns it.
//!
//! A thread owns one of the first [`SHARED`] stripes while it lives: no other thread
//! writes that stripe, so a count there is a plain load and store, with no locked
//! instruction (a locked add is most of a hit's counting time). Threads past that
//! many, and code running after this thread's locals are gone (another local's
//! destructor), share the last stripe and count there with an atomic add.
//!
//! A stripe passes from a thread that ended to the next that claims it through
//! [`OWNED`]: the release of the bit follows the last plain store, and the claim
//! acquires it, so the new owner continues from the last count.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many stripes a cache's counters have (4 KiB a cache): a fixed number, so a
/// count needs no bounds check.
pub(crate) const STRIPES: usize = 32;

/// The stripe that threads without one of their own share.
pub(crate) const SHARED: usize = STRIPES - 1;

/// Bit `i` is set while a thread owns stripe `i` (`i < SHARED`).
static OWNED: AtomicU32 = AtomicU32::new(0);

/// A compare-and-swap lost to another thread claiming or releasing at the same moment
/// is tried again, this many times at most; then the thread shares.
const CLAIM_TRIES: usize = 64;

/// A free stripe of `owned`'s, now marked owned, or [`SHARED`].
fn claim(owned: &AtomicU32) -> usize {
    let mut now = owned.load(Ordering::Relaxed);
    for _ in 0..CLAIM_TRIES {
        let free = (!now).trailing_zeros() as usize;
        if free >= SHARED {
            break;
        }
        let taken = now | (1 << free);
        match owned.compare_exchange_weak(now, taken, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return free,
            Err(seen) => now = seen,
        }
    }
    SHARED
}

fn release(owned: &AtomicU32, stripe: usize) {
    if stripe < SHARED {
        owned.fetch_and(!(1 << stripe), Ordering::Release);
    }
}

/// Marks a thread that has not claimed a stripe yet.
const UNCLAIMED: u8 = u8::MAX;

thread_local! {
    /// This thread's stripe. Constant-initialized, with no destructor: reading it is
    /// one load, valid even while the thread's other locals are being destroyed.
    static STRIPE: Cell<u8> = const { Cell::new(UNCLAIMED) };
    /// Gives the stripe back when the thread ends; touched only when claiming, which
    /// registers its destructor.
    static RELEASE: Release = const { Release };
}

struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        // Counts made after this (other locals' destructors) go to the shared stripe.
        let owned = STRIPE.with(|stripe| stripe.replace(SHARED as u8));
        release(&OWNED, usize::from(owned));
    }
}

/// This thread's stripe if it owns one: `None` before its first count (see
/// [`current`]) and for a thread that shares. One thread-local load and one
/// comparison, which also bounds the stripe for indexing.
#[inline(always)]
pub(crate) fn owned() -> Option<usize> {
    let stripe = usize::from(STRIPE.with(Cell::get));
    (stripe < SHARED).then_some(stripe)
}

/// This thread's stripe: below [`SHARED`] if it owns it.
#[inline(always)]
pub(crate) fn current() -> usize {
    let stripe = STRIPE.with(Cell::get);
    if stripe == UNCLAIMED {
        return first_count();
    }
    usize::from(stripe)
}

/// The thread's first count: claims a stripe, and registers its release. A thread
/// whose locals are already being destroyed keeps to the shared one.
#[cold]
fn first_count() -> usize {
    let stripe = RELEASE.try_with(|_| claim(&OWNED)).unwrap_or(SHARED);
    STRIPE.with(|cell| cell.set(stripe as u8));
    stripe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_gets_a_free_stripe_until_none_is_left() {
        let owned = AtomicU32::new(0);
        let claims: Vec<usize> = (0..SHARED + 3).map(|_| claim(&owned)).collect();
        let expected: Vec<usize> = (0..SHARED).chain([SHARED; 3]).collect();
        assert_eq!(claims, expected);
        release(&owned, 7);
        release(&owned, SHARED);
        assert_eq!(claim(&owned), 7, "a released stripe is claimed again");
        assert_eq!(claim(&owned), SHARED);
    }

    #[test]
    fn a_thread_owns_no_stripe_before_its_first_count_nor_when_it_shares() {
        let (before, stripe, after) = std::thread::spawn(|| (owned(), current(), owned()))
            .join()
            .unwrap();
        assert_eq!(before, None, "no stripe is claimed before the first count");
        assert_eq!(after, (stripe < SHARED).then_some(stripe));
    }

    #[test]
    fn a_thread_marks_its_stripe_owned_while_it_lives() {
        let (stripe, held) = std::thread::spawn(|| {
            let stripe = current();
            (stripe, OWNED.load(Ordering::Acquire) & (1 << stripe) != 0)
        })
        .join()
        .unwrap();
        // Other tests' threads may hold every stripe meanwhile: then this one shared.
        assert!(
            stripe == SHARED || held,
            "stripe {stripe} owned while the thread lived"
        );
    }
}
