//! `#[cached(batch)]` in-process: which keys reach the loader, sharing with a
//! single-key function, overlapping concurrent calls (the Redis side is in
//! tests/redis_tier.rs). Each test uses its own functions: tests share the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratacache::{cached, invalidate, invalidate_tag};

/// The key lists a loader was called with, in call order.
#[derive(Default)]
struct Calls(Mutex<Vec<Vec<u64>>>);

impl Calls {
    fn record(&self, keys: impl IntoIterator<Item = u64>) {
        let mut keys: Vec<u64> = keys.into_iter().collect();
        keys.sort_unstable();
        self.0.lock().unwrap().push(keys);
    }
    fn take(&self) -> Vec<Vec<u64>> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
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

static NAMES: Calls = Calls(Mutex::new(Vec::new()));

#[cached(ttl = "5m", batch, tags = ["person:{ids}"])]
async fn names(ids: &[u64]) -> HashMap<u64, String> {
    NAMES.record(ids.iter().copied());
    ids.iter().map(|id| (*id, format!("name {id}"))).collect()
}

#[tokio::test]
async fn only_the_missing_keys_reach_the_loader_in_one_call() {
    let first = names(&[1, 2, 3]).await;
    assert_eq!(first.len(), 3);
    assert_eq!(first[&2], "name 2");
    assert_eq!(NAMES.take(), vec![vec![1, 2, 3]]);

    let second = names(&[2, 3, 4, 5, 5]).await;
    assert_eq!(
        second
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [2, 3, 4, 5].into(),
        "the merged map holds cached and loaded keys"
    );
    assert_eq!(
        NAMES.take(),
        vec![vec![4, 5]],
        "one call with exactly the k missing keys"
    );

    assert_eq!(names(&[1, 5]).await.len(), 2);
    assert!(NAMES.take().is_empty(), "all hits: no loader call");

    // Each key is its own entry, under its own tags.
    invalidate_tag!("person:{}", 3).await.unwrap();
    names(&[1, 2, 3]).await;
    assert_eq!(NAMES.take(), vec![vec![3]]);

    let stats = stratacache::stats();
    let counters = stats.cache("batch::names").unwrap();
    assert_eq!(counters.loads, 3);
    assert_eq!(
        (counters.misses, counters.l1_hits),
        (6, 6),
        "a repeated key counts once"
    );
}

static EVEN: Calls = Calls(Mutex::new(Vec::new()));

/// Has values for even keys only.
#[cached(ttl = "5m", batch)]
async fn even_only(ids: Vec<u64>) -> BTreeMap<u64, u64> {
    EVEN.record(ids.iter().copied());
    ids.into_iter()
        .filter(|id| id % 2 == 0)
        .map(|id| (id, id * 10))
        .collect()
}

static EVEN_NONE: Calls = Calls(Mutex::new(Vec::new()));

#[cached(ttl = "5m", batch, cache_none)]
async fn even_only_cache_none(ids: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let ids: Vec<u64> = ids.into_iter().collect();
    EVEN_NONE.record(ids.iter().copied());
    ids.into_iter()
        .filter(|id| id % 2 == 0)
        .map(|id| (id, id * 10))
        .collect()
}

#[tokio::test]
async fn keys_the_loader_does_not_return_follow_cache_none() {
    assert_eq!(even_only(vec![1, 2, 3]).await, BTreeMap::from([(2, 20)]));
    assert_eq!(even_only(vec![1, 2, 3]).await, BTreeMap::from([(2, 20)]));
    assert_eq!(
        EVEN.take(),
        vec![vec![1, 2, 3], vec![1, 3]],
        "without cache_none a missing key is asked for again"
    );

    assert_eq!(even_only_cache_none(vec![1, 2, 3]).await, vec![(2, 20)]);
    assert_eq!(even_only_cache_none([3, 2, 1]).await.len(), 1);
    assert_eq!(
        EVEN_NONE.take(),
        vec![vec![1, 2, 3]],
        "with cache_none the absence is cached too"
    );
}

static CLEARED: Calls = Calls(Mutex::new(Vec::new()));

/// `impl IntoIterator` makes the function generic: each collection type is an
/// instance of its code, all with one cache.
#[cached(ttl = "5m", batch)]
async fn squares(ids: impl IntoIterator<Item = u64>) -> HashMap<u64, u64> {
    let ids: Vec<u64> = ids.into_iter().collect();
    CLEARED.record(ids.iter().copied());
    ids.into_iter().map(|id| (id, id * id)).collect()
}

#[tokio::test]
async fn clear_reaches_a_batch_function_generic_over_its_keys() {
    assert_eq!(squares(vec![2, 3]).await.len(), 2);
    assert_eq!(
        squares([3, 2]).await.len(),
        2,
        "another instance, the same cache"
    );
    assert_eq!(CLEARED.take(), vec![vec![2, 3]]);
    stratacache::clear!(squares).await.unwrap();
    assert_eq!(squares([2]).await, HashMap::from([(2, 4)]));
    assert_eq!(
        CLEARED.take(),
        vec![vec![2]],
        "clear! emptied the function's cache"
    );
}

static SINGLE_LOADS: AtomicUsize = AtomicUsize::new(0);
static SHARED: Calls = Calls(Mutex::new(Vec::new()));

#[cached(ttl = "5m", name = "batch.accounts")]
async fn account(id: u64) -> Option<String> {
    SINGLE_LOADS.fetch_add(1, SeqCst);
    Some(format!("account {id}"))
}

#[cached(ttl = "5m", name = "batch.accounts", batch)]
async fn accounts(ids: &[u64]) -> Result<HashMap<u64, String>, String> {
    SHARED.record(ids.iter().copied());
    Ok(ids
        .iter()
        .map(|id| (*id, format!("account {id}")))
        .collect())
}

#[tokio::test]
async fn a_batch_and_a_single_key_function_share_entries_by_name() {
    accounts(&[1, 2]).await.unwrap();
    assert_eq!(account(1).await.as_deref(), Some("account 1"));
    assert_eq!(
        SINGLE_LOADS.load(SeqCst),
        0,
        "the batch's entry answered the single call"
    );

    account(9).await;
    let both = accounts(&[9, 10]).await.unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(SHARED.take(), vec![vec![1, 2], vec![10]]);

    invalidate!(account(10)).await.unwrap();
    accounts(&[9, 10]).await.unwrap();
    assert_eq!(
        SHARED.take(),
        vec![vec![10]],
        "invalidate! of the single fn reaches it"
    );
}

static OVERLAP: Calls = Calls(Mutex::new(Vec::new()));

#[cached(ttl = "5m", batch, skip(gate))]
async fn gated(ids: &[u64], gate: Arc<tokio::sync::Semaphore>) -> HashMap<u64, u64> {
    OVERLAP.record(ids.iter().copied());
    drop(gate.acquire().await.unwrap());
    ids.iter().map(|id| (*id, id + 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_concurrent_batch_calls_load_each_key_once() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let first: Vec<u64> = (1..=10).collect();
    let a = tokio::spawn({
        let gate = gate.clone();
        async move { gated(&first, gate).await }
    });
    until(|| !OVERLAP.0.lock().unwrap().is_empty()).await;
    let second: Vec<u64> = (5..=15).collect();
    let b = tokio::spawn({
        let gate = gate.clone();
        async move { gated(&second, gate).await }
    });
    until(|| OVERLAP.0.lock().unwrap().len() >= 2).await;
    gate.add_permits(100);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.len(), 10);
    assert_eq!(b.len(), 11);
    assert!(b.iter().all(|(id, value)| *value == id + 1));
    let calls = OVERLAP.take();
    assert_eq!(
        calls,
        vec![(1..=10).collect::<Vec<_>>(), (11..=15).collect()],
        "the second call loaded only the keys the first was not loading"
    );
}

static FAILING: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "5m", batch, skip(fail))]
async fn failing(ids: &[u64], fail: bool) -> Result<HashMap<u64, u64>, String> {
    FAILING.fetch_add(1, SeqCst);
    if fail {
        return Err(format!("cannot load {} keys", ids.len()));
    }
    Ok(ids.iter().map(|id| (*id, *id)).collect())
}

#[tokio::test]
async fn an_error_is_returned_as_is_and_nothing_is_cached() {
    assert_eq!(
        failing(&[1, 2], true).await,
        Err("cannot load 2 keys".into())
    );
    assert_eq!(failing(&[1, 2], false).await.unwrap().len(), 2);
    assert_eq!(FAILING.load(SeqCst), 2, "the error was not cached");
}

struct Repo {
    offset: u64,
}

static REPO_CALLS: Calls = Calls(Mutex::new(Vec::new()));

impl Repo {
    #[cached(ttl = "5m", batch, skip(trace))]
    async fn scores(&self, ids: &Vec<u64>, trace: &str) -> HashMap<u64, u64> {
        assert_eq!(trace, "request-1");
        REPO_CALLS.record(ids.iter().copied());
        ids.iter().map(|id| (*id, id + self.offset)).collect()
    }
}

#[tokio::test]
async fn batch_methods_borrow_self_and_skipped_arguments() {
    let repo = Repo { offset: 100 };
    assert_eq!(repo.scores(&vec![1, 2], "request-1").await[&2], 102);
    assert_eq!(repo.scores(&vec![2, 3], "request-1").await[&3], 103);
    assert_eq!(REPO_CALLS.take(), vec![vec![1, 2], vec![3]]);
}

static WARM_BATCH: Calls = Calls(Mutex::new(Vec::new()));

#[cached(ttl = "5m", batch)]
async fn warm_batch(ids: &[u64]) -> HashMap<u64, u64> {
    WARM_BATCH.record(ids.iter().copied());
    ids.iter()
        .filter(|id| **id != 13)
        .map(|id| (*id, *id))
        .collect()
}

#[tokio::test]
async fn warm_up_of_a_batch_function_is_one_loader_call() {
    warm_batch(&[1, 2]).await;
    let ids: Vec<u64> = (1..=20).collect();
    let report = stratacache::warm_up!(warm_batch(&ids)).await;
    assert_eq!(
        (report.loaded, report.present, report.failed),
        (17, 2, 1),
        "{report}"
    );
    assert_eq!(WARM_BATCH.take(), vec![vec![1, 2], (3..=20).collect()]);
}

static OVERRIDDEN: Calls = Calls(Mutex::new(Vec::new()));

/// Keys under 100 are not cached; the others are kept under an added tag.
#[cached(ttl = "5m", batch)]
async fn overridden(ids: &[u64]) -> HashMap<u64, u64> {
    OVERRIDDEN.record(ids.iter().copied());
    if ids.iter().any(|id| *id < 100) {
        stratacache::this_load::skip_caching();
    } else {
        stratacache::this_load::add_tag("batch-added");
    }
    ids.iter().map(|id| (*id, id * 2)).collect()
}

#[tokio::test]
async fn a_batch_loader_s_overrides_apply_as_a_single_key_loader_s() {
    assert_eq!(overridden(&[1, 2]).await[&2], 4);
    assert_eq!(overridden(&[1, 2]).await.len(), 2);
    assert_eq!(
        OVERRIDDEN.take(),
        vec![vec![1, 2], vec![1, 2]],
        "skip_caching: answered, not kept"
    );

    assert_eq!(overridden(&[100, 101]).await[&101], 202);
    assert_eq!(overridden(&[100, 101]).await.len(), 2);
    assert_eq!(OVERRIDDEN.take(), vec![vec![100, 101]], "kept");
    invalidate_tag!("batch-added").await.unwrap();
    assert_eq!(overridden(&[100, 101]).await.len(), 2);
    assert_eq!(
        OVERRIDDEN.take(),
        vec![vec![100, 101]],
        "the tag the loader added reaches its entries"
    );
}
