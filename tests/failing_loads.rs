//! A failing load runs once for all the callers waiting on it, whatever its error
//! type: `Clone` errors are cloned, `anyhow::Error`, boxed errors, `io::Error` and
//! types implementing `ShareableError` are copied with the same message and sources.

mod support;

use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use stratacache::{cached, ShareableError, SharedError};

const CALLERS: usize = 10;

/// Runs `CALLERS` concurrent calls of `call` (polled together in one task) and
/// returns their outcomes.
async fn concurrently<F: std::future::Future>(call: impl Fn() -> F) -> Vec<F::Output> {
    futures_util::future::join_all((0..CALLERS).map(|_| call())).await
}

fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
    std::iter::successors(Some(error), |e| (*e).source())
        .map(ToString::to_string)
        .collect()
}

static ANYHOW_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn anyhow_failing(id: u64) -> anyhow::Result<String> {
    ANYHOW_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "db refused");
    Err(anyhow::Error::new(refused).context(format!("loading item {id}")))
}

#[tokio::test]
async fn ten_callers_of_a_failing_anyhow_load_make_one_load_and_see_one_error() {
    let outcomes = concurrently(|| anyhow_failing(1)).await;
    assert_eq!(ANYHOW_LOADS.load(SeqCst), 1, "one load for all the waiters");
    for outcome in outcomes {
        let error = outcome.expect_err("the load failed");
        assert_eq!(format!("{error:#}"), "loading item 1: db refused");
        assert_eq!(chain(error.as_ref()), ["loading item 1", "db refused"]);
    }
    let stats = stratacache::stats();
    let cache = stats.cache("failing_loads::anyhow_failing").unwrap();
    assert_eq!((cache.loads, cache.load_errors), (1, 1));
}

static BOXED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn boxed_failing(id: u64) -> Result<String, Box<dyn StdError + Send + Sync>> {
    BOXED_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Err(format!("no row {id}").into())
}

#[tokio::test]
async fn ten_callers_of_a_failing_boxed_error_load_make_one_load() {
    let outcomes = concurrently(|| boxed_failing(2)).await;
    assert_eq!(BOXED_LOADS.load(SeqCst), 1);
    for outcome in outcomes {
        assert_eq!(outcome.unwrap_err().to_string(), "no row 2");
    }
}

static IO_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn io_failing(id: u64) -> std::io::Result<String> {
    IO_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("read {id} timed out"),
    ))
}

#[tokio::test]
async fn ten_callers_of_a_failing_io_load_make_one_load_and_keep_the_kind() {
    let outcomes = concurrently(|| io_failing(3)).await;
    assert_eq!(IO_LOADS.load(SeqCst), 1);
    for outcome in outcomes {
        let error = outcome.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(error.to_string(), "read 3 timed out");
    }
}

/// A service error that cannot be `Clone` (it holds a non-`Clone` source), opting in.
#[derive(Debug)]
enum RepoError {
    Db(Box<dyn StdError + Send + Sync>),
    Copied(SharedError),
}

impl std::fmt::Display for RepoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoError::Db(error) => write!(f, "database: {error}"),
            RepoError::Copied(error) => write!(f, "{error}"),
        }
    }
}

impl ShareableError for RepoError {
    fn share(&self) -> Self {
        match self {
            RepoError::Db(_) => RepoError::Copied(SharedError::capture(&DisplayOnly(self))),
            RepoError::Copied(error) => RepoError::Copied(error.clone()),
        }
    }
}

#[derive(Debug)]
struct DisplayOnly<'a>(&'a RepoError);
impl std::fmt::Display for DisplayOnly<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl StdError for DisplayOnly<'_> {}

static OPTED_IN_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn opted_in_failing(id: u64) -> Result<String, RepoError> {
    OPTED_IN_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Err(RepoError::Db(format!("pool closed at {id}").into()))
}

#[tokio::test]
async fn an_error_type_that_opts_in_is_shared_too() {
    let outcomes = concurrently(|| opted_in_failing(4)).await;
    assert_eq!(OPTED_IN_LOADS.load(SeqCst), 1);
    for outcome in outcomes {
        assert_eq!(
            outcome.unwrap_err().to_string(),
            "database: pool closed at 4"
        );
    }
}

static AFTER_FAILURE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn fails_once(id: u64) -> anyhow::Result<u64> {
    if AFTER_FAILURE_LOADS.fetch_add(1, SeqCst) == 0 {
        anyhow::bail!("first load of {id} fails");
    }
    Ok(id)
}

#[tokio::test]
async fn a_shared_failure_is_not_cached() {
    assert!(fails_once(5).await.is_err());
    assert_eq!(fails_once(5).await.unwrap(), 5, "the next call loads again");
    assert_eq!(AFTER_FAILURE_LOADS.load(SeqCst), 2);
}

/// A tag argument whose `Display` panics the first time it is formatted.
struct PanicsOnceInATag;

static TAG_FORMATS: AtomicUsize = AtomicUsize::new(0);

impl std::fmt::Display for PanicsOnceInATag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if TAG_FORMATS.fetch_add(1, SeqCst) == 0 {
            panic!("the tag's Display panicked");
        }
        f.write_str("ok")
    }
}

#[cached(ttl = "1m", tags = ["kind:{kind}"], skip(kind))]
async fn tagged_by_a_panicking_display(id: u64, kind: PanicsOnceInATag) -> u64 {
    let _ = kind;
    id
}

#[tokio::test]
async fn a_panic_while_making_the_tags_does_not_strand_the_key() {
    let first = tokio::spawn(tagged_by_a_panicking_display(9, PanicsOnceInATag)).await;
    assert!(first.expect_err("the first call panicked").is_panic());
    // The panic came before the loader ran: the key's flight must not be left for
    // the next call to wait on forever.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        tagged_by_a_panicking_display(9, PanicsOnceInATag),
    )
    .await;
    assert_eq!(next.expect("the next call was not left waiting"), 9);
}

static ASYNC_SELF_CALLS: AtomicUsize = AtomicUsize::new(0);

/// An `async fn` whose loader awaits the very key it is loading.
#[cached(ttl = "1m", local, name = "failing.async_selfish")]
async fn async_selfish(n: u64) -> u64 {
    ASYNC_SELF_CALLS.fetch_add(1, SeqCst);
    if n == 0 {
        0
    } else {
        Box::pin(async_selfish(n)).await + 1
    }
}

#[test]
fn an_async_loader_awaiting_its_own_key_panics_instead_of_waiting_forever() {
    // Before, the inner call followed the outer call's flight, which could land only
    // once the loader awaiting the inner call returned: no answer ever came.
    let message = support::panic_message_within(Duration::from_secs(30), || {
        stratacache::block_on(async_selfish(1))
    });
    assert!(
        message.contains("called its own function with the key it is loading"),
        "{message}"
    );
    assert_eq!(ASYNC_SELF_CALLS.load(SeqCst), 1, "the loader ran once");
    assert_eq!(stratacache::block_on(async_selfish(0)), 0);
}
