//! One process of the fleet checker (tests/fleet.rs): a writer that commits new
//! versions of items to a source of truth (a Redis of its own, never faulted) and
//! then, in turn, invalidates their tag, invalidates their entry, `put!`s the new
//! version or `refresh!`es the entry; or a reader that calls a cached `item(k)` in a
//! loop; or a peeker that only reads what the cache Redis holds (`peek!`). Every operation
//! is logged with its start and end in unix microseconds, and written to OUT_FILE at
//! the end, one per line:
//!
//! ```text
//! w KEY VERSION START END OK      a commit of VERSION, then its invalidation (or put!)
//! r KEY VERSION START END OK      a read that returned VERSION (OK = 0: it failed)
//! p KEY VERSION START END 1       a peek (VERSION = 0: nothing in Redis)
//! f KEY VERSION START END OK      a reader's final read, after the settle time
//! o 0 COUNT 0 0 1                 a reader's loads that a commit overtook (last)
//! ```
//!
//! The writer commits KEYS items round robin, one every 20 ms, and SLOW_KEYS more
//! items one every 300 ms: each of those is written only every SLOW_KEYS × 300 ms,
//! longer apart than the resync interval, so that a lost message of one leaves it
//! stale until a resync finds the change (a lost message of one of the KEYS items
//! heals at its next write, 80 ms later, and would hide a resync that finds nothing).
//! Every other slow item is written by tag alone and read through a cache of its
//! own (`item_by_tag`), for the resync of tag versions; the others, as the KEYS
//! items, in the four ways in turn, for the resync of entry changes.
//!
//! A load reads the source of truth, then takes a little longer, and one in four
//! up to LOAD_MS more (a slow query whose snapshot was taken at its start), so that
//! those span the writer's next commit and invalidation of their item: the value
//! they would write back to the cache Redis is then already superseded, and must
//! never be served.
//!
//! Usage: `fleet_worker ROLE CACHE_URL TRUTH_URL NAMESPACE KEYS SLOW_KEYS RUN_MS
//! SETTLE_MS RESYNC_MS LOAD_MS OUT_FILE`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use stratacache::{cached, invalidate, invalidate_tag, peek, put, refresh, Config};

static TRUTH: OnceLock<ConnectionManager> = OnceLock::new();
/// The namespace, which also prefixes the items in the source of truth.
static NAMESPACE: OnceLock<String> = OnceLock::new();
/// The longest a load takes after its read of the source of truth.
static LOAD_MS: OnceLock<u64> = OnceLock::new();
/// Loads of this process that a commit of their item overtook.
static OVERTAKEN: AtomicU64 = AtomicU64::new(0);

fn truth_key(k: u64) -> String {
    format!("truth:{}:item:{k}", NAMESPACE.get().expect("set"))
}

/// The source of truth's current version of item `k` (0: never written).
#[cached(ttl = "60s", tags = ["item:{k}"], name = "fleet.item")]
async fn item(k: u64) -> Result<u64, String> {
    load(k).await
}

/// The same, for the slow items written by tag alone: a cache of its own, whose
/// entries no `invalidate!`, `put!` or `refresh!` ever changes, so that only the
/// resync of the tag versions can find a lost message (in `fleet.item`, a missed
/// entry change drops every entry, which would hide it).
#[cached(ttl = "60s", tags = ["item:{k}"], name = "fleet.item_by_tag")]
async fn item_by_tag(k: u64) -> Result<u64, String> {
    load(k).await
}

async fn load(k: u64) -> Result<u64, String> {
    let mut truth = TRUTH.get().expect("connected").clone();
    let version = redis::cmd("GET")
        .arg(truth_key(k))
        .query_async::<Option<u64>>(&mut truth)
        .await
        .map(|v| v.unwrap_or(0))
        .map_err(|e| e.to_string());
    tokio::time::sleep(load_delay()).await;
    let now: Result<Option<u64>, _> = redis::cmd("GET")
        .arg(truth_key(k))
        .query_async(&mut truth)
        .await;
    if matches!((&version, now), (Ok(read), Ok(Some(now))) if now > *read) {
        OVERTAKEN.fetch_add(1, Ordering::Relaxed);
    }
    version
}

/// How long a load takes after its read: one in four from LOAD_MS / 2 to LOAD_MS
/// (longer than the 80 ms between two writes of one item, so that it spans the
/// next), the others up to 5 ms. An xorshift of a count, seeded by the process, so
/// that the readers' loads do not end together.
fn load_delay() -> Duration {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id()) | 1;
    let mut x = STATE.fetch_add(1, Ordering::Relaxed) ^ seed.rotate_left(17);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let most = LOAD_MS.get().copied().unwrap_or(0);
    let ms = if x.is_multiple_of(4) {
        most / 2 + (x >> 2) % (most - most / 2 + 1)
    } else {
        (x >> 2) % 6
    };
    Duration::from_millis(ms)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// How many of the writer's 20 ms turns pass between two writes of the slow items.
const SLOW_TURNS: u64 = 15;

struct Args {
    role: String,
    keys: u64,
    slow_keys: u64,
    run: Duration,
    settle: Duration,
    out: String,
}

impl Args {
    fn items(&self) -> u64 {
        self.keys + self.slow_keys
    }

    /// Whether item `k` is written by tag alone and read through `item_by_tag`.
    fn by_tag(&self, k: u64) -> bool {
        k >= self.keys && (k - self.keys) % 2 == 1
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [role, cache_url, truth_url, namespace, keys, slow_keys, run_ms, settle_ms, resync_ms, load_ms, out] =
        argv.as_slice()
    else {
        eprintln!("usage: fleet_worker ROLE CACHE_URL TRUTH_URL NAMESPACE KEYS SLOW_KEYS RUN_MS SETTLE_MS RESYNC_MS LOAD_MS OUT_FILE");
        std::process::exit(2);
    };
    let ms = |s: &str| Duration::from_millis(s.parse().expect("a number of ms"));
    let truth = redis::Client::open(truth_url.as_str()).expect("truth URL");
    let truth = ConnectionManager::new(truth).await.expect("truth Redis");
    TRUTH.set(truth).ok();
    NAMESPACE.set(namespace.clone()).ok();
    // The writer's own loads (its `refresh!`es) are not slowed: it keeps its pace.
    let load_ms = match role.as_str() {
        "writer" => 0,
        _ => load_ms.parse().expect("LOAD_MS"),
    };
    LOAD_MS.set(load_ms).ok();
    let config = Config::new()
        .redis_url(cache_url)
        .namespace(namespace)
        .resync_interval(ms(resync_ms));
    stratacache::init(config).expect("init");
    let args = Args {
        role: role.clone(),
        keys: keys.parse().expect("KEYS"),
        slow_keys: slow_keys.parse().expect("SLOW_KEYS"),
        run: ms(run_ms),
        settle: ms(settle_ms),
        out: out.clone(),
    };
    let mut log = String::new();
    match args.role.as_str() {
        "writer" => write(&args, &mut log).await,
        "reader" => read(&args, &mut log).await,
        "peeker" => peek_loop(&args, &mut log).await,
        other => panic!("unknown role {other}"),
    }
    let made_again = stratacache::stats().invalidations_made_again;
    let _ = writeln!(log, "m 0 {made_again} 0 0 1");
    std::fs::write(&args.out, log).expect("write the log");
}

/// Commits a new version of one item every 20 ms, round robin, and of one slow item
/// every `SLOW_TURNS` turns, then invalidates, puts or refreshes it.
async fn write(args: &Args, log: &mut String) {
    let end = Instant::now() + args.run;
    let (mut k, mut slow, mut turn) = (0, 0, 0);
    while Instant::now() < end {
        write_once(k, false, log).await;
        k = (k + 1) % args.keys;
        if args.slow_keys > 0 && turn % SLOW_TURNS == 0 {
            let k = args.keys + slow;
            write_once(k, args.by_tag(k), log).await;
            slow = (slow + 1) % args.slow_keys;
        }
        turn += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A graceful exit, as the README has it: what still waits in the outbox is
    // delivered first, for half the settle time at most (a master down for good
    // keeps its own items' invalidations waiting for ever), so that the readers'
    // final reads, after the settle time, come after every one Redis can take.
    let _ = tokio::time::timeout(args.settle / 2, stratacache::flush_invalidations()).await;
}

async fn write_once(k: u64, by_tag: bool, log: &mut String) {
    let mut truth = TRUTH.get().expect("connected").clone();
    let version: u64 = redis::cmd("INCR")
        .arg(truth_key(k))
        .query_async(&mut truth)
        .await
        .expect("the source of truth is never faulted");
    let start = now_us();
    // Every way a write reaches the cache, in turn: the tag, the entry, the value, a
    // reload (whose load reads the version just committed).
    let ok = match (by_tag, version % 4) {
        (true, _) | (false, 0) => invalidate_tag!("item:{}", k).await.is_ok(),
        (false, 1) => invalidate!(item(k)).await.is_ok(),
        (false, 2) => put!(item(k), version).await.is_ok(),
        (false, _) => refresh!(item(k)).await.is_ok(),
    };
    let _ = writeln!(log, "w {k} {version} {start} {} {}", now_us(), u8::from(ok));
}

/// Reads every item in turn, one read a millisecond, then after the settle time reads
/// each once more (the final reads: every invalidation must have been seen by then).
async fn read(args: &Args, log: &mut String) {
    let end = Instant::now() + args.run;
    let mut k = u64::from(std::process::id()) % args.items();
    while Instant::now() < end {
        read_once(k, args.by_tag(k), 'r', log).await;
        k = (k + 1) % args.items();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(args.settle).await;
    for k in 0..args.items() {
        read_once(k, args.by_tag(k), 'f', log).await;
    }
    let overtaken = OVERTAKEN.load(Ordering::Relaxed);
    let _ = writeln!(log, "o 0 {overtaken} 0 0 1");
}

async fn read_once(k: u64, by_tag: bool, kind: char, log: &mut String) {
    let start = now_us();
    let read = if by_tag {
        item_by_tag(k).await
    } else {
        item(k).await
    };
    let (version, ok) = match read {
        Ok(version) => (version, 1),
        Err(_) => (0, 0),
    };
    let _ = writeln!(log, "{kind} {k} {version} {start} {} {ok}", now_us());
}

/// Reads only what Redis holds, every 2 ms: a value there that an invalidation has
/// superseded must never validate.
async fn peek_loop(args: &Args, log: &mut String) {
    let end = Instant::now() + args.run;
    let mut k = 0;
    while Instant::now() < end {
        let start = now_us();
        let version = if args.by_tag(k) {
            peek!(item_by_tag(k)).await
        } else {
            peek!(item(k)).await
        };
        let version = version.unwrap_or(0);
        let _ = writeln!(log, "p {k} {version} {start} {} 1", now_us());
        k = (k + 1) % args.items();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
