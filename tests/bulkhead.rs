//! `#[cached(max_loads = n)]`: at most n loader runs of one function at once in a
//! process, the others waiting their turn in the order they came; single-flight is
//! unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use stratacache::cached;

static RUNNING: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(local, max_loads = 4, name = "bulkhead.bounded")]
async fn bounded(id: u64) -> u64 {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    id
}

fn counters(cache: &str) -> stratacache::CacheStatsSnapshot {
    stratacache::stats().cache(cache).cloned().expect("used")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_distinct_misses_never_run_more_than_four_loaders() {
    let calls = (0..100).map(|id| tokio::spawn(bounded(id)));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers
        .into_iter()
        .enumerate()
        .all(|(id, got)| got.unwrap() == id as u64));
    assert_eq!(LOADS.load(Ordering::SeqCst), 100);
    assert_eq!(
        PEAK.load(Ordering::SeqCst),
        4,
        "the bound is reached, never passed"
    );
    let stats = counters("bulkhead.bounded");
    assert!(
        stats.queued_loads >= 90,
        "{} loads waited",
        stats.queued_loads
    );
    assert!(stats.load_queue_wait_micros > 0);
    assert_eq!(stats.load_queue, 0, "nobody waits once all answered");

    // Single-flight first: 1,000 callers of one missing key are one load.
    let before = LOADS.load(Ordering::SeqCst);
    let same = (0..1_000).map(|_| tokio::spawn(bounded(1_000)));
    futures_util::future::join_all(same).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), before + 1);
}

static ORDER: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// Holds the first load (id 0) in its loader, with the only turn, until set.
static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(local, max_loads = 1, name = "bulkhead.single")]
async fn one_at_a_time(id: u64) -> u64 {
    ORDER.lock().unwrap().push(id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while id == 0 && !RELEASE.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    id
}

/// Waits (up to 5 s) until `n` loads queue on `one_at_a_time`.
async fn until_queued(n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while counters("bulkhead.single").load_queue < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} loads never queued"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_loads_run_in_the_order_they_came() {
    let first = tokio::spawn(one_at_a_time(0));
    // The first holds the only turn once it is in its loader.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ORDER.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut waiting = Vec::new();
    for id in 1..=8 {
        waiting.push(tokio::spawn(one_at_a_time(id)));
        until_queued(id).await;
    }
    RELEASE.store(true, Ordering::SeqCst);
    first.await.unwrap();
    futures_util::future::join_all(waiting).await;
    assert_eq!(*ORDER.lock().unwrap(), (0..=8).collect::<Vec<u64>>());
}

static DEFAULT_RUNNING: AtomicU64 = AtomicU64::new(0);
static DEFAULT_PEAK: AtomicU64 = AtomicU64::new(0);

#[cached(local, name = "bulkhead.defaulted")]
async fn defaulted(id: u64) -> u64 {
    let now = DEFAULT_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    DEFAULT_PEAK.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    DEFAULT_RUNNING.fetch_sub(1, Ordering::SeqCst);
    id
}

/// `Config::max_loads` bounds the functions that give no `max_loads` of their own
/// (the other functions of this file keep theirs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_config_default_bounds_functions_without_their_own() {
    stratacache::init(stratacache::Config::new().max_loads(2)).unwrap();
    let calls = (0..20).map(|id| tokio::spawn(defaulted(id)));
    futures_util::future::join_all(calls).await;
    assert_eq!(DEFAULT_PEAK.load(Ordering::SeqCst), 2);
}
