//! `init` and `Config`, in a process of their own (`init` is process-wide).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use redis::Commands;
use stratacache::{cached, Config, Error};
use support::RedisServer;

static LOADS: AtomicUsize = AtomicUsize::new(0);
static TAGGED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", name = "setup.get")]
async fn get(id: u64) -> u64 {
    LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(ttl = "1m", name = "setup.tagged", tags = ["setup:{id}"])]
async fn tagged(id: u64) -> u64 {
    TAGGED_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn config_reads_the_environment() {
    std::env::set_var("STRATACACHE_REDIS_URL", "redis://127.0.0.1:1");
    std::env::set_var("STRATACACHE_NAMESPACE", "from-env");
    let config = Config::from_env();
    assert_eq!(config.redis_url.as_deref(), Some("redis://127.0.0.1:1"));
    assert_eq!(config.namespace, "from-env");
    assert!(!config.cluster, "one URL is a standalone server by default");
    std::env::set_var("STRATACACHE_REDIS_CLUSTER", "True");
    assert!(Config::from_env().cluster, "STRATACACHE_REDIS_CLUSTER=True");
    std::env::remove_var("STRATACACHE_REDIS_CLUSTER");
    std::env::remove_var("STRATACACHE_REDIS_URL");
    assert_eq!(
        Config::from_env().redis_url,
        None,
        "unset means in-process only"
    );
}

#[test]
fn init_is_checked_once_and_calls_work_before_and_after_it() {
    let server = RedisServer::start();
    let config = || Config::new().redis_url(server.url()).namespace("setup");

    // Outside a runtime: refused, and nothing is half set up.
    assert!(matches!(stratacache::init(config()), Err(Error::NoRuntime)));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        assert_eq!(get(1).await, 1, "before init: in-process caching");
        assert_eq!(get(1).await, 1);
        assert_eq!(LOADS.load(SeqCst), 1);
        assert_eq!(tagged(1).await + tagged(1).await, 2);
        assert_eq!(TAGGED_LOADS.load(SeqCst), 1);

        assert!(matches!(
            stratacache::init(Config::new().redis_url("not a url")),
            Err(Error::Config(_))
        ));
        for zero in [
            config().resync_interval(Duration::ZERO),
            config().l2_timeout(Duration::ZERO),
            config().tombstone_ttl(Duration::from_millis(1)),
        ] {
            assert!(
                matches!(stratacache::init(zero), Err(Error::Config(_))),
                "a zero interval is refused, not a backplane that ends at its start, \
                 nor a tombstone whose half-life leaves no write-back"
            );
        }
        stratacache::init(Config::new()).expect("no URL: a no-op");
        stratacache::init(config()).expect("init");
        assert!(matches!(
            stratacache::init(config()),
            Err(Error::AlreadyInitialized)
        ));

        assert_eq!(
            get(1).await,
            1,
            "a value cached before init is still served"
        );
        assert_eq!(LOADS.load(SeqCst), 1);
        // `tagged`'s tag had no record of a Redis version, so a missed invalidation
        // of it could not be caught: init dropped its value. (Checked before any load
        // after init creates a counter in Redis, whose first resync could drop it too.)
        assert_eq!(tagged(1).await, 1);
        assert_eq!(
            TAGGED_LOADS.load(SeqCst),
            2,
            "a value kept under a named tag before init is dropped"
        );
        assert_eq!(get(2).await, 2);
    });
    let keys: Vec<String> = server.connection().keys("setup:setup.get:v0:*").unwrap();
    assert_eq!(keys.len(), 1, "a load after init is written to Redis");
}
