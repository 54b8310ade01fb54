//! Fail-safe (`stale_if_error`, with its `retry_after` back-off) and refresh-ahead,
//! in-process. The Redis side of fail-safe is in redis_tier.rs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use stratacache::{cached, invalidate_tag, peek};

static FRAGILE_LOADS: AtomicUsize = AtomicUsize::new(0);
static DATABASE_DOWN: AtomicBool = AtomicBool::new(false);

#[cached(ttl = "50ms", stale_if_error = "1h", retry_after = "300ms", tags = ["fragile:{id}"], name = "policy.fragile")]
async fn fragile(id: u64) -> Result<String, String> {
    let load = FRAGILE_LOADS.fetch_add(1, SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(5)).await;
    if DATABASE_DOWN.load(SeqCst) {
        Err(format!("database down while loading {id}"))
    } else {
        Ok(format!("{id}: load {load}"))
    }
}

fn loads() -> usize {
    FRAGILE_LOADS.load(SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_loader_answers_with_the_last_value_and_is_retried_after_the_back_off() {
    assert_eq!(fragile(1).await.unwrap(), "1: load 1");
    tokio::time::sleep(Duration::from_millis(80)).await; // past the ttl
    DATABASE_DOWN.store(true, SeqCst);

    // Concurrent callers: one load fails, everyone gets the last good value.
    let callers: Vec<_> = (0..20).map(|_| tokio::spawn(fragile(1))).collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), "1: load 1");
    }
    assert_eq!(loads(), 2, "one failed load for 20 callers");
    let stats = stratacache::stats();
    let snapshot = stats.cache("policy.fragile").unwrap();
    assert_eq!(snapshot.load_errors, 1, "the failure is counted");
    assert_eq!(
        snapshot.stale_served, 20,
        "every fail-safe answer is counted"
    );

    // The back-off: a burst inside it does not call the dead database.
    for _ in 0..100 {
        assert_eq!(fragile(1).await.unwrap(), "1: load 1");
    }
    assert_eq!(loads(), 2, "retries are throttled during the back-off");

    // After it, the loader is tried again (still failing: the fallback answers again).
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fragile(1).await.unwrap(), "1: load 1");
    assert_eq!(loads(), 3);

    // The database recovers: the next try after the back-off loads a new value.
    DATABASE_DOWN.store(false, SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(fragile(1).await.unwrap(), "1: load 4");

    // An invalidated value is never a fallback.
    DATABASE_DOWN.store(true, SeqCst);
    invalidate_tag!("fragile:{}", 1).await.unwrap();
    assert_eq!(
        fragile(1).await,
        Err("database down while loading 1".to_string())
    );
    // And with nothing cached there is nothing to fall back on.
    assert!(fragile(2).await.is_err());
    DATABASE_DOWN.store(false, SeqCst);
}

static PANICKY_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "30ms", stale_if_error = "1h", name = "policy.panicky")]
async fn panicky(id: u64) -> u64 {
    if PANICKY_LOADS.fetch_add(1, SeqCst) > 0 {
        panic!("the loader of {id} panicked");
    }
    id * 10
}

#[tokio::test]
async fn a_panicking_loader_is_a_failure_the_fallback_answers() {
    assert_eq!(panicky(4).await, 40);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        panicky(4).await,
        40,
        "the panic was answered by the fail-safe value"
    );
    assert_eq!(
        stratacache::stats()
            .cache("policy.panicky")
            .unwrap()
            .load_errors,
        1
    );
}

static AHEAD_LOADS: AtomicUsize = AtomicUsize::new(0);
static AHEAD_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[cached(ttl = "400ms", refresh_ahead = 0.5, name = "policy.ahead")]
async fn ahead(id: &str) -> String {
    let load = AHEAD_LOADS.fetch_add(1, SeqCst);
    if load > 0 {
        // Held until the test opens it: a caller that waited for it would never return.
        AHEAD_GATE.acquire().await.unwrap().forget();
    }
    format!("{id} v{load}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_refreshes_once_in_the_background_and_nobody_waits() {
    assert_eq!(ahead("a").await, "a v0");
    assert_eq!(ahead("a").await, "a v0");
    assert_eq!(
        AHEAD_LOADS.load(SeqCst),
        1,
        "before the refresh point: plain hits"
    );
    tokio::time::sleep(Duration::from_millis(250)).await; // past 0.5 of the ttl, still fresh
    let callers: Vec<_> = (0..30).map(|_| tokio::spawn(ahead("a"))).collect();
    for caller in callers {
        let answered = tokio::time::timeout(Duration::from_secs(10), caller).await;
        assert_eq!(
            answered.expect("a caller waited for the refresh").unwrap(),
            "a v0"
        );
    }
    // The refresh is spawned by the first caller past the refresh point; wait for it.
    for _ in 0..1000 {
        if AHEAD_LOADS.load(SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(AHEAD_LOADS.load(SeqCst), 2, "exactly one refresh started");
    AHEAD_GATE.add_permits(1);
    let mut seen = String::new();
    for _ in 0..200 {
        seen = ahead("a").await;
        if seen != "a v0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, "a v1", "the refreshed value replaced the old one");
    assert_eq!(AHEAD_LOADS.load(SeqCst), 2);
    assert_eq!(
        stratacache::stats().cache("policy.ahead").unwrap().misses,
        1,
        "only the first call missed"
    );
}

static SESSION_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1h", name = "policy.session")]
async fn session(id: u64) -> u64 {
    SESSION_LOADS.fetch_add(1, SeqCst);
    // The loader knows better than the attribute: this value expires quickly.
    stratacache::this_load::set_ttl(Duration::from_millis(50));
    id
}

static OWNED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1h", name = "policy.owned")]
async fn owned(id: u64) -> u64 {
    OWNED_LOADS.fetch_add(1, SeqCst);
    // Known only once loaded: which owner the record belongs to.
    stratacache::this_load::add_tag(format!("owner:{}", id % 2));
    id
}

static MAYBE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1h", name = "policy.maybe")]
async fn maybe(id: u64) -> u64 {
    MAYBE_LOADS.fetch_add(1, SeqCst);
    if id == 0 {
        stratacache::this_load::skip_caching();
    }
    id
}

#[tokio::test]
async fn a_loader_can_choose_its_ttl_add_tags_or_skip_caching() {
    session(1).await;
    session(1).await;
    assert_eq!(SESSION_LOADS.load(SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    session(1).await;
    assert_eq!(
        SESSION_LOADS.load(SeqCst),
        2,
        "the loader's 50 ms ttl replaced the attribute's hour"
    );

    for id in [1, 3, 2] {
        owned(id).await;
    }
    invalidate_tag!("owner:{}", 1).await.unwrap();
    for id in [1, 3, 2] {
        owned(id).await;
    }
    assert_eq!(
        OWNED_LOADS.load(SeqCst),
        5,
        "1 and 3 carried the tag the loader added; 2 did not"
    );

    for _ in 0..3 {
        maybe(0).await;
        maybe(1).await;
    }
    assert_eq!(
        MAYBE_LOADS.load(SeqCst),
        4,
        "0 is never cached (3 loads), 1 once"
    );
    assert!(
        !stratacache::this_load::skip_caching(),
        "outside a load: nothing to do"
    );
}

static SLOW_LOADS: AtomicUsize = AtomicUsize::new(0);
static SLOW_MODE: AtomicBool = AtomicBool::new(false);
/// Holds slow loads until the test opens it.
static SLOW_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[cached(
    ttl = "50ms",
    stale_if_error = "1h",
    timeout = "100ms",
    name = "policy.slow"
)]
async fn slow_source(id: u64) -> Result<String, String> {
    let load = SLOW_LOADS.fetch_add(1, SeqCst) + 1;
    if SLOW_MODE.load(SeqCst) {
        SLOW_GATE.acquire().await.unwrap().forget();
    }
    Ok(format!("{id}: load {load}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_load_is_answered_by_the_kept_value_and_finishes_in_the_background() {
    assert_eq!(slow_source(1).await.unwrap(), "1: load 1");
    tokio::time::sleep(Duration::from_millis(80)).await; // past the ttl
    SLOW_MODE.store(true, SeqCst);

    // The load is held shut: callers that waited for it would never return.
    let callers: Vec<_> = (0..10).map(|_| tokio::spawn(slow_source(1))).collect();
    for caller in callers {
        let answered = tokio::time::timeout(Duration::from_secs(10), caller).await;
        assert_eq!(
            answered
                .expect("a caller waited past the timeout")
                .unwrap()
                .unwrap(),
            "1: load 1"
        );
    }
    assert_eq!(SLOW_LOADS.load(SeqCst), 2, "one load, still running");

    // It finishes in the background and refreshes the cache.
    SLOW_GATE.add_permits(1);
    let mut seen = String::new();
    for _ in 0..200 {
        seen = slow_source(1).await.unwrap();
        if seen != "1: load 1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, "1: load 2");
    assert_eq!(SLOW_LOADS.load(SeqCst), 2);

    // With nothing kept, the caller waits for the load, however slow.
    let waiting = tokio::spawn(slow_source(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "with no kept value the call must wait for its load"
    );
    SLOW_GATE.add_permits(1);
    assert_eq!(waiting.await.unwrap().unwrap(), "2: load 3");
    SLOW_MODE.store(false, SeqCst);
}

#[derive(Debug, PartialEq)]
enum ReportError {
    TooSlow,
}

impl From<stratacache::TimedOut> for ReportError {
    fn from(_: stratacache::TimedOut) -> Self {
        ReportError::TooSlow
    }
}

static REPORT_LOADS: AtomicUsize = AtomicUsize::new(0);
static REPORT_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[cached(ttl = "1m", timeout = "100ms", hard_timeout, name = "policy.report")]
async fn report(id: u64) -> Result<String, ReportError> {
    REPORT_LOADS.fetch_add(1, SeqCst);
    REPORT_GATE.acquire().await.unwrap().forget();
    Ok(format!("report {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_timeout_fails_the_call_and_the_load_still_caches_its_value() {
    let answered = tokio::time::timeout(Duration::from_secs(10), report(1)).await;
    assert_eq!(
        answered.expect("the call outlived its timeout"),
        Err(ReportError::TooSlow)
    );
    REPORT_GATE.add_permits(1);
    let mut value = Err(ReportError::TooSlow);
    for _ in 0..200 {
        value = report(1).await;
        if value.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        value,
        Ok("report 1".to_string()),
        "the load went on and cached its value"
    );
    assert_eq!(REPORT_LOADS.load(SeqCst), 1, "one load for both calls");
}

static ROW_DELETED: AtomicBool = AtomicBool::new(false);
static ROW_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "50ms", stale_while_revalidate = "1h", name = "policy.row")]
async fn row(id: u64) -> Option<String> {
    let load = ROW_LOADS.fetch_add(1, SeqCst) + 1;
    let found = !ROW_DELETED.load(SeqCst);
    found.then(|| format!("row {id}: load {load}"))
}

/// A background refresh that finds nothing to cache (the row was deleted) drops the
/// stale value it was to replace. It was served to the end of the stale window (an
/// hour here), and every call in it started another load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_refresh_that_finds_nothing_drops_the_stale_value() {
    assert_eq!(row(1).await.as_deref(), Some("row 1: load 1"));
    tokio::time::sleep(Duration::from_millis(80)).await; // past the ttl
    ROW_DELETED.store(true, SeqCst);
    assert_eq!(
        row(1).await.as_deref(),
        Some("row 1: load 1"),
        "stale, while the refresh runs"
    );
    // The refresh counts the dropped value as an invalidation, once it is gone.
    let invalidations = || {
        stratacache::stats()
            .cache("policy.row")
            .unwrap()
            .invalidations
    };
    let mut dropped = false;
    for _ in 0..1000 {
        if invalidations() == 1 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(dropped, "the deleted row is still held, to be served stale");
    assert_eq!(ROW_LOADS.load(SeqCst), 2, "one refresh");
    assert_eq!(row(1).await, None, "the next call loads, and finds nothing");
    assert_eq!(ROW_LOADS.load(SeqCst), 3);
}

static FLAKY_DOWN: AtomicBool = AtomicBool::new(false);
static FLAKY_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "50ms", stale_while_revalidate = "1h", name = "policy.flaky")]
async fn flaky(id: u64) -> Result<String, String> {
    let load = FLAKY_LOADS.fetch_add(1, SeqCst) + 1;
    if FLAKY_DOWN.load(SeqCst) {
        Err(format!("database down at load {load}"))
    } else {
        Ok(format!("{id}: load {load}"))
    }
}

/// A background refresh that fails (no `stale_if_error`) backs off: the stale value
/// is served as fresh for the retry back-off. Every read in the stale window started
/// another load of the failing loader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_background_refresh_is_not_retried_by_every_read() {
    let value = Ok("1: load 1".to_owned());
    assert_eq!(flaky(1).await, value);
    tokio::time::sleep(Duration::from_millis(80)).await; // past the ttl
    FLAKY_DOWN.store(true, SeqCst);
    assert_eq!(flaky(1).await, value, "stale, while the refresh runs");
    let mut backed_off = false;
    for _ in 0..1000 {
        // Fresh again once the failed refresh backed off (`peek!` reads fresh only).
        if peek!(flaky(1)).await.is_some() {
            backed_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(backed_off, "the failed refresh did not back off");
    assert_eq!(FLAKY_LOADS.load(SeqCst), 2);
    for _ in 0..20 {
        assert_eq!(flaky(1).await, value);
    }
    assert_eq!(
        FLAKY_LOADS.load(SeqCst),
        2,
        "a read in the back-off loaded again"
    );
}
