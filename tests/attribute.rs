//! `#[cached]` end to end, in-process: what a caller sees and how often the body runs.
//! Each test uses its own functions and tags: tests in this binary share the process.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use stratacache::{cached, clear, invalidate, invalidate_tag};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// Waits (bounded) until `counter` reaches `n`: the load under test has started.
async fn until_started(counter: &AtomicUsize, n: usize) {
    for _ in 0..1000 {
        if counter.load(SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the load did not start within a second");
}

static STAMPEDE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn stampede(id: u64) -> String {
    STAMPEDE_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_callers_of_one_missing_key_run_the_body_once() {
    let callers: Vec<_> = (0..1000).map(|_| tokio::spawn(stampede(1))).collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), "value 1");
    }
    assert_eq!(STAMPEDE_LOADS.load(SeqCst), 1);
    let stats = stratacache::stats();
    let snapshot = stats
        .cache("attribute::stampede")
        .expect("default name is the function path");
    assert_eq!(
        (snapshot.loads, snapshot.misses + snapshot.l1_hits),
        (1, 1000)
    );
}

static SLOW_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn slow(id: u64, delay_ms: u64) -> u64 {
    SLOW_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    id * 10
}

#[tokio::test]
async fn a_cancelled_first_caller_leaves_the_others_answered() {
    // Same key for both: `delay_ms` is part of the key, so use one delay.
    let first = tokio::spawn(slow(3, 100));
    until_started(&SLOW_LOADS, 1).await;
    let others: Vec<_> = (0..5).map(|_| tokio::spawn(slow(3, 100))).collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    first.abort();
    for other in others {
        assert_eq!(other.await.unwrap(), 30);
    }
    assert_eq!(
        SLOW_LOADS.load(SeqCst),
        2,
        "the cancelled load and one takeover"
    );
}

static PANIC_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn sometimes_panics(id: u64) -> u64 {
    let run = PANIC_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    if run == 0 {
        panic!("first load explodes");
    }
    id
}

#[tokio::test]
async fn a_panicking_loader_reaches_its_waiters_and_poisons_nothing() {
    let first = tokio::spawn(sometimes_panics(5));
    until_started(&PANIC_LOADS, 1).await;
    let waiter = tokio::spawn(sometimes_panics(5));
    assert!(first.await.unwrap_err().is_panic());
    let waiter_panic = waiter.await.unwrap_err().into_panic();
    let message = waiter_panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("first load explodes"), "{message}");
    assert_eq!(sometimes_panics(5).await, 5, "the next call loads normally");
    assert_eq!(PANIC_LOADS.load(SeqCst), 2);
}

static FALLIBLE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn fallible(id: u64, fail: bool) -> Result<u64, String> {
    FALLIBLE_LOADS.fetch_add(1, SeqCst);
    if fail {
        Err(format!("no {id}"))
    } else {
        Ok(id)
    }
}

static OPTIONAL_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn optional(id: u64) -> Option<u64> {
    OPTIONAL_LOADS.fetch_add(1, SeqCst);
    (id > 100).then_some(id)
}

#[tokio::test]
async fn err_and_none_are_not_cached_by_default() {
    assert_eq!(fallible(1, true).await, Err("no 1".into()));
    assert_eq!(fallible(1, true).await, Err("no 1".into()));
    assert_eq!(FALLIBLE_LOADS.load(SeqCst), 2, "an Err must not be cached");
    assert_eq!(fallible(1, false).await, Ok(1));
    assert_eq!(fallible(1, false).await, Ok(1));
    assert_eq!(FALLIBLE_LOADS.load(SeqCst), 3, "an Ok must be cached");

    assert_eq!(optional(1).await, None);
    assert_eq!(optional(1).await, None);
    assert_eq!(OPTIONAL_LOADS.load(SeqCst), 2, "a None must not be cached");
    assert_eq!(optional(101).await, Some(101));
    assert_eq!(optional(101).await, Some(101));
    assert_eq!(OPTIONAL_LOADS.load(SeqCst), 3);
    let stats = stratacache::stats();
    assert_eq!(stats.cache("attribute::fallible").unwrap().load_errors, 2);
}

static CACHED_ERR_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", cache_err)]
async fn cached_err(id: u64) -> Result<u64, String> {
    CACHED_ERR_LOADS.fetch_add(1, SeqCst);
    Err(format!("no {id}"))
}

static CACHED_NONE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", cache_none)]
async fn cached_none(_id: u64) -> Option<u64> {
    CACHED_NONE_LOADS.fetch_add(1, SeqCst);
    None
}

#[tokio::test]
async fn cache_err_and_cache_none_opt_in() {
    assert!(cached_err(1).await.is_err());
    assert!(cached_err(1).await.is_err());
    assert_eq!(CACHED_ERR_LOADS.load(SeqCst), 1);
    assert_eq!(cached_none(1).await, None);
    assert_eq!(cached_none(1).await, None);
    assert_eq!(CACHED_NONE_LOADS.load(SeqCst), 1);
}

static USER_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "15m", tags = ["users", "user:{id}"])]
async fn get_user(id: u64) -> Result<User, std::io::Error> {
    USER_LOADS.fetch_add(1, SeqCst);
    Ok(User {
        id,
        name: format!("user {id}"),
    })
}

#[tokio::test]
async fn invalidate_tag_reloads_only_the_tagged_entry() {
    get_user(7).await.unwrap();
    get_user(8).await.unwrap();
    assert_eq!(USER_LOADS.load(SeqCst), 2);
    invalidate_tag!("user:{}", 7).await.unwrap();
    get_user(7).await.unwrap();
    get_user(8).await.unwrap();
    assert_eq!(USER_LOADS.load(SeqCst), 3, "7 reloads, 8 does not");
    invalidate_tag!("users").await.unwrap();
    get_user(7).await.unwrap();
    get_user(8).await.unwrap();
    assert_eq!(USER_LOADS.load(SeqCst), 5, "the shared tag reaches both");
}

static RACE_LOADS: AtomicUsize = AtomicUsize::new(0);
static RACE_VALUE: AtomicUsize = AtomicUsize::new(1);

#[cached(ttl = "1m", tags = ["race:{id}"])]
async fn racy_read(id: u64) -> usize {
    // Reads the "database" before a write lands, then is slow to return. The read comes
    // before the count, so a test that saw the count knows the read is done.
    let value = RACE_VALUE.load(SeqCst);
    RACE_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;
    value
}

#[tokio::test]
async fn an_invalidation_during_a_load_is_not_undone_by_that_load() {
    let old_read = tokio::spawn(racy_read(1));
    until_started(&RACE_LOADS, 1).await;
    RACE_VALUE.store(2, SeqCst); // the write
    invalidate_tag!("race:{}", 1).await.unwrap(); // and its invalidation
    assert_eq!(
        racy_read(1).await,
        2,
        "a call after the invalidation must not join the old load"
    );
    assert_eq!(old_read.await.unwrap(), 1);
    assert_eq!(
        racy_read(1).await,
        2,
        "the old load must not have overwritten the new value"
    );
    assert_eq!(RACE_LOADS.load(SeqCst), 2);
}

static SWR_LOADS: AtomicUsize = AtomicUsize::new(0);
/// Holds the background refresh until the test opens it.
static SWR_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[cached(ttl = "100ms", stale_while_revalidate = "1m")]
async fn revalidated(id: &str) -> String {
    let generation = SWR_LOADS.fetch_add(1, SeqCst);
    if generation > 0 {
        SWR_GATE.acquire().await.unwrap().forget();
    }
    format!("{id} v{generation}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_stale_to_every_caller_and_refreshes_once() {
    assert_eq!(revalidated("a").await, "a v0");
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Within the window every caller gets the stale value while the refresh is held
    // shut: a caller that waited for the refresh would never return.
    let callers: Vec<_> = (0..50).map(|_| tokio::spawn(revalidated("a"))).collect();
    for caller in callers {
        let answered = tokio::time::timeout(Duration::from_secs(10), caller).await;
        assert_eq!(
            answered.expect("a caller waited for the refresh").unwrap(),
            "a v0"
        );
    }
    // The refresh is spawned by the first stale caller; it may not have run yet.
    until_started(&SWR_LOADS, 2).await;
    assert_eq!(
        SWR_LOADS.load(SeqCst),
        2,
        "exactly one background refresh started"
    );
    SWR_GATE.add_permits(1);
    let mut refreshed = String::new();
    for _ in 0..200 {
        refreshed = revalidated("a").await;
        if refreshed != "a v0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(refreshed, "a v1");
    assert_eq!(SWR_LOADS.load(SeqCst), 2, "exactly one background refresh");
}

static SHUTDOWN_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(
    ttl = "100ms",
    stale_while_revalidate = "200ms",
    name = "attribute.refreshed_at_shutdown"
)]
async fn refreshed_at_shutdown(id: u64) -> u64 {
    SHUTDOWN_LOADS.fetch_add(1, SeqCst);
    id
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_refresh_dropped_unpolled_by_its_runtime_does_not_strand_the_key() {
    let first = current_thread_runtime();
    first.block_on(async {
        assert_eq!(refreshed_at_shutdown(3).await, 3);
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Stale: answered at once, with a refresh spawned on this runtime.
        assert_eq!(refreshed_at_shutdown(3).await, 3);
    });
    // The runtime shuts down with the refresh's task never polled.
    drop(first);
    assert_eq!(SHUTDOWN_LOADS.load(SeqCst), 1, "the refresh never ran");
    current_thread_runtime().block_on(async {
        // Past the stale window: the next call loads, and must not wait on the
        // flight the dropped refresh had registered.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let next = tokio::time::timeout(Duration::from_secs(10), refreshed_at_shutdown(3)).await;
        assert_eq!(next.expect("the next call was not left waiting"), 3);
    });
    assert_eq!(SHUTDOWN_LOADS.load(SeqCst), 2);
}

mod first {
    #[stratacache::cached(local)]
    pub async fn same_name(id: u64) -> u64 {
        id + 1
    }
}
mod second {
    #[stratacache::cached(local)]
    pub async fn same_name(id: u64) -> u64 {
        id + 2
    }
}

struct Users;
struct Orders;

impl Users {
    #[cached(local)]
    async fn get(&self, id: u64) -> String {
        format!("user {id}")
    }
}

impl Orders {
    #[cached(local)]
    async fn get(&self, id: u64) -> String {
        format!("order {id}")
    }
}

#[tokio::test]
async fn same_named_functions_and_methods_get_distinct_caches() {
    assert_eq!(first::same_name(1).await, 2);
    assert_eq!(second::same_name(1).await, 3);
    assert_eq!(Users.get(1).await, "user 1");
    assert_eq!(Orders.get(1).await, "order 1");
    assert_eq!(Users.get(1).await, "user 1");
    let stats = stratacache::stats();
    for name in [
        "attribute::first::same_name",
        "attribute::second::same_name",
        "attribute::Users::get",
        "attribute::Orders::get",
    ] {
        assert!(
            stats.cache(name).is_some(),
            "no cache named {name}: {stats}"
        );
    }
    assert_eq!(stats.cache("attribute::Users::get").unwrap().l1_hits, 1);
}

#[derive(Clone)]
struct Repo {
    loads: Arc<AtomicUsize>,
    prefix: String,
}

impl Repo {
    #[cached(ttl = "1m", skip(db), name = "repo.find")]
    async fn find(&self, name: &str, db: &str) -> Result<String, std::fmt::Error> {
        self.loads.fetch_add(1, SeqCst);
        Ok(format!("{}{name}@{db}", self.prefix))
    }

    #[cached(ttl = "100ms", stale_while_revalidate = "1m", name = "repo.find_fresh")]
    async fn find_fresh(&self, name: &str) -> String {
        self.loads.fetch_add(1, SeqCst);
        format!("{}{name} #{}", self.prefix, self.loads.load(SeqCst))
    }

    #[cached(ttl = "1m", name = "repo.arc")]
    async fn by_arc(self: Arc<Self>, id: u64) -> u64 {
        self.loads.fetch_add(1, SeqCst);
        id
    }
}

#[tokio::test]
async fn methods_borrowed_arguments_and_skip() {
    let repo = Repo {
        loads: Arc::default(),
        prefix: "p:".into(),
    };
    assert_eq!(repo.find("ann", "db1").await.unwrap(), "p:ann@db1");
    assert_eq!(
        repo.find("ann", "db2").await.unwrap(),
        "p:ann@db1",
        "`db` is skipped: same key"
    );
    assert_eq!(repo.find("bob", "db1").await.unwrap(), "p:bob@db1");
    assert_eq!(repo.loads.load(SeqCst), 2);

    invalidate!(repo.find("ann", "any db")).await.unwrap();
    repo.find("ann", "db1").await.unwrap();
    repo.find("bob", "db1").await.unwrap();
    assert_eq!(
        repo.loads.load(SeqCst),
        3,
        "invalidate! drops exactly one entry"
    );

    clear!(Repo::find).await.unwrap();
    repo.find("ann", "db1").await.unwrap();
    repo.find("bob", "db1").await.unwrap();
    assert_eq!(
        repo.loads.load(SeqCst),
        5,
        "clear! drops every entry of the function"
    );

    let shared = Arc::new(Repo {
        loads: Arc::default(),
        prefix: String::new(),
    });
    assert_eq!(shared.clone().by_arc(4).await, 4);
    assert_eq!(shared.clone().by_arc(4).await, 4);
    assert_eq!(shared.loads.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_on_a_borrowing_method() {
    let repo = Repo {
        loads: Arc::default(),
        prefix: "p:".into(),
    };
    assert_eq!(repo.find_fresh("ann").await, "p:ann #1");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        repo.find_fresh("ann").await,
        "p:ann #1",
        "stale value served at once"
    );
    let mut refreshed = String::new();
    for _ in 0..100 {
        refreshed = repo.find_fresh("ann").await;
        if refreshed != "p:ann #1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        refreshed, "p:ann #2",
        "the refresh ran on a clone of the repo"
    );
}

static TEMPLATE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(key = "{tenant}/{id}", tags = ["tenant:{tenant}"])]
async fn by_template(tenant: &str, id: u32, trace: impl std::fmt::Debug) -> String {
    TEMPLATE_LOADS.fetch_add(1, SeqCst);
    format!("{tenant}/{id} {trace:?}")
}

#[tokio::test]
async fn key_templates_and_free_function_invalidation() {
    assert_eq!(by_template("acme", 1, "first").await, "acme/1 \"first\"");
    assert_eq!(
        by_template("acme", 1, 42).await,
        "acme/1 \"first\"",
        "the template is the key"
    );
    invalidate!(by_template("acme", 1, ())).await.unwrap();
    assert_eq!(by_template("acme", 1, "second").await, "acme/1 \"second\"");
    invalidate_tag!("tenant:{}", "acme").await.unwrap();
    assert_eq!(by_template("acme", 1, "third").await, "acme/1 \"third\"");
    assert_eq!(TEMPLATE_LOADS.load(SeqCst), 3);
}

#[derive(Debug)]
struct AppError(String);
impl From<std::num::ParseIntError> for AppError {
    fn from(e: std::num::ParseIntError) -> Self {
        AppError(e.to_string())
    }
}

#[cached(local)]
async fn parse(text: &str) -> Result<u32, AppError> {
    if text.is_empty() {
        return Err(AppError("empty".into()));
    }
    Ok(text.parse::<u32>()?)
}

#[tokio::test]
async fn question_mark_and_early_return_keep_their_meaning() {
    assert_eq!(parse("12").await.unwrap(), 12);
    assert!(parse("x").await.unwrap_err().0.contains("invalid digit"));
    assert_eq!(parse("").await.unwrap_err().0, "empty");
}

static EXPIRING_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "50ms", capacity = 100)]
async fn expiring(id: u64) -> u64 {
    EXPIRING_LOADS.fetch_add(1, SeqCst);
    id
}

#[tokio::test]
async fn ttl_and_capacity_bound_what_is_held() {
    expiring(1).await;
    expiring(1).await;
    assert_eq!(EXPIRING_LOADS.load(SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    expiring(1).await;
    assert_eq!(EXPIRING_LOADS.load(SeqCst), 2, "an expired entry reloads");
    for id in 0..1_000 {
        expiring(id).await;
    }
    let entries = stratacache::stats()
        .cache("attribute::expiring")
        .unwrap()
        .entries;
    assert!(entries <= 150, "capacity 100 holds {entries} entries");
}
