//! Per-cache statistics: relaxed counters striped per thread (two cores bumping one
//! counter would fight over one cache line on every hit; a thread that owns its stripe
//! counts without a locked instruction, `stripe`), a load-latency histogram touched
//! only on loads, and a plain serializable snapshot.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::stripe::{self, STRIPES};

#[derive(Clone, Copy)]
pub(crate) enum Counter {
    L1Hit,
    L2Hit,
    Miss,
    StaleServed,
    Load,
    LoadError,
    Invalidation,
    L2Error,
    Oversized,
    SchemaMismatch,
    Rejected,
    Invalid,
    /// Loads that waited for a `max_loads` permit, and their total wait.
    QueuedLoad,
    QueueWaitMicros,
}
const COUNTERS: usize = 14;

/// A cache line of counters, so stripes never share a line.
#[repr(align(128))]
#[derive(Default)]
struct Stripe([AtomicU64; COUNTERS]);

pub(crate) struct CacheStats {
    stripes: Box<[Stripe; STRIPES]>,
    /// Load latencies in microseconds, and their exact sum.
    load_micros: Mutex<(Histogram<u64>, u64)>,
}

/// Upper bounds of the load-latency buckets in microseconds (Prometheus `le`).
pub const LOAD_BUCKETS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// A count into a stripe this thread owns (see `stripe`): no other thread writes
/// it, so a plain load and store, with no locked instruction.
#[inline(always)]
fn add_owned(count: &AtomicU64, n: u64) {
    count.store(
        count.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl CacheStats {
    pub(crate) fn new() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| Stripe::default())),
            // 1 µs to 1 hour at 2 significant digits: a few kB.
            load_micros: Mutex::new((
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"),
                0,
            )),
        }
    }

    #[inline]
    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        match stripe::owned() {
            Some(stripe) => add_owned(&self.stripes[stripe].0[counter as usize], n),
            None => self.add_unowned(counter, n),
        }
    }

    /// A count from a thread that owns no stripe: its first (which claims one), or
    /// any count of a thread that shares the last stripe. Out of line, so that a hit
    /// tests one condition to count.
    #[cold]
    #[inline(never)]
    fn add_unowned(&self, counter: Counter, n: u64) {
        let stripe = stripe::current();
        let count = &self.stripes[stripe % STRIPES].0[counter as usize];
        if stripe == stripe::SHARED {
            count.fetch_add(n, Ordering::Relaxed);
        } else {
            add_owned(count, n);
        }
    }

    pub(crate) fn record_load(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let mut load = self.load_micros.lock();
        load.0.saturating_record(micros);
        load.1 = load.1.saturating_add(micros);
    }

    fn total(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[counter as usize].load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn snapshot(&self, name: &str, entries: u64, load_queue: u64) -> CacheStatsSnapshot {
        let load = self.load_micros.lock();
        let (histogram, sum_micros) = (&load.0, load.1);
        let quantile = |q: f64| (!histogram.is_empty()).then(|| histogram.value_at_quantile(q));
        let buckets = LOAD_BUCKETS_MICROS
            .iter()
            .map(|&le| (le, histogram.count_between(1, le)))
            .collect();
        CacheStatsSnapshot {
            name: name.to_owned(),
            l1_hits: self.total(Counter::L1Hit),
            l2_hits: self.total(Counter::L2Hit),
            misses: self.total(Counter::Miss),
            stale_served: self.total(Counter::StaleServed),
            loads: self.total(Counter::Load),
            load_errors: self.total(Counter::LoadError),
            invalidations: self.total(Counter::Invalidation),
            l2_errors: self.total(Counter::L2Error),
            oversized: self.total(Counter::Oversized),
            schema_mismatches: self.total(Counter::SchemaMismatch),
            rejected: self.total(Counter::Rejected),
            invalid: self.total(Counter::Invalid),
            load_queue,
            queued_loads: self.total(Counter::QueuedLoad),
            load_queue_wait_micros: self.total(Counter::QueueWaitMicros),
            entries,
            load_p50_micros: quantile(0.5),
            load_p99_micros: quantile(0.99),
            load_histogram: LoadHistogram {
                buckets,
                count: histogram.len(),
                sum_micros,
            },
        }
    }
}

/// One cache's counters at the time of [`stats()`](fn@crate::stats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CacheStatsSnapshot {
    /// The cache name (`name = ".."`, or the function's path).
    pub name: String,
    /// Calls answered from the in-process tier (fresh or stale).
    pub l1_hits: u64,
    /// Calls answered from Redis (and promoted to the in-process tier).
    pub l2_hits: u64,
    /// Calls that found no usable value and waited for a load (their own or a shared one).
    pub misses: u64,
    /// Hits that returned a value past its ttl, inside the stale-while-revalidate window.
    pub stale_served: u64,
    /// Loader runs (foreground and background refreshes), however they ended.
    pub loads: u64,
    /// Loader runs that returned `Err` or panicked.
    pub load_errors: u64,
    /// Entries dropped by an invalidation: by key, by clearing the cache, or found
    /// invalidated by a tag when read.
    pub invalidations: u64,
    /// Redis calls that failed or timed out, and values in Redis that could not be
    /// used (corrupt, foreign, too large); each was a miss, never a failed call.
    pub l2_errors: u64,
    /// Values not written to Redis because they serialize to more than
    /// `Config::max_payload`: kept in this process only.
    pub oversized: u64,
    /// Values in Redis written with another shape of the value type (an earlier or
    /// later deploy): misses, overwritten by the load.
    pub schema_mismatches: u64,
    /// Values in Redis refused by this process's secrets (unsigned, signed by an
    /// unknown secret, tampered, or encrypted for another secret): misses.
    pub rejected: u64,
    /// Loaded values that `validate = ..` refused: returned, not cached.
    pub invalid: u64,
    /// `max_loads`: loads waiting for their turn now.
    pub load_queue: u64,
    /// `max_loads`: loads that had to wait for their turn, so far.
    pub queued_loads: u64,
    /// `max_loads`: how long those loads waited in all, in microseconds.
    pub load_queue_wait_micros: u64,
    /// Entries held in the in-process tier now.
    pub entries: u64,
    /// Median loader latency in microseconds, `None` before the first load.
    pub load_p50_micros: Option<u64>,
    /// 99th-percentile loader latency in microseconds.
    pub load_p99_micros: Option<u64>,
    /// Load latencies in buckets, for histogram exports.
    pub load_histogram: LoadHistogram,
}

/// Load latencies bucketed at [`LOAD_BUCKETS_MICROS`] (at the histogram's two
/// significant digits of precision), with their count and exact sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct LoadHistogram {
    /// `(upper bound in µs, loads that took at most that long)`, cumulative.
    pub buckets: Vec<(u64, u64)>,
    /// Loads recorded.
    pub count: u64,
    /// Their total duration, in microseconds.
    pub sum_micros: u64,
}

impl CacheStatsSnapshot {
    /// Share of calls answered from a cache tier, in `0.0..=1.0` (0 with no calls).
    pub fn hit_ratio(&self) -> f64 {
        let hits = self.l1_hits + self.l2_hits;
        let calls = hits + self.misses;
        if calls == 0 {
            0.0
        } else {
            hits as f64 / calls as f64
        }
    }
}

/// The outbox's counters, in [`crate::StatsSnapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct OutboxSnapshot {
    /// Invalidations waiting for Redis now.
    pub pending: u64,
    /// Invalidations Redis could not take when they were made, queued.
    pub queued: u64,
    /// Queued invalidations delivered once Redis answered again.
    pub delivered: u64,
    /// Invalidations dropped because the same one was already waiting.
    pub coalesced: u64,
    /// Invalidations folded into a namespace-wide one because the queue was full.
    pub overflowed: u64,
}

/// Backplane messages ignored for want of a valid signature (see `l2::message::open`).
static UNAUTHENTICATED: AtomicU64 = AtomicU64::new(0);

/// Counts a backplane message ignored as unsigned; true for the first one.
pub(crate) fn count_unauthenticated_message() -> bool {
    UNAUTHENTICATED.fetch_add(1, Ordering::Relaxed) == 0
}

pub(crate) fn unauthenticated_messages() -> u64 {
    UNAUTHENTICATED.load(Ordering::Relaxed)
}

/// Invalidations made again because Redis had lost them (see `backplane::rollback`).
static MADE_AGAIN: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_invalidations_made_again(n: u64) {
    MADE_AGAIN.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn invalidations_made_again() -> u64 {
    MADE_AGAIN.load(Ordering::Relaxed)
}

/// Every registered cache's counters, sorted by name. `Display` renders a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// One snapshot per cache used so far, sorted by name.
    pub caches: Vec<CacheStatsSnapshot>,
    /// Invalidations that Redis could not take when they were made.
    pub outbox: OutboxSnapshot,
    /// Backplane messages ignored because they were not signed by one of this
    /// process's secrets (only counted when it holds a secret).
    pub unauthenticated_messages: u64,
    /// Invalidations this process made again because Redis had lost them: a counter
    /// read below a version Redis held (Redis back from an older snapshot, or a
    /// replica promoted before it caught up), or, for a server found running anew
    /// with data, each cache with entry-level changes this process claimed.
    pub invalidations_made_again: u64,
}

impl StatsSnapshot {
    /// The snapshot of the cache called `name`, if it has been used.
    pub fn cache(&self, name: &str) -> Option<&CacheStatsSnapshot> {
        self.caches.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .caches
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "{:<width$} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
            "cache",
            "l1_hits",
            "l2_hits",
            "misses",
            "stale",
            "loads",
            "errors",
            "inval",
            "l2_err",
            "entries",
            "p50_us",
            "p99_us"
        )?;
        for c in &self.caches {
            let micros = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            writeln!(
                f,
                "{:<width$} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>9} {:>9}",
                c.name,
                c.l1_hits,
                c.l2_hits,
                c.misses,
                c.stale_served,
                c.loads,
                c.load_errors,
                c.invalidations,
                c.l2_errors,
                c.entries,
                micros(c.load_p50_micros),
                micros(c.load_p99_micros)
            )?;
        }
        let o = &self.outbox;
        if o.queued > 0 || o.coalesced > 0 {
            writeln!(
                f,
                "outbox: {} pending, {} queued, {} delivered, {} coalesced, {} overflowed",
                o.pending, o.queued, o.delivered, o.coalesced, o.overflowed
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_made_while_the_thread_ends_is_kept() {
        struct CountsWhenDropped(std::sync::Arc<CacheStats>);
        impl Drop for CountsWhenDropped {
            fn drop(&mut self) {
                self.0.bump(Counter::Miss);
            }
        }
        thread_local! {
            static AT_EXIT: std::cell::RefCell<Option<CountsWhenDropped>> =
                const { std::cell::RefCell::new(None) };
        }
        let stats = std::sync::Arc::new(CacheStats::new());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    // Set before the first count, which registers the stripe's release:
                    // locals are destroyed in reverse order (on Linux), so this one
                    // counts after the thread gave its stripe back.
                    AT_EXIT.with(|at_exit| {
                        *at_exit.borrow_mut() = Some(CountsWhenDropped(stats.clone()))
                    });
                    stats.bump(Counter::Miss);
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(stats.snapshot("c", 0, 0).misses, 8);
    }

    #[test]
    fn counts_are_exact_with_more_threads_than_stripes_and_threads_that_come_and_go() {
        let stats = std::sync::Arc::new(CacheStats::new());
        let threads = STRIPES * 2;
        let count = |rounds: usize| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let stats = stats.clone();
                    std::thread::spawn(move || {
                        (0..rounds).for_each(|_| stats.bump(Counter::L1Hit));
                        stats.add(Counter::QueueWaitMicros, 3);
                    })
                })
                .collect();
            workers.into_iter().for_each(|w| w.join().unwrap());
        };
        // The second wave claims the stripes the first gave back, and goes on from
        // their counts.
        count(5_000);
        count(5_000);
        let snap = stats.snapshot("c", 0, 0);
        assert_eq!(snap.l1_hits, 2 * threads as u64 * 5_000);
        assert_eq!(snap.load_queue_wait_micros, 2 * threads as u64 * 3);
    }

    #[test]
    fn counters_sum_across_threads_and_quantiles_follow_loads() {
        let stats = std::sync::Arc::new(CacheStats::new());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| stats.bump(Counter::L1Hit)))
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        for ms in 1..=100 {
            stats.record_load(Duration::from_millis(ms));
        }
        let snap = stats.snapshot("c", 3, 0);
        assert_eq!(snap.l1_hits, 4000);
        assert_eq!(snap.entries, 3);
        let p50 = snap.load_p50_micros.unwrap();
        assert!((49_000..=51_000).contains(&p50), "p50 {p50}");
        assert!(snap.load_p99_micros.unwrap() >= 98_000);
        assert_eq!(snap.hit_ratio(), 1.0);
        let table = StatsSnapshot {
            caches: vec![snap],
            outbox: Default::default(),
            unauthenticated_messages: 0,
            invalidations_made_again: 0,
        }
        .to_string();
        let columns: Vec<usize> = table
            .lines()
            .map(|l| l.split_whitespace().count())
            .collect();
        assert_eq!(columns, [12, 12], "header and row disagree:\n{table}");
    }
}
