//! `max_loads`: at most N loader runs of one cache at once in this process, the
//! others waiting their turn in the order they came (tokio's semaphore is fair).
//! It bounds what one cache can ask of a database that is slow or recovering;
//! single-flight still comes first, so N loads are N distinct keys.
//!
//! Only step 3, the loader's run, holds a permit: reading Redis and waiting for
//! the fleet lock do not take a database connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::stats::{CacheStats, Counter};

/// `Config::max_loads`: the bound of caches that give none (0: unbounded).
static DEFAULT_MAX_LOADS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn set_default(max_loads: Option<usize>) {
    DEFAULT_MAX_LOADS.store(max_loads.map_or(0, |n| n as u64), Ordering::Relaxed);
}

#[derive(Default)]
pub(crate) struct Bulkhead {
    /// Set on the first load, so a `Config` default given at `init` reaches caches
    /// created before it.
    permits: OnceLock<Option<Semaphore>>,
    /// Loads waiting for a permit now.
    waiting: AtomicU64,
}

impl Bulkhead {
    /// Waits for a turn to run a loader, if this cache is bounded; counts the
    /// loads that had to wait and for how long.
    pub(crate) async fn enter(
        &self,
        max_loads: Option<usize>,
        stats: &CacheStats,
    ) -> Option<SemaphorePermit<'_>> {
        let permits = self.permits.get_or_init(|| {
            let bound = max_loads.or_else(|| {
                let default = DEFAULT_MAX_LOADS.load(Ordering::Relaxed);
                (default > 0).then_some(default as usize)
            });
            bound.map(|n| Semaphore::new(n.max(1)))
        });
        let permits = permits.as_ref()?;
        if let Ok(permit) = permits.try_acquire() {
            return Some(permit);
        }
        let began = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _leaving = Leaving(&self.waiting);
        let permit = permits.acquire().await.ok();
        stats.bump(Counter::QueuedLoad);
        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.add(Counter::QueueWaitMicros, micros);
        permit
    }

    /// Loads waiting for a permit now.
    pub(crate) fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Takes a waiter off the count however its wait ends (a cancelled call too).
struct Leaving<'a>(&'a AtomicU64);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
