//! A circuit breaker for the Redis tier: after `threshold` consecutive failures the
//! circuit opens and calls skip Redis (answering as misses) for `cooldown`; then one
//! probe call is let through, and its success closes the circuit. A failure is an
//! outage ([`is_outage`]), not a command Redis answered with a refusal.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock;

/// Whether a Redis call's error says Redis is not serving (unreachable, a dropped
/// connection, loading, a cluster or master down, or this process not authenticated:
/// a server that wants a password refuses every command), what the circuit is for.
/// A reply that refuses one command while Redis serves the others (out of memory
/// under `noeviction`, a read-only replica, no ACL permission, a script's error)
/// proves it is there: opening the circuit on it would stop the reads it still
/// answers, and every call would load from the database instead.
pub(crate) fn is_outage(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
        ),
        // Codes redis-rs does not name.
        ErrorKind::Extension => matches!(error.code(), Some("NOAUTH" | "WRONGPASS")),
        ErrorKind::UnexpectedReturnType => false,
        _ => true,
    }
}

/// Circuits opened in this process, ever: a master that was down (restarted, or
/// replaced by a replica) may have come back without its last writes, and the
/// resync reads every named tag once it answers again (see `backplane::rollback`).
static OPENINGS: AtomicU64 = AtomicU64::new(0);

/// How many circuits have opened in this process.
pub(crate) fn openings() -> u64 {
    OPENINGS.load(Ordering::Acquire)
}

pub(crate) struct Breaker {
    threshold: u32,
    cooldown_ms: u64,
    failures: AtomicU32,
    /// While the circuit is open: the coarse time at which the next probe may go.
    probe_at: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown_ms: clock::to_ms(cooldown),
            failures: AtomicU32::new(0),
            probe_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.failures.load(Ordering::Relaxed) >= self.threshold
    }

    /// May a call go to Redis now? While open, exactly one caller per cooldown gets
    /// `true`: the probe.
    pub(crate) fn allow(&self) -> bool {
        if !self.is_open() {
            return true;
        }
        // A precise reading: the coarse clock's thread may not run yet (it starts with
        // the first cache or with `init`), and an open circuit is the slow path anyway.
        let now = clock::precise_ms();
        let probe_at = self.probe_at.load(Ordering::Relaxed);
        now >= probe_at
            && self
                .probe_at
                .compare_exchange(
                    probe_at,
                    now + self.cooldown_ms,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Whether [`Breaker::allow`] would let a call through now, taking no turn.
    pub(crate) fn would_allow(&self) -> bool {
        !self.is_open() || clock::precise_ms() >= self.probe_at.load(Ordering::Relaxed)
    }

    /// [`Breaker::allow`] for a call that will report how it went: a probe that is
    /// dropped before it answers gives its turn back (see [`Pass`]).
    pub(crate) fn admit(&self) -> Option<Pass<'_>> {
        let probe = self.is_open();
        if !self.allow() {
            // No `Pass` is made: one dropped unused would give a turn back.
            return None;
        }
        Some(Pass {
            breaker: self,
            probe,
        })
    }

    /// Lets the next call through as the probe, whatever is left of the cooldown.
    pub(crate) fn allow_probe_now(&self) {
        self.probe_at.store(0, Ordering::Release);
    }

    pub(crate) fn success(&self) {
        if self.failures.swap(0, Ordering::AcqRel) >= self.threshold {
            tracing::info!("stratacache: Redis answers again; circuit closed");
        }
    }

    pub(crate) fn failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold {
            self.probe_at
                .store(clock::precise_ms() + self.cooldown_ms, Ordering::Release);
            if failures == self.threshold {
                OPENINGS.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(
                    failures,
                    cooldown_ms = self.cooldown_ms,
                    "stratacache: Redis keeps failing; circuit open, calls answer from L1 and loaders"
                );
            }
        }
    }
}

/// A call let through, until it reports its answer. A probe cancelled before it
/// answers proved nothing, and the next call probes instead of waiting out a
/// cooldown: a read that spans two masters is cancelled as soon as one of them is
/// refused, and two open circuits whose turns did not meet kept cancelling each
/// other's probes (a cluster back up after a restart took 1 to 10 s and more to be
/// used again, instead of one cooldown).
pub(crate) struct Pass<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Pass<'_> {
    pub(crate) fn success(self) {
        self.breaker.success();
        std::mem::forget(self);
    }

    pub(crate) fn failure(self) {
        self.breaker.failure();
        std::mem::forget(self);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.allow_probe_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_once_per_cooldown_and_closes_on_success() {
        // No clock thread needed: an open circuit reads the time itself.
        let breaker = Breaker::new(3, Duration::from_millis(30));
        for _ in 0..2 {
            breaker.failure();
        }
        assert!(
            breaker.allow(),
            "below the threshold the circuit stays closed"
        );
        breaker.failure();
        assert!(!breaker.allow(), "open: no call during the cooldown");
        std::thread::sleep(Duration::from_millis(50));
        assert!(breaker.allow(), "one probe after the cooldown");
        assert!(!breaker.allow(), "only one probe");
        breaker.success();
        assert!(
            breaker.allow() && breaker.allow(),
            "closed after a successful probe"
        );
    }

    #[test]
    fn a_probe_cancelled_before_it_answers_gives_its_turn_back() {
        let breaker = Breaker::new(1, Duration::from_secs(60));
        breaker.failure();
        breaker.allow_probe_now();
        assert!(
            breaker.would_allow() && breaker.would_allow(),
            "asking takes no turn"
        );
        let probe = breaker.admit().expect("the probe");
        for _ in 0..2 {
            assert!(
                !breaker.would_allow() && breaker.admit().is_none(),
                "one probe at a time"
            );
        }
        drop(probe);
        let probe = breaker
            .admit()
            .expect("a cancelled probe's turn is given back");
        probe.failure();
        for _ in 0..2 {
            assert!(
                breaker.admit().is_none(),
                "a probe that answered keeps the circuit open for the cooldown"
            );
        }
    }
}
