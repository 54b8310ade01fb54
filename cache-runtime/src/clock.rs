//! A coarse monotonic clock, so the hit path reads one atomic instead of making a
//! `clock_gettime` call (23 ns on this project's machines, about half the budget of a hit).
//!
//! Times are milliseconds since the first use of the clock in this process. A
//! background thread advances the clock every [`TICK`] while caches are read; the
//! miss path also pushes it forward with a precise reading, so an entry written by a
//! load never starts life with a stale timestamp. A hit may therefore see time up to
//! one tick late: an entry can be served for about a millisecond past its expiry.
//!
//! # Idle processes
//! Waking every millisecond costs a few percent of a core by itself. So when no read
//! of the clock has happened for [`IDLE_AFTER`], the thread only wakes to sweep (every
//! second). The first read after that finds the clock marked idle: it takes a precise
//! reading instead of the stale coarse one, and wakes the thread, which ticks again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Once, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often the ticker thread advances the coarse clock while the clock is read.
pub(crate) const TICK: Duration = Duration::from_millis(1);
/// How often the ticker thread sweeps expired entries out of the caches.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// With no read of the clock for this long, the ticker stops ticking.
const IDLE_AFTER: Duration = Duration::from_millis(100);

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
static CLOCK: CoarseClock = CoarseClock::new();
static TICKER: Once = Once::new();

/// The coarse time and the ticker's state. One per process ([`CLOCK`]); a test may
/// run its own.
struct CoarseClock {
    coarse_ms: AtomicU64,
    /// Cleared by the ticker each [`IDLE_AFTER`]; set again by the first read after.
    /// While clear, the coarse time may be stale and a read takes a precise one.
    read_lately: AtomicBool,
    /// The ticker's mode, for tests: ticking, or idle (only sweeping).
    ticking: AtomicBool,
    ticker: OnceLock<Thread>,
}

impl CoarseClock {
    const fn new() -> Self {
        Self {
            coarse_ms: AtomicU64::new(0),
            read_lately: AtomicBool::new(false),
            ticking: AtomicBool::new(true),
            ticker: OnceLock::new(),
        }
    }

    #[inline]
    fn read(&self) -> u64 {
        if self.read_lately.load(Ordering::Acquire) {
            self.coarse_ms.load(Ordering::Relaxed)
        } else {
            self.first_read()
        }
    }

    /// A precise reading, published before the flag so that a read that sees the flag
    /// also sees a current time; wakes the ticker if it was idle. Without a ticker
    /// (not started yet, or it could not be) the flag stays clear: every read is precise.
    #[cold]
    fn first_read(&self) -> u64 {
        let now = self.advance();
        if let Some(ticker) = self.ticker.get() {
            self.read_lately.store(true, Ordering::Release);
            ticker.unpark();
        }
        now
    }

    fn advance(&self) -> u64 {
        let now = EPOCH.elapsed().as_millis() as u64;
        self.coarse_ms.fetch_max(now, Ordering::Relaxed);
        now
    }

    /// The ticker's loop: tick while the clock is read, else only sweep.
    fn tick_forever(&self, sweep: fn(u64)) -> ! {
        let mut last_sweep = Instant::now();
        let mut window = Instant::now();
        let mut idle = false;
        loop {
            if idle {
                std::thread::park_timeout(SWEEP_EVERY.saturating_sub(last_sweep.elapsed()));
                idle = !self.read_lately.load(Ordering::Acquire);
                window = Instant::now();
            } else {
                std::thread::sleep(TICK);
                if window.elapsed() >= IDLE_AFTER {
                    window = Instant::now();
                    idle = !self.read_lately.swap(false, Ordering::AcqRel);
                }
            }
            self.ticking.store(!idle, Ordering::Relaxed);
            let now = self.advance();
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                sweep(now);
            }
        }
    }

    fn start(&'static self, sweep: fn(u64)) -> std::io::Result<()> {
        self.advance();
        let spawned = std::thread::Builder::new()
            .name("stratacache-clock".into())
            .spawn(move || self.tick_forever(sweep))?;
        let _ = self.ticker.set(spawned.thread().clone());
        Ok(())
    }
}

/// The coarse time in milliseconds: one load while caches are read.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    CLOCK.read()
}

/// A precise reading that also advances the coarse clock.
pub(crate) fn precise_ms() -> u64 {
    CLOCK.advance()
}

/// Converts a duration to clock milliseconds, saturating instead of overflowing.
pub(crate) fn to_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Starts the ticker thread once per process. It also runs `sweep` every second so
/// expired entries do not hold memory until they are met again.
pub(crate) fn ensure_ticking(sweep: fn(u64)) {
    TICKER.call_once(|| {
        if let Err(error) = CLOCK.start(sweep) {
            // Without the ticker every read of the clock is precise: entries expire
            // on time, only hits cost more. Worth a log line, never a failed call.
            tracing::error!(%error, "stratacache could not start its clock thread");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `condition` every millisecond for up to 2 s.
    fn within_2s(condition: impl Fn() -> bool) -> bool {
        (0..2_000).any(|_| {
            std::thread::sleep(Duration::from_millis(1));
            condition()
        })
    }

    #[test]
    fn coarse_clock_advances_without_misses() {
        ensure_ticking(|_| {});
        let start = precise_ms();
        std::thread::sleep(Duration::from_millis(30));
        let advanced = coarse_ms();
        assert!(
            advanced >= start + 20,
            "coarse clock stuck: {start} -> {advanced}"
        );
    }

    #[test]
    fn an_idle_clock_stops_ticking_and_its_first_read_is_current() {
        let clock: &'static CoarseClock = Box::leak(Box::new(CoarseClock::new()));
        clock.start(|_| {}).unwrap();
        clock.read();
        assert!(
            within_2s(|| !clock.ticking.load(Ordering::Relaxed)),
            "unread, the clock goes idle after {IDLE_AFTER:?}"
        );
        let mut seen: Vec<u64> = (0..300)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                clock.coarse_ms.load(Ordering::Relaxed)
            })
            .collect();
        seen.dedup();
        assert!(
            seen.len() <= 2,
            "an idle ticker only wakes to sweep, once a second: {} times in 300 ms",
            seen.len() - 1
        );
        let before = EPOCH.elapsed().as_millis() as u64;
        assert!(
            clock.read() >= before,
            "the first read after idling is precise"
        );
        let resumed = clock.read();
        assert!(
            within_2s(|| clock.read() >= resumed + 20),
            "the first read wakes the ticker: reads see time move again"
        );
    }

    #[test]
    fn without_a_ticker_every_read_is_precise() {
        let clock: &'static CoarseClock = Box::leak(Box::new(CoarseClock::new()));
        let first = clock.read();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            clock.read() >= first + 20,
            "no ticker advances it: reads must"
        );
    }

    #[test]
    fn to_ms_saturates() {
        assert_eq!(to_ms(Duration::MAX), u64::MAX);
        assert_eq!(to_ms(Duration::from_secs(2)), 2000);
    }
}
