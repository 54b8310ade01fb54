//! A stratacache process driven line by line on stdin, used by the multi-process
//! tests (tests/redis_*.rs) and handy for poking at a cache by hand:
//!
//! ```text
//! cargo run --example cache_worker -- redis://127.0.0.1:6379 demo
//! get 7                 -> {"value":"user 7 loaded by pid ..","loads":1,...}
//! invalidate_tag user:7 -> ok
//! ```
//!
//! Arguments: `REDIS_URL NAMESPACE [MAX_PAYLOAD_BYTES]`; the environment may set
//! `WORKER_OUTBOX_CAPACITY`, `WORKER_MAX_UNSYNCED_MS`, `WORKER_TOMBSTONE_MS`,
//! `WORKER_RESYNC_MS` (500 ms unless set), `WORKER_L2_TIMEOUT_MS` (200 ms unless
//! set), `WORKER_REDIS_CA_FILE` (a CA for
//! `rediss://`), `WORKER_INIT_IN_ITS_OWN_RUNTIME` (`init` runs in a runtime dropped
//! before the first command) and `WORKER_DEAF` (no backplane: the worker hears no other
//! process's invalidation), and what `Config::from_env` reads (`STRATACACHE_SECRET`,
//! `STRATACACHE_ENCRYPT`). Commands: `ping`, `text ID` (a 200 kB compressible value),
//! `sliding ID` (1 s ttl, sliding), `local ID` (a `local` cache, tagged as `get`'s),
//! `sync ID` (a sync function, tagged as `get`'s), `get ID`, `small ID` (a 16-entry
//! L1), `document ID` (a value postcard cannot decode: a tagged enum holding a
//! `serde_json::Value`), `profile ID` (one whose `Serialize` skips fields),
//! `search city=N` / `search age=N` / `search city=N,age=M` (a key that skips fields),
//! `big ID` (a 4 KiB value), `fragile ID` (fail-safe; fails after `down on`), `row ID`
//! and `refresh_row ID` (an `Option`, `None` after `gone on`), `grouped ID` (tag added
//! by the loader), `swr ID` (stale-while-revalidate; 2 s loads after `slow on`),
//! `put_while_paused ID` (below), `locked ID` (fleet-wide lock), `ahead ID`
//! (refresh-ahead), `invalidate_tag TAG`, `invalidate ID`, `invalidate_locked ID`,
//! `brief ID`, `put_brief ID VALUE` and `invalidate_brief ID` (as `locked`, with a
//! 300 ms ttl), `put ID VALUE`, `refresh ID`, `peek ID` (on `get`'s cache),
//! `batch FROM TO` (ids `FROM..TO` through a batch function sharing `get`'s cache),
//! `grouped_batch ID,ID..` (a batch function sharing `grouped`'s cache),
//! `grouped_batch_then_invalidate ID,ID.. TAG` (its background write-back runs after
//! the invalidation), `slow_get ID` (300 ms loads), `put_during_load ID VALUE`,
//! `put_during_batch_load ID VALUE` (a batch of ID and ID+1) and
//! `invalidate_during_load ID` (on `slow_get`'s cache, while a load of the entry is in
//! flight), `read_during_invalidate_tag ID` and `read_during_invalidate ID` (`get ID`
//! between the invalidation of `user:ID`, or of the entry, and its delivery to Redis;
//! answers `get ID` after it), `cancel_locked ID` (a `locked ID` load cancelled
//! mid-load), `flush_invalidations_within MS`, `dropped_invalidate_tag ID`,
//! `dropped_invalidate ID` and `dropped_put ID` (their futures dropped unpolled),
//! `concurrent_gets FROM TO` (`get` of ids `FROM..TO` at once), `clear`, `stats`.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stratacache::{cached, clear, invalidate, peek, put, refresh, Config};

static LOADS: AtomicU64 = AtomicU64::new(0);
/// `down on` makes `fragile` fail, as a dead database would.
static DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(ttl = "200ms", stale_if_error = "1h", name = "worker.fragile")]
async fn fragile(id: u64) -> Result<String, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    if DOWN.load(Ordering::SeqCst) {
        return Err(format!("database down while loading {id}"));
    }
    Ok(format!("fragile {id} loaded by pid {}", std::process::id()))
}

/// `gone on` makes `row` find nothing, as after a row's deletion.
static GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(ttl = "60s", name = "worker.row")]
async fn row(id: u64) -> Option<String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let found = !GONE.load(Ordering::SeqCst);
    found.then(|| format!("row {id} loaded by pid {}", std::process::id()))
}

#[cached(ttl = "60s", stale_while_revalidate = "30s", tags = ["user:{id}"], name = "worker.user")]
async fn get_user(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("user {id} loaded by pid {}", std::process::id())
}

/// In-process only, under the same tag as `get_user`.
#[cached(ttl = "60s", local, tags = ["user:{id}"], name = "worker.local")]
async fn local_user(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("local user {id} loaded by pid {}", std::process::id())
}

/// A sync function (in-process only), under the same tag as `get_user`.
#[cached(ttl = "60s", tags = ["user:{id}"], name = "worker.sync")]
fn sync_user(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("sync user {id} loaded by pid {}", std::process::id())
}

/// The keys of the last batch load.
static BATCH_LOADED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// Shares `get_user`'s entries (same name, key and value types, same tags).
#[cached(ttl = "60s", batch, tags = ["user:{ids}"], name = "worker.user")]
async fn get_users(ids: &[u64]) -> HashMap<u64, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    *BATCH_LOADED.lock().unwrap() = ids.to_vec();
    let pid = std::process::id();
    ids.iter()
        .map(|id| (*id, format!("user {id} loaded by pid {pid}")))
        .collect()
}

/// A 16-entry L1, so a worker can push entries out of L1 and read them back from Redis.
#[cached(ttl = "60s", capacity = 16, name = "worker.small")]
async fn small(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("small {id}")
}

/// A value postcard cannot decode: an internally tagged enum holding a
/// `serde_json::Value` (their `Deserialize` asks the input what it holds).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind")]
enum Document {
    Profile { id: u64, extra: serde_json::Value },
}

#[cached(ttl = "60s", name = "worker.document")]
async fn document(id: u64) -> Document {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Document::Profile {
        id,
        extra: serde_json::json!({ "loaded_by": std::process::id(), "scores": [1, 2.5] }),
    }
}

/// A value whose `Serialize` leaves fields out (`skip_serializing_if`): postcard,
/// which reads fields by position, cannot read it back.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Profile {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    badges: Vec<String>,
    loaded_by: u32,
}

#[cached(ttl = "60s", name = "worker.profile")]
async fn profile(id: u64) -> Profile {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Profile {
        id,
        nickname: None,
        badges: Vec::new(),
        loaded_by: std::process::id(),
    }
}

/// A search filter as an API takes it: the fields it was not given are left out of
/// its serialization, so postcard alone would give `{city: 3}` and `{age: 3}` the
/// same bytes, and one Redis entry.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<u64>,
}

#[cached(ttl = "60s", name = "worker.search")]
async fn search(filter: Filter) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("city {:?} age {:?}", filter.city, filter.age)
}

/// `slow on` makes `revalidated` take two seconds to load.
static SLOW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cached(ttl = "200ms", stale_while_revalidate = "1h", name = "worker.swr")]
async fn revalidated(id: u64) -> String {
    swr_load(id).await
}

async fn swr_load(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    if SLOW.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    format!("swr {id} loaded by pid {}", std::process::id())
}

/// As `revalidated`, with a ttl shorter than a pause of Redis within the timeout.
#[cached(ttl = "40ms", stale_while_revalidate = "1h", name = "worker.swr_put")]
async fn quick_swr(id: u64) -> String {
    swr_load(id).await
}

/// `put_while_paused ID`: a `put!` whose Redis round trips wait behind a pause of
/// Redis (`CLIENT PAUSE`, within the timeout) while its value goes stale in L1; a
/// read then starts a refresh whose read of Redis queues behind the put's first
/// command, and finds the value the put replaces, stale. Answers the read during the
/// refresh and the read once the put returned.
async fn put_while_paused(url: &str, id: u64) -> String {
    quick_swr(id).await;
    // Past the ttl, in L1 and in Redis; the refreshes from now on outlast the reads.
    tokio::time::sleep(Duration::from_millis(100)).await;
    SLOW.store(true, Ordering::SeqCst);
    let client = redis::Client::open(url).expect("the worker's Redis URL");
    let mut pauser = client.get_multiplexed_async_connection().await.unwrap();
    let mut pause = redis::cmd("CLIENT");
    pause.arg("PAUSE").arg(150).arg("ALL");
    pause.query_async::<()>(&mut pauser).await.unwrap();
    let put = tokio::spawn(put!(quick_swr(id), "written by put".to_owned()));
    tokio::time::sleep(Duration::from_millis(70)).await;
    let during = quick_swr(id).await;
    let written = put.await.unwrap();
    let after = quick_swr(id).await;
    SLOW.store(false, Ordering::SeqCst);
    match written {
        Ok(()) => answer(&format!("{during} / {after}"), "worker.swr_put"),
        Err(error) => format!("err {error}"),
    }
}

/// One load per key for the whole fleet; 300 ms loads (5 s after `slow on`).
#[cached(ttl = "60s", lock, name = "worker.locked")]
async fn locked(id: u64) -> String {
    locked_load("locked", id).await
}

/// As `locked`, with entries that end long before a slow load does.
#[cached(ttl = "300ms", lock, name = "worker.brief")]
async fn brief(id: u64) -> String {
    locked_load("brief", id).await
}

async fn locked_load(function: &str, id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let load_time = if SLOW.load(Ordering::SeqCst) {
        5_000
    } else {
        300
    };
    tokio::time::sleep(Duration::from_millis(load_time)).await;
    format!("{function} {id} loaded by pid {}", std::process::id())
}

/// Refreshed ahead, a quarter into its 2 s ttl.
#[cached(ttl = "2s", refresh_ahead = 0.25, name = "worker.ahead")]
async fn ahead(id: u64) -> String {
    let load = LOADS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("ahead {id} load {load}")
}

/// Tags itself with a group known only once loaded.
#[cached(ttl = "60s", name = "worker.grouped")]
async fn grouped(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    stratacache::this_load::add_tag(format!("group:{}", id % 2));
    format!("grouped {id} loaded by pid {}", std::process::id())
}

/// Shares `grouped`'s entries; tags the values it loads with their groups too.
#[cached(ttl = "60s", batch, name = "worker.grouped")]
async fn grouped_many(ids: &[u64]) -> HashMap<u64, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    *BATCH_LOADED.lock().unwrap() = ids.to_vec();
    for group in ids
        .iter()
        .map(|id| id % 2)
        .collect::<std::collections::BTreeSet<_>>()
    {
        stratacache::this_load::add_tag(format!("group:{group}"));
    }
    let pid = std::process::id();
    ids.iter()
        .map(|id| (*id, format!("grouped {id} loaded by pid {pid}")))
        .collect()
}

/// 300 ms loads, so that a test can act while one is in flight.
#[cached(ttl = "60s", name = "worker.slow")]
async fn slow_user(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    format!("slow {id} loaded by pid {}", std::process::id())
}

/// Shares `slow_user`'s entries; 300 ms loads too.
#[cached(ttl = "60s", batch, name = "worker.slow")]
async fn slow_users(ids: &[u64]) -> HashMap<u64, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = std::process::id();
    ids.iter()
        .map(|id| (*id, format!("slow {id} loaded by pid {pid}")))
        .collect()
}

#[cached(ttl = "60s", name = "worker.big")]
async fn big(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("{id}:{}", "x".repeat(4096))
}

/// Sliding expiration: fresh for 1 s after its last extension.
#[cached(ttl = "1s", sliding, name = "worker.sliding")]
async fn sliding(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("sliding {id} loaded by pid {}", std::process::id())
}

/// 200 kB of text that compresses well, as JSON documents and logs do.
#[cached(ttl = "60s", name = "worker.text")]
async fn text(id: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let mut text: String = (0..6_000)
        .map(|line| format!("{id:>6} line {line:>5}: the quick brown fox\n"))
        .collect();
    text.truncate(200_000);
    text
}

fn answer(value: &str, cache: &str) -> String {
    let stats = stratacache::stats();
    let counters = stats.cache(cache);
    serde_json::json!({
        "value": value,
        "loads": LOADS.load(Ordering::SeqCst),
        "l1_hits": counters.map_or(0, |c| c.l1_hits),
        "l2_hits": counters.map_or(0, |c| c.l2_hits),
        "l2_errors": counters.map_or(0, |c| c.l2_errors),
        "oversized": counters.map_or(0, |c| c.oversized),
        "schema_mismatches": counters.map_or(0, |c| c.schema_mismatches),
        "rejected": counters.map_or(0, |c| c.rejected),
        "unauthenticated_messages": stats.unauthenticated_messages,
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, rest @ ..] = args.as_slice() else {
        eprintln!("usage: cache_worker REDIS_URL NAMESPACE [MAX_PAYLOAD_BYTES]");
        std::process::exit(2);
    };
    let mut config = Config::from_env()
        .redis_url(url)
        .namespace(namespace)
        .l2_timeout(Duration::from_millis(200))
        .resync_interval(Duration::from_millis(500))
        .breaker(3, Duration::from_millis(200))
        .lock(Duration::from_secs(2), Duration::from_secs(4));
    if let Some(max) = rest.first() {
        config = config.max_payload(max.parse().expect("MAX_PAYLOAD_BYTES is a number"));
    }
    if let Some(ms) = env_number("WORKER_L2_TIMEOUT_MS") {
        config = config.l2_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = env_number("WORKER_RESYNC_MS") {
        config = config.resync_interval(Duration::from_millis(ms));
    }
    if let Some(capacity) = env_number("WORKER_OUTBOX_CAPACITY") {
        config = config.outbox_capacity(capacity as usize);
    }
    if let Some(ms) = env_number("WORKER_TOMBSTONE_MS") {
        config = config.tombstone_ttl(Duration::from_millis(ms));
    }
    if let Some(ms) = env_number("WORKER_MAX_UNSYNCED_MS") {
        config = config.max_unsynced(Duration::from_millis(ms));
    }
    if let Ok(path) = std::env::var("WORKER_REDIS_CA_FILE") {
        config = config.tls_root_cert(std::fs::read(path).expect("read WORKER_REDIS_CA_FILE"));
    }
    if std::env::var_os("WORKER_DEAF").is_some() {
        config = config.backplane(false);
    }
    if std::env::var_os("WORKER_INIT_IN_ITS_OWN_RUNTIME").is_some() {
        // As a test might: `init` in a runtime that ends before the calls are made.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            runtime.block_on(async { stratacache::init(config).expect("init") });
        })
        .join()
        .expect("init's thread");
    } else {
        stratacache::init(config).expect("init");
    }

    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        let (command, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply = match command {
            "ping" => "pong".to_owned(),
            "get" => answer(&get_user(argument.parse().unwrap()).await, "worker.user"),
            "local" => answer(&local_user(argument.parse().unwrap()).await, "worker.local"),
            "sync" => answer(&sync_user(argument.parse().unwrap()), "worker.sync"),
            "small" => answer(&small(argument.parse().unwrap()).await, "worker.small"),
            "search" => {
                let mut filter = Filter {
                    city: None,
                    age: None,
                };
                for given in argument.split(',') {
                    let (field, value) = given.split_once('=').unwrap();
                    let value = Some(value.parse().unwrap());
                    match field {
                        "city" => filter.city = value,
                        _ => filter.age = value,
                    }
                }
                answer(&search(filter).await, "worker.search")
            }
            "profile" => {
                let read = profile(argument.parse().unwrap()).await;
                answer(&serde_json::to_string(&read).unwrap(), "worker.profile")
            }
            "document" => {
                let read = document(argument.parse().unwrap()).await;
                answer(&serde_json::to_string(&read).unwrap(), "worker.document")
            }
            "sliding" => answer(&sliding(argument.parse().unwrap()).await, "worker.sliding"),
            "text" => {
                let value = text(argument.parse().unwrap()).await;
                let summary = format!("{} bytes, hash {:016x}", value.len(), fnv(&value));
                answer(&summary, "worker.text")
            }
            "grouped" => answer(&grouped(argument.parse().unwrap()).await, "worker.grouped"),
            "swr" => answer(&revalidated(argument.parse().unwrap()).await, "worker.swr"),
            "put_while_paused" => put_while_paused(url, argument.parse().unwrap()).await,
            "locked" => answer(&locked(argument.parse().unwrap()).await, "worker.locked"),
            "ahead" => answer(&ahead(argument.parse().unwrap()).await, "worker.ahead"),
            "slow" => {
                SLOW.store(argument == "on", Ordering::SeqCst);
                "ok".to_owned()
            }
            "fragile" => match fragile(argument.parse().unwrap()).await {
                Ok(value) => answer(&value, "worker.fragile"),
                Err(error) => answer(&format!("error: {error}"), "worker.fragile"),
            },
            "down" => {
                DOWN.store(argument == "on", Ordering::SeqCst);
                "ok".to_owned()
            }
            "row" => {
                let found = row(argument.parse().unwrap()).await;
                answer(found.as_deref().unwrap_or("<none>"), "worker.row")
            }
            "refresh_row" => {
                let found = refresh!(row(argument.parse().unwrap())).await;
                answer(found.as_deref().unwrap_or("<none>"), "worker.row")
            }
            "gone" => {
                GONE.store(argument == "on", Ordering::SeqCst);
                "ok".to_owned()
            }
            "big" => {
                let value = big(argument.parse().unwrap()).await;
                answer(&value[..10], "worker.big")
            }
            "invalidate_tag" => result(stratacache::invalidate_tag(argument).await),
            "invalidate" => result(invalidate!(get_user(argument.parse().unwrap())).await),
            "invalidate_locked" => result(invalidate!(locked(argument.parse().unwrap())).await),
            "brief" => answer(&brief(argument.parse().unwrap()).await, "worker.brief"),
            "invalidate_brief" => result(invalidate!(brief(argument.parse().unwrap())).await),
            "put_brief" => {
                let (id, value) = argument.split_once(' ').expect("put_brief ID VALUE");
                result(put!(brief(id.parse().unwrap()), value.to_owned()).await)
            }
            "put" => {
                let (id, value) = argument.split_once(' ').expect("put ID VALUE");
                result(put!(get_user(id.parse().unwrap()), value.to_owned()).await)
            }
            "refresh" => answer(
                &refresh!(get_user(argument.parse().unwrap())).await,
                "worker.user",
            ),
            "peek" => {
                let peeked = peek!(get_user(argument.parse().unwrap())).await;
                answer(peeked.as_deref().unwrap_or("<none>"), "worker.user")
            }
            "batch" => {
                let (from, to) = argument.split_once(' ').expect("batch FROM TO");
                let ids: Vec<u64> = (from.parse().unwrap()..to.parse().unwrap()).collect();
                let values = get_users(&ids).await;
                answer(&batch_summary(values.len()), "worker.user")
            }
            "grouped_batch" => {
                let ids: Vec<u64> = argument.split(',').map(|id| id.parse().unwrap()).collect();
                let values = grouped_many(&ids).await;
                answer(&batch_summary(values.len()), "worker.grouped")
            }
            "grouped_batch_then_invalidate" => {
                let (ids, tag) = argument.split_once(' ').expect("IDS TAG");
                let ids: Vec<u64> = ids.split(',').map(|id| id.parse().unwrap()).collect();
                let summary = batch_then_invalidate(ids, tag.to_owned()).await;
                answer(&summary, "worker.grouped")
            }
            "batch_put" => {
                // A batch whose Redis read is held up (the test freezes Redis) while a
                // put! of one of its keys lands here.
                let numbers: Vec<&str> = argument.split(' ').collect();
                let [from, to, id, value] = numbers[..] else {
                    panic!("batch_put FROM TO ID VALUE")
                };
                let ids: Vec<u64> = (from.parse().unwrap()..to.parse().unwrap()).collect();
                let id: u64 = id.parse().unwrap();
                let batch = tokio::spawn(async move { get_users(&ids).await.len() });
                tokio::time::sleep(Duration::from_millis(30)).await;
                let put = put!(get_user(id), value.to_owned());
                let (answered, _) = tokio::join!(batch, put);
                let summary = batch_summary(answered.unwrap());
                let after = get_user(id).await;
                answer(&format!("{summary}; then {id} is {after}"), "worker.user")
            }
            "slow_get" => answer(&slow_user(argument.parse().unwrap()).await, "worker.slow"),
            "put_during_load" | "put_during_batch_load" | "invalidate_during_load" => {
                // A load of `slow_user` (or `slow_users`, for this key and the next) in
                // flight while this process writes its entry.
                let (id, value) = argument.split_once(' ').unwrap_or((argument, ""));
                let id: u64 = id.parse().unwrap();
                let loads_before = LOADS.load(Ordering::SeqCst);
                let load = if command == "put_during_batch_load" {
                    tokio::spawn(
                        async move { slow_users(&[id, id + 1]).await.remove(&id).unwrap() },
                    )
                } else {
                    tokio::spawn(slow_user(id))
                };
                until_a_load_starts(loads_before).await;
                let written = if command.starts_with("put") {
                    put!(slow_user(id), value.to_owned()).await
                } else {
                    invalidate!(slow_user(id)).await
                };
                let loaded = load.await.unwrap();
                match written {
                    Ok(()) => answer(&loaded, "worker.slow"),
                    Err(error) => format!("err {error}"),
                }
            }
            "read_during_invalidate_tag" | "read_during_invalidate" => {
                // Applied here at once, its future not yet polled: the read that follows
                // reaches Redis before the invalidation does.
                let id: u64 = argument.parse().unwrap();
                let invalidation = if command == "read_during_invalidate" {
                    Box::pin(invalidate!(get_user(id)))
                        as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
                } else {
                    Box::pin(stratacache::invalidate_tag(&format!("user:{id}")))
                };
                let _during = get_user(id).await;
                match invalidation.await {
                    Ok(()) => answer(&get_user(id).await, "worker.user"),
                    Err(error) => format!("err {error}"),
                }
            }
            "cancel_locked" => {
                // A `locked` load cancelled while it holds the fleet lock, as a request
                // dropped by its client's timeout is.
                let id: u64 = argument.parse().unwrap();
                let loads_before = LOADS.load(Ordering::SeqCst);
                let load = tokio::spawn(locked(id));
                until_a_load_starts(loads_before).await;
                load.abort();
                let cancelled = load.await.is_err_and(|error| error.is_cancelled());
                answer(&format!("cancelled: {cancelled}"), "worker.locked")
            }
            "flush_invalidations_within" => {
                let limit = Duration::from_millis(argument.parse().unwrap());
                let flushed = tokio::time::timeout(limit, stratacache::flush_invalidations());
                let flushed = flushed.await.is_ok();
                let pending = stratacache::stats().outbox.pending;
                answer(
                    &format!("flushed: {flushed}, pending: {pending}"),
                    "worker.user",
                )
            }
            "dropped_invalidate_tag" | "dropped_invalidate" | "dropped_put" => {
                // Applied here, its future dropped unpolled, as a write handler's
                // future is when its client goes away after the database commit.
                let id: u64 = argument.parse().unwrap();
                match command {
                    "dropped_invalidate_tag" => {
                        drop(stratacache::invalidate_tag(&format!("user:{id}")))
                    }
                    "dropped_invalidate" => drop(invalidate!(get_user(id))),
                    _ => drop(put!(get_user(id), format!("user {id} put"))),
                }
                "ok".to_owned()
            }
            "concurrent_gets" => {
                // `get` of every id in FROM..TO at once.
                let (from, to) = argument.split_once(' ').unwrap();
                let ids = from.parse::<u64>().unwrap()..to.parse::<u64>().unwrap();
                let calls = futures_util::future::join_all(ids.map(get_user)).await;
                answer(&format!("{} answered", calls.len()), "worker.user")
            }
            "clear" => result(clear!(get_user).await),
            "stats" => serde_json::to_string(&stratacache::stats()).unwrap(),
            other => format!("unknown command {other}"),
        };
        println!("{reply}");
    }
}

/// A short digest, so a test can compare 200 kB values from two processes.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} is a number")),
    )
}

/// A `grouped_many` batch, then at once an invalidation of `tag`, on a runtime of one
/// thread: the batch's write-back, which runs in the background, reads the tag
/// counters only after the invalidation reached Redis. Returns once that write-back
/// has ended (`flush_writes`).
async fn batch_then_invalidate(ids: Vec<u64>, tag: String) -> String {
    let on_one_thread = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let values = grouped_many(&ids).await;
            stratacache::invalidate_tag(&tag)
                .await
                .expect("invalidate_tag");
            let flushed = stratacache::flush_writes();
            tokio::time::timeout(Duration::from_secs(5), flushed)
                .await
                .expect("the write-back ended within 5 s");
            batch_summary(values.len())
        })
    };
    tokio::task::spawn_blocking(on_one_thread)
        .await
        .expect("the batch")
}

/// Waits (up to 5 s) until a loader has started since `LOADS` was `before`.
async fn until_a_load_starts(before: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while LOADS.load(Ordering::SeqCst) == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load started within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// How many values a batch call returned, and which keys its loader was given.
fn batch_summary(values: usize) -> String {
    let mut loaded = std::mem::take(&mut *BATCH_LOADED.lock().unwrap());
    loaded.sort_unstable();
    let loaded: Vec<String> = loaded.iter().map(u64::to_string).collect();
    format!("{values} values, loaded [{}]", loaded.join(","))
}

fn result(outcome: Result<(), stratacache::Error>) -> String {
    match outcome {
        Ok(()) => "ok".to_owned(),
        Err(error) => format!("err {error}"),
    }
}
