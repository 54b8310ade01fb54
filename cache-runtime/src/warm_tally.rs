//! What a warm-up reports, and the tally a batch call fills in for it. A leaf: the
//! engine's batch calls count into it, and `warm` reads it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What a warm-up did with its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmUp {
    /// Loaded now (by this warm-up or a call it joined).
    pub loaded: usize,
    /// Already held, in L1 or Redis: not loaded again.
    pub present: usize,
    /// The loader returned an error or no value, or panicked; nothing was cached.
    pub failed: usize,
}

impl std::fmt::Display for WarmUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} loaded, {} already present, {} failed",
            self.loaded, self.present, self.failed
        )
    }
}

/// What a batch call tells a warm-up about its keys.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) loaded: AtomicUsize,
    pub(crate) present: AtomicUsize,
    pub(crate) failed: AtomicUsize,
}

impl Tally {
    pub(crate) fn add(
        tally: &Option<std::sync::Arc<Tally>>,
        counter: fn(&Tally) -> &AtomicUsize,
        n: usize,
    ) {
        if let Some(tally) = tally {
            counter(tally).fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn report(&self) -> WarmUp {
        WarmUp {
            loaded: self.loaded.load(Ordering::Relaxed),
            present: self.present.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
