//! `put!`, `refresh!`, `peek!` and `contains!` in-process (the Redis side is in
//! tests/redis_tier.rs). Each test uses its own functions: tests share the process.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use stratacache::{cached, contains, invalidate, invalidate_tag, peek, put, refresh};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// Waits (bounded) until `condition` holds: the load under test has started.
async fn until(condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the load did not start within a second");
}

static USER_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", tags = ["user:{id}"])]
async fn get_user(id: u64) -> Result<User, String> {
    let load = USER_LOADS.fetch_add(1, SeqCst) + 1;
    Ok(User {
        id,
        name: format!("loaded #{load}"),
    })
}

fn counters(name: &str) -> (u64, u64, u64) {
    let stats = stratacache::stats();
    let c = stats.cache(name).expect("the cache exists");
    (c.l1_hits, c.misses, c.loads)
}

#[tokio::test]
async fn put_is_read_back_without_a_load_and_stays_under_its_tags() {
    let written = User {
        id: 1,
        name: "written".into(),
    };
    put!(get_user(1), written.clone()).await.unwrap();
    assert_eq!(get_user(1).await.unwrap(), written);
    assert_eq!(USER_LOADS.load(SeqCst), 0, "a put value needs no load");
    assert_eq!(counters("entry_ops::get_user"), (1, 0, 0), "one L1 hit");

    // The put entry carries the tags of the call, so tag invalidation reaches it.
    invalidate_tag!("user:{}", 1).await.unwrap();
    assert_eq!(get_user(1).await.unwrap().name, "loaded #1");
}

static PEEKED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn peeked(name: &str) -> Option<String> {
    PEEKED_LOADS.fetch_add(1, SeqCst);
    (name != "nobody").then(|| name.to_uppercase())
}

#[tokio::test]
async fn peek_and_contains_never_load_and_count_nothing() {
    assert_eq!(peek!(peeked("ann")).await, None);
    assert!(!contains!(peeked("ann")).await);
    assert_eq!(PEEKED_LOADS.load(SeqCst), 0);

    assert_eq!(peeked("ann").await.as_deref(), Some("ANN"));
    assert_eq!(peek!(peeked("ann")).await.as_deref(), Some("ANN"));
    assert!(contains!(peeked("ann")).await);
    assert_eq!(peeked("nobody").await, None);
    assert!(!contains!(peeked("nobody")).await, "None is not cached");
    assert_eq!(
        counters("entry_ops::peeked"),
        (0, 2, 2),
        "peek and contains are not calls: only the two calls counted"
    );

    invalidate!(peeked("ann")).await.unwrap();
    assert!(!contains!(peeked("ann")).await);
    assert_eq!(PEEKED_LOADS.load(SeqCst), 2);
}

static REFRESHED_LOADS: AtomicUsize = AtomicUsize::new(0);
static INNER_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn inner(id: u64) -> usize {
    INNER_LOADS.fetch_add(1, SeqCst);
    id as usize
}

#[cached(ttl = "1m")]
async fn outer(id: u64) -> usize {
    let load = REFRESHED_LOADS.fetch_add(1, SeqCst) + 1;
    inner(id).await * 1000 + load
}

#[tokio::test]
async fn refresh_loads_now_and_the_next_call_reads_the_new_value() {
    assert_eq!(outer(3).await, 3001);
    assert_eq!(outer(3).await, 3001, "cached");
    assert_eq!(refresh!(outer(3)).await, 3002, "reloaded although fresh");
    assert_eq!(outer(3).await, 3002, "the reloaded value is the cached one");
    assert_eq!(REFRESHED_LOADS.load(SeqCst), 2);
    assert_eq!(
        INNER_LOADS.load(SeqCst),
        1,
        "a cached call inside the loader is a plain call, not refreshed"
    );
    // A key never cached: refresh is a load.
    assert_eq!(refresh!(outer(4)).await, 4003);
}

/// What `looked_up` finds on its next load: a row, nothing, a value not to keep, or
/// a failure.
static FINDS: AtomicUsize = AtomicUsize::new(ROW);
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);
const ROW: usize = 0;
const NOTHING: usize = 1;
const UNKEPT: usize = 2;
const FAILURE: usize = 3;

#[cached(ttl = "1m")]
async fn looked_up(id: u64) -> Result<Option<String>, String> {
    let lookup = LOOKUPS.fetch_add(1, SeqCst) + 1;
    match FINDS.load(SeqCst) {
        ROW => Ok(Some(format!("row {id} #{lookup}"))),
        NOTHING => Ok(None),
        UNKEPT => {
            stratacache::this_load::skip_caching();
            Ok(Some(format!("unkept {id} #{lookup}")))
        }
        _ => Err(format!("database down at #{lookup}")),
    }
}

#[tokio::test]
async fn a_refresh_that_finds_nothing_to_cache_drops_the_value_it_replaces() {
    let lookups = || LOOKUPS.load(SeqCst);
    // A failure is no answer about the data: the held value stays.
    assert_eq!(looked_up(1).await, Ok(Some("row 1 #1".into())));
    FINDS.store(FAILURE, SeqCst);
    assert!(refresh!(looked_up(1)).await.is_err());
    assert_eq!(looked_up(1).await, Ok(Some("row 1 #1".into())), "kept");
    assert_eq!(lookups(), 2);

    // Nothing found (`Ok(None)`, not cached): the row is gone, here too. It was
    // served until its ttl.
    FINDS.store(NOTHING, SeqCst);
    assert_eq!(refresh!(looked_up(1)).await, Ok(None));
    assert_eq!(peek!(looked_up(1)).await, None, "dropped");
    assert_eq!(looked_up(1).await, Ok(None));
    assert_eq!(lookups(), 4, "the next call loaded");

    // A value the loader chose not to keep replaces the held one all the same.
    FINDS.store(ROW, SeqCst);
    assert_eq!(looked_up(2).await, Ok(Some("row 2 #5".into())));
    FINDS.store(UNKEPT, SeqCst);
    assert_eq!(refresh!(looked_up(2)).await, Ok(Some("unkept 2 #6".into())));
    FINDS.store(ROW, SeqCst);
    assert_eq!(
        looked_up(2).await,
        Ok(Some("row 2 #7".into())),
        "dropped, loaded"
    );
}

static GATED_LOOKUPS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", skip(gate))]
async fn gated_lookup(id: u64, gate: Arc<tokio::sync::Semaphore>) -> Option<String> {
    GATED_LOOKUPS.fetch_add(1, SeqCst);
    let _permit = gate.acquire().await.unwrap();
    // No row but 0.
    (id == 0).then(|| "row 0".to_owned())
}

#[tokio::test]
async fn a_put_made_while_a_refresh_finds_nothing_stays() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    put!(gated_lookup(5, gate.clone()), "old".to_owned())
        .await
        .unwrap();
    let refreshing = tokio::spawn(refresh!(gated_lookup(5, gate.clone())));
    until(|| GATED_LOOKUPS.load(SeqCst) == 1).await;
    put!(gated_lookup(5, gate.clone()), "new".to_owned())
        .await
        .unwrap();
    gate.add_permits(1);
    assert_eq!(refreshing.await.unwrap(), None, "the refresh found nothing");
    assert_eq!(
        peek!(gated_lookup(5, gate.clone())).await.as_deref(),
        Some("new"),
        "the put made after the refresh's load began is newer than what it found"
    );
}

static GATED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", skip(gate))]
async fn gated(id: u64, gate: Arc<tokio::sync::Semaphore>) -> String {
    let load = GATED_LOADS.fetch_add(1, SeqCst) + 1;
    drop(gate.acquire().await.unwrap());
    format!("{id} from load {load}")
}

#[tokio::test]
async fn a_load_in_flight_does_not_overwrite_a_put_or_a_refresh() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = tokio::spawn(gated(1, gate.clone()));
    until(|| GATED_LOADS.load(SeqCst) >= 1).await;
    put!(gated(1, gate.clone()), "put".to_owned())
        .await
        .unwrap();
    gate.add_permits(10);
    assert_eq!(
        slow.await.unwrap(),
        "1 from load 1",
        "its caller gets its load"
    );
    assert_eq!(
        gated(1, gate.clone()).await,
        "put",
        "the older load did not replace the put value"
    );

    // Same for refresh!: a load that started before it does not replace its value.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = tokio::spawn(gated(2, gate.clone()));
    until(|| GATED_LOADS.load(SeqCst) >= 2).await;
    let refreshing = tokio::spawn(refresh!(gated(2, gate.clone())));
    until(|| GATED_LOADS.load(SeqCst) >= 3).await;
    gate.add_permits(10);
    assert_eq!(refreshing.await.unwrap(), "2 from load 3");
    slow.await.unwrap();
    assert_eq!(gated(2, gate.clone()).await, "2 from load 3");
}

#[derive(Clone)]
struct Repo {
    prefix: &'static str,
}

static REPO_LOADS: AtomicUsize = AtomicUsize::new(0);

impl Repo {
    #[cached(ttl = "1m", stale_while_revalidate)]
    async fn find(&self, id: u64) -> String {
        let load = REPO_LOADS.fetch_add(1, SeqCst) + 1;
        format!("{}{id}#{load}", self.prefix)
    }
}

#[tokio::test]
async fn the_entry_macros_work_on_methods() {
    let repo = Repo { prefix: "r" };
    assert_eq!(repo.find(1).await, "r1#1");
    assert!(contains!(repo.find(1)).await);
    assert_eq!(refresh!(repo.find(1)).await, "r1#2");
    put!(repo.find(1), "put".to_owned()).await.unwrap();
    assert_eq!(peek!(repo.find(1)).await.as_deref(), Some("put"));
    assert_eq!(repo.find(1).await, "put");
    assert_eq!(REPO_LOADS.load(SeqCst), 2);
}

static WARM_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn warm(id: u64) -> Result<u64, String> {
    WARM_LOADS.fetch_add(1, SeqCst);
    if id.is_multiple_of(10) {
        return Err(format!("no row {id}"));
    }
    Ok(id)
}

#[tokio::test]
async fn warm_up_reports_loaded_present_and_failed() {
    warm(1).await.unwrap();
    let report = stratacache::warm_up!(1..=20u64, |id| warm(id), concurrency = 4).await;
    assert_eq!(
        (report.loaded, report.present, report.failed),
        (17, 1, 2),
        "{report}"
    );
    assert_eq!(
        WARM_LOADS.load(SeqCst),
        20,
        "the present entry was not loaded again"
    );
    assert!(contains!(warm(7)).await);
    let again = stratacache::warm_up!(vec![7u64, 10], |id| warm(id)).await;
    assert_eq!((again.loaded, again.present, again.failed), (0, 1, 1));
}
