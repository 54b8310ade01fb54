//! A write-back made after its value landed is given up for a key written here since.
//!
//! A batch call writes its loaded values back to Redis from a task of its own, after
//! it has answered. A `put!` of one of its keys that comes between the answer and that
//! task is newer than the loaded value; once the `put!`'s entry has left Redis (its
//! ttl is short), the write-back, a compare-and-set that expects the key absent as
//! the batch's read found it, would land the older value there, and every reader
//! would get it until it expired. Found by `tests/one_process.rs` (up to 626 reads in
//! 10 s that got less than a returned `put!`); here, the same interleaving, made to
//! happen: the batch runs on a runtime of its own that is not polled again (so its
//! write-back waits) until the `put!` has returned and its entry has left Redis.
//! (Since, a written key stays in Redis for a tombstone's life past its entry's
//! end, which keeps such a write-back off it too; here the entry is evicted, as
//! `maxmemory` may do, so that the check in this process is what is tested.)
//!
//! A `put!` of another key of the cache meanwhile does not cost the batch's keys
//! their write-back.
//!
//! A single-key load writes back before its call answers, but a loader that added a
//! tag has its write wait for that tag's version (a round trip) after its value
//! landed: a `put!` of its key in that wait is newer, and the write is not made.

#[macro_use]
mod support;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stratacache::{cached, put, Config};
use support::Deployment;

const NS: &str = "wb";

/// What the loaders read.
static TRUTH: AtomicU64 = AtomicU64::new(1);

#[cached(ttl = "100ms", tags = ["row:{id}"], name = "wb.row")]
async fn row(id: u64) -> u64 {
    let _ = id;
    TRUTH.load(Ordering::SeqCst)
}

#[cached(ttl = "100ms", tags = ["row:{ids}"], name = "wb.row", batch)]
async fn rows(ids: Vec<u64>) -> HashMap<u64, u64> {
    let truth = TRUTH.load(Ordering::SeqCst);
    ids.into_iter().map(|id| (id, truth)).collect()
}

/// Set by `tagged_row`'s loader when it runs.
static TAGGED_LOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A single-key function whose loader adds a tag (its write waits for the tag's
/// version).
#[cached(ttl = "100ms", tags = ["row:{id}"], name = "wb.tagged")]
async fn tagged_row(id: u64) -> u64 {
    stratacache::this_load::add_tag(format!("shard:{}", id % 4));
    TAGGED_LOADED.store(true, Ordering::SeqCst);
    TRUTH.load(Ordering::SeqCst)
}

/// A cache whose entries outlive the test, for the write-back that is made.
#[cached(ttl = "10m", tags = ["row:{id}"], name = "wb.kept")]
async fn kept(id: u64) -> u64 {
    id
}

#[cached(ttl = "10m", tags = ["row:{ids}"], name = "wb.kept", batch)]
async fn kept_rows(ids: Vec<u64>) -> HashMap<u64, u64> {
    ids.into_iter().map(|id| (id, id)).collect()
}

/// Drops `cache`'s entries from Redis, as an eviction under `maxmemory` would. (They
/// no longer expire early enough for these cases: a written key lives in Redis for
/// at least a tombstone's life, which alone keeps an older write-back off it.)
fn evict(server: &Deployment, cache: &str) {
    let keys = server.keys(&format!("{NS}:{cache}:v0:*"));
    assert!(!keys.is_empty(), "no entry of {cache} in Redis");
    let _: i64 = server.query(redis::cmd("DEL").arg(&keys));
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().unwrap()
}

/// One process, one `init`: both cases against one server. The main runtime keeps
/// running: the connection's task runs on it, so the batch runtime's calls use it
/// while that one is not polled.
#[test]
fn a_write_back_is_given_up_for_the_keys_written_here_since_the_landing_and_only_for_them() {
    let server = Deployment::standalone();
    let main = runtime(true);
    main.block_on(async {
        stratacache::init(Config::new().redis_url(server.url()).namespace(NS)).unwrap();
    });
    a_batch_write_back_that_comes_after_a_put_of_its_key_is_not_made(&server, &main);
    a_put_of_another_key_does_not_cost_a_batch_its_write_back(&server, &main);
    a_single_key_write_back_waiting_for_an_added_tag_is_not_made_after_a_put(&server, &main);
}

fn a_batch_write_back_that_comes_after_a_put_of_its_key_is_not_made(
    server: &Deployment,
    main: &tokio::runtime::Runtime,
) {
    main.block_on(row(1));
    let entries = || server.keys(&format!("{NS}:wb.row:v0:*")).len();

    let batch = runtime(false);
    let loaded = batch.block_on(rows(vec![7]));
    assert_eq!(loaded[&7], 1);
    // The batch has answered; its write-back waits on its runtime, not polled now.
    TRUTH.store(2, Ordering::SeqCst);
    main.block_on(put!(row(7), 2)).unwrap();
    evict(server, "wb.row");
    // Now the write-back runs.
    batch.block_on(stratacache::flush_writes());

    assert_eq!(
        entries(),
        0,
        "the batch's write-back, older than the put!, landed in Redis"
    );
    let read = main.block_on(rows(vec![7]));
    assert_eq!(read[&7], 2, "a read after the put! returned got less");
}

fn a_put_of_another_key_does_not_cost_a_batch_its_write_back(
    server: &Deployment,
    main: &tokio::runtime::Runtime,
) {
    let entries = || server.keys(&format!("{NS}:wb.kept:v0:*")).len();
    let batch = runtime(false);
    assert_eq!(batch.block_on(kept_rows(vec![7]))[&7], 7);
    main.block_on(put!(kept(8), 8)).unwrap();
    assert_eq!(
        entries(),
        1,
        "the put!'s entry alone: the batch's write-back waits"
    );
    batch.block_on(stratacache::flush_writes());
    assert_eq!(
        entries(),
        2,
        "the batch's value of key 7 was not written back after a put! of key 8"
    );
}

fn a_single_key_write_back_waiting_for_an_added_tag_is_not_made_after_a_put(
    server: &Deployment,
    main: &tokio::runtime::Runtime,
) {
    let entries = || server.keys(&format!("{NS}:wb.tagged:v0:*")).len();
    let caller = runtime(false);
    // On a loaded machine this thread can be descheduled inside a poll long enough for
    // every Redis round trip of the load to complete in it: the call then answers at
    // once, its write made before any put!, and the case did not happen. Another key
    // tries again (each such try is as likely as the first; five all racing is rare).
    let happened = (7..12).any(|id| {
        caller.block_on(the_put_comes_between_landing_and_write_back(
            server, main, id,
        ))
    });
    assert!(
        happened,
        "every call answered in the poll that ran its loader"
    );
    assert_eq!(
        entries(),
        0,
        "the single-key write-back, older than the put!, landed in Redis"
    );
}

/// One try of the case above with key `id`: false if the call answered in the poll
/// that ran its loader.
async fn the_put_comes_between_landing_and_write_back(
    server: &Deployment,
    main: &tokio::runtime::Runtime,
    id: u64,
) -> bool {
    TRUTH.store(1, Ordering::SeqCst);
    TAGGED_LOADED.store(false, Ordering::SeqCst);
    let mut call = std::pin::pin!(tagged_row(id));
    // Poll the call until its loader has run: that poll lands the value and leaves
    // the call waiting for the added tag's version, its write not sent.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !TAGGED_LOADED.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the loader never ran");
        let answered =
            std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx).is_ready()))
                .await;
        if answered {
            assert!(
                TAGGED_LOADED.load(Ordering::SeqCst),
                "answered, never loaded"
            );
            evict(server, "wb.tagged");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The call is not polled while the put! runs and its entry expires.
    TRUTH.store(2, Ordering::SeqCst);
    std::thread::scope(|scope| {
        scope
            .spawn(|| main.block_on(put!(tagged_row(id), 2)).unwrap())
            .join()
            .unwrap()
    });
    evict(server, "wb.tagged");
    assert_eq!(call.await, 1, "the call answers what its loader returned");
    true
}
