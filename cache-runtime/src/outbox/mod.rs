//! Invalidations on their way to Redis. One that Redis takes is delivered at once;
//! one that it cannot take (down, frozen, circuit open) waits here, and one task
//! delivers it as soon as Redis answers again. Either way the caller's future returns
//! `Ok`: the invalidation was applied in this process before it was sent, and it is
//! never lost.
//!
//! # The queue
//! - **Coalesced.** One pending invalidation per tag, cache or entry: a second of
//!   the same is counted and dropped, since delivering one bumps the counter past
//!   every version recorded before either. A pending namespace-wide invalidation
//!   covers everything else. One made while the pending one is being delivered is
//!   delivered again after it ([`queue`] says why).
//! - **Bounded.** Past its capacity the queue is replaced by one namespace-wide
//!   invalidation: coarser (every process drops its whole L1, every entry in Redis
//!   stops validating), never lost.
//! - **Applied again on delivery.** Applied here before Redis hears of it, so a read
//!   in between may find the superseded entry current in Redis and keep it in L1.
//! - **Read past while it waits.** What a queued invalidation changes in Redis is
//!   listed in [`crate::superseded`]: a read here of an entry it covers
//!   is a miss, whatever Redis says.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

mod invalidation;
mod places;
mod queue;

use crate::l2::L2;
use crate::stats::OutboxSnapshot;
use crate::superseded::Writing;

pub(crate) use invalidation::Invalidation;
use places::Places;
use queue::{Ended, Pushed, Queue};

/// How often the delivery task tries Redis while invalidations wait.
const RETRY_EVERY: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Outbox {
    pending: Mutex<Queue>,
    capacity: AtomicU64,
    wake: Notify,
    /// Notified when a delivery empties the queue.
    drained: Notify,
    queued: AtomicU64,
    delivered: AtomicU64,
    coalesced: AtomicU64,
    overflowed: AtomicU64,
}

static OUTBOX: LazyLock<Outbox> = LazyLock::new(|| Outbox {
    capacity: AtomicU64::new(10_000),
    ..Outbox::default()
});

fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Outbox {
    fn push(&self, invalidation: Invalidation, namespace: &str) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let pushed = self.pending.lock().push(invalidation, capacity, namespace);
        match pushed {
            Pushed::Coalesced => return count(&self.coalesced, 1),
            Pushed::Queued => count(&self.queued, 1),
            Pushed::Overflowed(folded) => {
                count(&self.queued, 1);
                count(&self.overflowed, folded);
                tracing::error!(
                    dropped = folded,
                    "stratacache: invalidation outbox full; a namespace-wide invalidation replaces it"
                );
            }
        }
        self.wake.notify_one();
    }

    /// Starts delivering the invalidation queued as `id`, unless an overflow replaced
    /// it meanwhile.
    fn begin<'a>(&'a self, id: u64, namespace: &'a str) -> Option<Delivery<'a>> {
        self.pending.lock().begin(id).then(|| Delivery {
            outbox: self,
            id,
            namespace,
            delivered: false,
        })
    }
}

/// A queued invalidation being delivered. Dropped before Redis took it (failed, or
/// the task ended), it waits again.
struct Delivery<'a> {
    outbox: &'a Outbox,
    id: u64,
    namespace: &'a str,
    delivered: bool,
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        let mut pending = self.outbox.pending.lock();
        if pending.end(self.id, self.delivered, self.namespace) == Ended::Removed {
            count(&self.outbox.delivered, 1);
            if pending.is_empty() {
                self.outbox.drained.notify_waiters();
            }
        }
    }
}

/// An invalidation on its way to Redis and the other processes, already applied here,
/// owned by the future of the call that made it (`Sending::new(..).deliver()`, armed
/// once made: `new` is not `async`). That future may be dropped before it is done (a
/// write handler whose client went away after the database commit; a future never
/// awaited): the invalidation then goes to the outbox, which delivers it, instead of
/// with the future. It was applied here already, and the other processes would keep
/// what it superseded.
pub(crate) struct Sending {
    l2: &'static L2,
    invalidation: Option<Invalidation>,
    /// Dropped after the invalidation is delivered, queued (`Drop`) or cancelled.
    writing: Option<Writing>,
}

impl Sending {
    pub(crate) fn new(l2: &'static L2, invalidation: Invalidation) -> Self {
        Self {
            l2,
            invalidation: Some(invalidation),
            writing: None,
        }
    }

    /// A `put!`'s deletion: the entry stays covered until this is done with.
    pub(crate) fn covering(mut self, writing: Writing) -> Self {
        self.writing = Some(writing);
        self
    }

    /// Delivers it now, or queues it if Redis cannot take it now.
    pub(crate) async fn deliver(mut self) {
        let Some(invalidation) = &self.invalidation else {
            return;
        };
        if let Err(fault) = invalidation.deliver(self.l2).await {
            // Once per outage, not once per invalidation.
            if OUTBOX.pending.lock().is_empty() {
                tracing::warn!(%fault, "stratacache: Redis did not take an invalidation; queued until it answers");
            } else {
                tracing::debug!(%fault, "stratacache: invalidation queued");
            }
            // `self` drops with the invalidation in it: into the outbox.
            return;
        }
        self.invalidation = None;
    }

    /// Not needed after all (a `put!` whose value reached Redis and the others).
    pub(crate) fn cancel(mut self) {
        self.invalidation = None;
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if let Some(invalidation) = self.invalidation.take() {
            OUTBOX.push(invalidation, &self.l2.namespace);
        }
    }
}

/// Waits until no invalidation waits in the outbox: at once when none does, else
/// until Redis has taken every one.
///
/// The outbox lives in this process's memory. A process that exits with
/// invalidations still queued (Redis unreachable, or refusing writes, as it shuts
/// down) takes them with it, and the other processes keep serving what they
/// superseded until its ttl. Call this in a graceful shutdown, bounded by a timeout of
/// your own, since it waits for Redis; past it, `stats().outbox.pending` says how
/// many were lost.
///
/// ```
/// # use stratacache_runtime as stratacache;
/// # async fn shutdown() {
/// use std::time::Duration;
///
/// let flushed = tokio::time::timeout(Duration::from_secs(5), stratacache::flush_invalidations());
/// if flushed.await.is_err() {
///     let lost = stratacache::stats().outbox.pending;
///     eprintln!("{lost} invalidations never reached Redis");
/// }
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(shutdown());
/// ```
pub async fn flush_invalidations() {
    loop {
        let drained = OUTBOX.drained.notified();
        let mut drained = std::pin::pin!(drained);
        // Registered before the queue is looked at, so a delivery in between wakes it.
        drained.as_mut().enable();
        if OUTBOX.pending.lock().is_empty() {
            return;
        }
        drained.await;
    }
}

/// Sets how many invalidations may wait before they fold into a namespace-wide one.
pub(crate) fn set_capacity(capacity: usize) {
    let capacity = u64::try_from(capacity.max(1)).unwrap_or(u64::MAX);
    OUTBOX.capacity.store(capacity, Ordering::Relaxed);
}

/// The delivery task: runs for the life of the process. Every waiting invalidation
/// is on its way at once, each on its own (up to [`places::DELIVERIES_IN_FLIGHT`]):
/// one whose cluster master hangs waits out its timeout alone, and holds back neither
/// those whose masters answer nor one queued meanwhile (they were delivered one after
/// another, each round to its end). An attempt stuck on a hanging master gives up its
/// place, and no other goes to that master until it ends ([`places`]). Those that
/// failed are tried again together, in a round, [`RETRY_EVERY`] after the last
/// round has ended, or at once when another is delivered (see [`Retries`]).
pub(crate) async fn run(l2: &'static L2) {
    let mut in_flight = FuturesUnordered::new();
    let mut places = Places::default();
    let mut retries = Retries::default();
    loop {
        let woken = OUTBOX.wake.notified();
        let mut woken = std::pin::pin!(woken);
        // Registered before the queue is looked at, so a push in between wakes it.
        woken.as_mut().enable();
        let now = Instant::now();
        let held = places.held(now);
        let waiting = OUTBOX
            .pending
            .lock()
            .waiting(places.room(now), |id, invalidation| {
                !retries.failed.contains(&id)
                    && (held.is_empty() || !invalidation.nodes(l2).iter().any(|n| held.contains(n)))
            });
        let round = !waiting.is_empty() && std::mem::take(&mut retries.probe);
        if round {
            l2.let_probe_through();
        }
        for (id, invalidation) in waiting {
            if let Some(delivery) = OUTBOX.begin(id, &l2.namespace) {
                retries.began(round);
                places.began(id, invalidation.nodes(l2), now);
                in_flight.push(attempt(l2, delivery, invalidation, round));
            }
        }
        let retry_at = retries.due();
        let stuck_at = places.next_stuck(now);
        tokio::select! {
            () = woken => {}
            Some((id, delivered, round)) = in_flight.next(), if !in_flight.is_empty() => {
                places.ended(id);
                retries.ended(id, delivered, round);
                if delivered && OUTBOX.pending.lock().is_empty() {
                    tracing::info!("stratacache: every queued invalidation delivered");
                }
            }
            () = tokio::time::sleep_until(retry_at.unwrap_or(now)), if retry_at.is_some() => {
                retries.start_round();
            }
            // Its place is free for another.
            () = tokio::time::sleep_until(stuck_at.unwrap_or(now)), if stuck_at.is_some() => {}
        }
    }
}

/// One attempt at a queued invalidation: its id, whether Redis took it, and
/// whether it was a retry round's.
async fn attempt(
    l2: &'static L2,
    mut delivery: Delivery<'static>,
    invalidation: Invalidation,
    round: bool,
) -> (u64, bool, bool) {
    match invalidation.deliver(l2).await {
        Ok(()) => delivery.delivered = true,
        Err(fault) => tracing::debug!(%fault, "stratacache: outbox still waiting for Redis"),
    }
    (delivery.id, delivery.delivered, round)
}

/// The pace of the delivery task's tries. The failed invalidations are tried again
/// together, in a round, [`RETRY_EVERY`] after the last round has ended, as when
/// they were tried one after another; or at once when another is delivered: Redis
/// answers again (with the circuits open, the first attempt is their probe, and
/// the others fail at once).
///
/// Only a round lets its attempts through open circuits (`L2::let_probe_through`:
/// this task's attempts are their probes, so a queued invalidation does not wait out
/// a breaker's cooldown), and a round waits for the last to end: the probe is the
/// next call to a master, whoever makes it. Let through at every retry, a hanging
/// master's timeouts overlapping, or with a fresh attempt for a master that answers,
/// its probes went to the processes' own calls there as well, each of which waited
/// out its timeout: in the fleet checker's frozen phase, messages were seen 0.2 to
/// 0.9 s late at the 99th percentile, where the old outbox's were within 0.1 ms in
/// the same runs of that phase, and a writer made a third fewer invalidations.
#[derive(Default)]
struct Retries {
    /// Failed since the last round: left alone until the next.
    failed: HashSet<u64>,
    /// When the next round begins.
    at: Option<Instant>,
    /// A round begins: its attempts are let through open circuits.
    probe: bool,
    /// The last round's attempts still on their way.
    in_round: usize,
}

impl Retries {
    fn began(&mut self, in_round: bool) {
        self.in_round += usize::from(in_round);
    }

    fn ended(&mut self, id: u64, delivered: bool, in_round: bool) {
        self.in_round -= usize::from(in_round);
        if delivered {
            self.failed.clear();
        } else {
            self.failed.insert(id);
        }
        if self.failed.is_empty() {
            self.at = None;
        } else if self.in_round == 0 {
            self.at.get_or_insert_with(|| Instant::now() + RETRY_EVERY);
        }
    }

    fn due(&self) -> Option<Instant> {
        self.at.filter(|_| self.in_round == 0)
    }

    fn start_round(&mut self) {
        self.failed.clear();
        self.at = None;
        self.probe = true;
    }
}

pub(crate) fn snapshot() -> OutboxSnapshot {
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    OutboxSnapshot {
        pending: OUTBOX.pending.lock().len() as u64,
        queued: load(&OUTBOX.queued),
        delivered: load(&OUTBOX.delivered),
        coalesced: load(&OUTBOX.coalesced),
        overflowed: load(&OUTBOX.overflowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_retried_though_the_round_before_it_found_nothing_to_retry() {
        let mut retries = Retries::default();
        retries.began(false);
        // Every waiting invalidation on its way: the round's probe finds no attempt.
        retries.start_round();
        retries.ended(1, false, false);
        assert!(
            retries.due().is_some(),
            "a failed invalidation was never retried"
        );
    }

    #[test]
    fn a_round_begins_once_the_last_has_ended() {
        let mut retries = Retries::default();
        retries.began(true);
        retries.began(true);
        retries.ended(1, false, true);
        assert_eq!(retries.due(), None, "a round overlapped the last");
        retries.ended(2, false, true);
        assert!(retries.due().is_some());
    }
}
