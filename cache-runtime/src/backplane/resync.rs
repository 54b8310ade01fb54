//! Catching up on what the backplane missed: the Redis versions of the tags held here
//! that may have moved are re-read, so a lost message bounds staleness by the
//! resync interval instead of making it permanent; and `Config::max_unsynced`, which
//! drops L1 while no resync succeeds.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::restarts;
use super::rollback::{self, Checked};
use crate::l2::breaker;
use crate::l2::counters::Bumped;
use crate::l2::{keys, Node, L2};
use crate::tags::TagCell;
use crate::{clock, entry_changes, registry, tags};

/// When this process last read every tag version it holds from Redis (clock ms).
static LAST_SYNC_MS: AtomicU64 = AtomicU64::new(0);

/// What the backplane heard since the last resync, which decides what a change the
/// resync reads but was not told of means.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Hearing {
    /// Subscribed throughout: a change not heard of may be a message still on its
    /// way; it is taken for missed if still unheard at the next resync.
    Listening,
    /// Subscribed again just now, after a gap: every change not heard of was
    /// missed, and every named tag's counter may have moved (all are read).
    AfterGap,
    /// Not subscribed (subscribing, or waiting to try again): nothing is heard, so
    /// every change not heard of was missed.
    Deaf,
}

/// Re-reads the Redis version of every tag held here; a version that moved means a
/// missed invalidation, and the local tag is bumped. Reads every cache's entry-change
/// counter too: a change missed means the cache's L1 is dropped (see [`Hearing`]
/// and [`entry_changes::missed`]).
///
/// The named tags, one counter each (per-entity tags make them many: 100,000 took
/// 196 `MGET`s and 73 ms of Redis's time), are read only where a counter may have
/// moved since they last were: every bump of one also bumps the namespace's count of
/// bumps and lists the counter (in the same script on a standalone server, after the
/// bump's message on a cluster: `counters`), so a count found where it was at the
/// last read means none moved since (see [`BUMPS_AT_LAST_READ`]), and a count that
/// moved, that only the listed ones did.
///
/// On a cluster with a master down or hanging, what the other masters hold is read
/// and applied all the same, each counter as its master answers: an invalidation
/// whose message was lost, its counter on a healthy master, is caught within the
/// interval, not once the master is back (a cluster that serves with a master down,
/// `cluster-require-full-coverage no`, may stay so for long), nor once a hanging
/// master's read has timed out (the named tags were read only after every namespace
/// counter had answered or timed out). Such a resync does not count as a sync for
/// `max_unsynced`.
///
/// A resync begins at every tick, whether the last has ended or not (`within`, the
/// interval), and leaves the nodes where an earlier one's read has waited that long
/// to it: a hanging master's reads wait for `l2_timeout`, and with that longer than
/// the interval, a resync waiting for them held back the next, so a lost
/// invalidation on a healthy master was caught that timeout late. A node slower than
/// the interval to answer is still read. Such a resync is partial too.
pub(crate) async fn resync(l2: &'static L2, hearing: Hearing, within: Duration) {
    let left = l2.resync_stuck(within);
    let (bumps_read, bumps) = tokio::sync::oneshot::channel();
    let named = async {
        // Unanswered (the read ended without it, dropping the sender): `None`.
        let bumps = bumps.await.ok();
        resync_named_tags(l2, bumps, hearing == Hearing::AfterGap, &left).await
    };
    let namespace = resync_namespace_counters(l2, hearing, bumps_read, &left);
    let runs = restarts::check(l2, &left);
    let (namespace_whole, (named, named_whole), ()) =
        futures_util::future::join3(namespace, named, runs).await;
    // Synced only if every counter was read: what a master that is down holds may
    // have moved (`max_unsynced` goes by this).
    if named_whole && namespace_whole {
        LAST_SYNC_MS.store(clock::precise_ms(), Ordering::Relaxed);
        tracing::debug!(named, "stratacache: tag versions resynced");
    } else {
        tracing::debug!(
            named,
            "stratacache: tag versions resynced in part: Redis answered for some counters only"
        );
    }
}

/// Reads and applies the namespace's own counters: the global tag's, each cache's
/// tag and entry-change counters; sends the count of bumps to `bumps_read` as soon
/// as it is answered. True if every one was read.
async fn resync_namespace_counters(
    l2: &'static L2,
    hearing: Hearing,
    bumps_read: tokio::sync::oneshot::Sender<u64>,
    left: &HashSet<Node>,
) -> bool {
    let caches = registry::cache_tags();
    let mut cells = vec![(keys::global_tag(&l2.namespace), Checked::global())];
    cells.extend(caches.iter().map(|(name, cell)| {
        let checked = Checked::cache_tag(name, cell.clone());
        (keys::cache_tag(&l2.namespace, name), checked)
    }));
    let changes: Vec<Checked> = caches
        .iter()
        .map(|(name, _)| Checked::entry_changes(name))
        .collect();
    let counters: Vec<String> = cells
        .iter()
        .map(|(key, _)| key.clone())
        .chain(
            caches
                .iter()
                .map(|(name, _)| keys::entry_changes(&l2.namespace, name)),
        )
        .chain([l2.bumps_key()])
        .collect();
    let mut bumps_read = Some(bumps_read);
    let mut went_back = Vec::new();
    let read = l2
        .versions_as_answered(&counters, left, |index, version| {
            if let Some((_, cell)) = cells.get(index) {
                if cell.observe(version) {
                    went_back.push(cell);
                }
            } else if let Some((name, _)) = caches.get(index - cells.len()) {
                let change = &changes[index - cells.len()];
                if change.observe(version) {
                    went_back.push(change);
                } else if entry_changes::missed(name, version, hearing != Hearing::Listening) {
                    tracing::info!(cache = %name, "stratacache: an entry's invalidation was missed (its message lost); the cache's L1 is dropped");
                    registry::missed_entry_changes(name);
                }
            } else if let Some(sender) = bumps_read.take() {
                let _ = sender.send(version);
            }
        })
        .await;
    rollback::make_again(l2, went_back);
    if read == 0 {
        tracing::debug!(
            "stratacache: resync of the namespace's counters skipped: Redis did not answer, or an earlier resync still waits on it"
        );
    }
    read == counters.len()
}

/// The namespace's count of bumps as of which every named tag's counter was last
/// read, all of them or those listed as bumped since, or [`NO_LAST_READ`].
/// Never repeats: the count grows as the counters do, past the writer's clock in
/// microseconds after a loss (`counters`).
static BUMPS_AT_LAST_READ: AtomicU64 = AtomicU64::new(NO_LAST_READ);

/// No resync has read the named tags since the count was read.
const NO_LAST_READ: u64 = u64::MAX;

/// One resync in this many reads every named tag even when the count has not moved:
/// a counter moved other than by this release's script (an `INCR` by hand; during a
/// rolling upgrade, a process of an earlier release on a cluster) moves no count, and
/// its lost message is caught within this many intervals instead of one (5 minutes
/// at the default interval; an idle resync costs 1/30 of a full one, on average).
const FULL_READ_EVERY: u32 = 30;

/// Resyncs since the last that read every named tag.
static SKIPPED_FULL_READS: AtomicU32 = AtomicU32::new(0);

/// How many circuits had opened (`breaker::openings`) and servers had run anew
/// (`restarts`) as of the last whole read of every named tag. A master that was down
/// may be back without its last writes (a snapshot, a replica promoted before it
/// caught up), and a counter gone back there is in no list of bumps since (the bumps
/// were logged, then lost with it): the named tags are all read once every circuit is
/// closed again, or once a new run of a server is found, and one gone back is found
/// (`rollback`), where only the full read at one resync in [`FULL_READ_EVERY`] found
/// it.
static OUTAGES_AT_FULL_READ: AtomicU64 = AtomicU64::new(0);

/// Reads the version of the named tags held here that may have moved since the last
/// resync (`bumps`: the count of bumps, read before them, `None` if Redis did not
/// answer for it): none if the count has not moved, those the list of bumps names if it
/// knows them, else all of them. How many counters it read, and whether it read
/// every one it meant to: a counter left unread (its cluster master down or hanging)
/// leaves the count of bumps as of which they were last all read, and the next
/// resync reads every counter bumped since.
async fn resync_named_tags(
    l2: &'static L2,
    bumps: Option<u64>,
    after_gap: bool,
    left: &HashSet<Node>,
) -> (usize, bool) {
    if bumps.is_none() && !l2.is_cluster() {
        // A standalone server that did not answer for the count answers for nothing.
        return (0, false);
    }
    let last_read = BUMPS_AT_LAST_READ.load(Ordering::Acquire);
    let skipped = SKIPPED_FULL_READS.fetch_add(1, Ordering::Relaxed) + 1;
    // Both counts only grow, so their sum moves when either does.
    let outages = breaker::openings() + restarts::runs_anew();
    let after_outage =
        outages != OUTAGES_AT_FULL_READ.load(Ordering::Acquire) && !l2.any_circuit_open();
    let full = after_gap || after_outage || skipped >= FULL_READ_EVERY || last_read == NO_LAST_READ;
    let bumped = match bumps {
        Some(_) if full => Bumped::Unknown,
        None => Bumped::Unknown,
        Some(count) if count == last_read => return (0, true),
        Some(_) => l2.bumped_since(last_read).await.unwrap_or(Bumped::Unknown),
    };
    let (named, count, reads_all) = match bumped {
        Bumped::Counters(count, counters) => (bumped_cells(l2, counters), Some(count), false),
        Bumped::Unknown => {
            SKIPPED_FULL_READS.store(0, Ordering::Relaxed);
            (all_named_cells(l2), bumps, true)
        }
    };
    let (tag_keys, checked): (Vec<String>, Vec<Checked>) = named
        .into_iter()
        .map(|(key, cell)| (key, Checked::named(cell)))
        .unzip();
    let mut went_back = Vec::new();
    let read = l2
        .versions_as_answered(&tag_keys, left, |index, version| {
            if checked[index].observe(version) {
                went_back.push(&checked[index]);
            }
        })
        .await;
    rollback::make_again(l2, went_back);
    let whole = read == tag_keys.len() && count.is_some();
    // The count read before the counters: a bump after it moves it again. A read that
    // left a counter unread leaves the last whole read's count, and the next resync
    // reads what was bumped since. (It set none, and the next read every counter:
    // with resyncs overlapping, one that skipped a hanging master made every one
    // after it a full read.)
    if let Some(count) = count.filter(|_| whole) {
        BUMPS_AT_LAST_READ.store(count, Ordering::Release);
    }
    if reads_all && whole {
        OUTAGES_AT_FULL_READ.store(outages, Ordering::Release);
    }
    (read, whole)
}

/// Every named tag held here, with its counter.
fn all_named_cells(l2: &L2) -> Vec<(String, Arc<TagCell>)> {
    tags::named_cells()
        .into_iter()
        .map(|(name, cell)| (keys::tag(&l2.namespace, &name), cell))
        .collect()
}

/// The named tags held here among `counters`, each once.
fn bumped_cells(l2: &L2, mut counters: Vec<String>) -> Vec<(String, Arc<TagCell>)> {
    counters.sort_unstable();
    counters.dedup();
    counters
        .into_iter()
        .filter_map(|counter| {
            let cell = tags::held(keys::tag_name(&l2.namespace, &counter)?)?;
            Some((counter, cell))
        })
        .collect()
}

/// `Config::max_unsynced`: while no resync has succeeded for longer than `bound`,
/// drops this process's whole L1 (a local bump of the global tag), and again every
/// `bound`, so a process cut off from invalidations serves nothing older than that.
pub(crate) async fn drop_l1_while_unsynced(bound: Duration) {
    let bound_ms = clock::to_ms(bound);
    let mut checks = tokio::time::interval((bound / 4).max(Duration::from_millis(10)));
    let mut dropped_at = 0;
    LAST_SYNC_MS.fetch_max(clock::precise_ms(), Ordering::Relaxed);
    loop {
        checks.tick().await;
        let now = clock::precise_ms();
        let synced_at = LAST_SYNC_MS.load(Ordering::Relaxed);
        if now.saturating_sub(synced_at) > bound_ms && now.saturating_sub(dropped_at) >= bound_ms {
            dropped_at = now;
            tags::GLOBAL.bump();
            registry::clear_all_stores();
            tracing::warn!(
                unsynced_ms = now - synced_at,
                "stratacache: no sync with Redis for longer than max_unsynced; L1 dropped"
            );
        }
    }
}
