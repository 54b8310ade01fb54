//! `#[cached]` on a plain `fn`: an in-process cache with single-flight across
//! threads, no async runtime involved.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use stratacache::{block_on, cached, invalidate, invalidate_tag, peek, refresh, stats, warm_up};

static SLOW_LOADS: AtomicUsize = AtomicUsize::new(0);
/// Held by the test while the threads pile up on the key, so the load is still
/// running when the last of them arrives.
static GATE: Mutex<()> = Mutex::new(());
static ENTERED: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", tags = ["report:{id}"], name = "sync.report")]
fn report(id: u64) -> String {
    SLOW_LOADS.fetch_add(1, SeqCst);
    drop(GATE.lock().unwrap());
    format!("report {id}")
}

#[test]
fn eight_threads_missing_one_key_make_one_load() {
    let gate = GATE.lock().unwrap();
    let start = Barrier::new(8);
    let answers: Vec<String> = thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    ENTERED.fetch_add(1, SeqCst);
                    report(1)
                })
            })
            .collect();
        // The load may finish only once every thread is calling: the leader waits on
        // the gate, the others join its flight. Bounded wait for that condition.
        for _ in 0..1_000 {
            if SLOW_LOADS.load(SeqCst) == 1 && ENTERED.load(SeqCst) == 8 {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ENTERED.load(SeqCst), 8, "every thread called");
        drop(gate);
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a == "report 1"), "{answers:?}");
    assert_eq!(SLOW_LOADS.load(SeqCst), 1, "one load for eight threads");
    assert_eq!(report(1), "report 1");
    assert_eq!(SLOW_LOADS.load(SeqCst), 1, "a hit afterwards");
    block_on(invalidate_tag!("report:{}", 1)).unwrap();
    report(1);
    assert_eq!(SLOW_LOADS.load(SeqCst), 2, "invalidated by tag");
    let snapshot = stats();
    let cache = snapshot.cache("sync.report").expect("in the stats");
    assert_eq!(cache.loads, 2);
}

static RESULT_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
fn parse_port(text: String) -> Result<u16, String> {
    RESULT_LOADS.fetch_add(1, SeqCst);
    text.parse().map_err(|e| format!("{e}"))
}

#[test]
fn a_sync_result_caches_ok_only_and_the_entry_macros_work() {
    assert_eq!(parse_port("80".into()), Ok(80));
    assert_eq!(parse_port("80".into()), Ok(80));
    assert_eq!(RESULT_LOADS.load(SeqCst), 1);
    assert!(parse_port("x".into()).is_err());
    assert!(parse_port("x".into()).is_err());
    assert_eq!(RESULT_LOADS.load(SeqCst), 3, "an Err is not cached");
    assert_eq!(block_on(peek!(parse_port("80".into()))), Some(80));
    block_on(invalidate!(parse_port("80".into()))).unwrap();
    assert_eq!(block_on(peek!(parse_port("80".into()))), None);
}

static PRICE_LOADS: AtomicUsize = AtomicUsize::new(0);
static PRICE_LIST: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", name = "sync.price")]
fn price(sku: u64) -> usize {
    PRICE_LOADS.fetch_add(1, SeqCst);
    PRICE_LIST.load(SeqCst) * 100 + sku as usize
}

fn unreadable_sku() -> u64 {
    panic!("the order names no sku")
}

#[test]
fn refresh_reloads_a_sync_function_at_once_and_only_that_call() {
    assert_eq!(price(1), 1);
    PRICE_LIST.store(1, SeqCst);
    assert_eq!(price(1), 1, "fresh, so cached");
    let refreshed = refresh!(price(1));
    assert_eq!(
        PRICE_LOADS.load(SeqCst),
        2,
        "reloaded by the call, before any poll"
    );
    assert_eq!(block_on(refreshed), 101);
    assert_eq!(price(1), 101, "the next call reads the reloaded value");
    assert_eq!(PRICE_LOADS.load(SeqCst), 2, "the request reached one call");

    // The request is made before the arguments are evaluated: one that panics leaves
    // no request behind for the next call.
    let panicked = std::panic::catch_unwind(|| refresh!(price(unreadable_sku())));
    assert!(panicked.is_err());
    assert_eq!(price(1), 101, "the abandoned request is withdrawn");
    assert_eq!(PRICE_LOADS.load(SeqCst), 2);
}

static SHIPPING_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m", name = "sync.shipping")]
fn shipping(zone: u64) -> Option<u64> {
    SHIPPING_LOADS.fetch_add(1, SeqCst);
    match zone {
        0 => panic!("zone 0 has no carrier"),
        9 => None,
        _ => Some(zone * 10),
    }
}

#[test]
fn warm_up_loads_a_sync_function_and_reports_each_zone() {
    assert_eq!(shipping(1), Some(10));
    let report = block_on(warm_up!(vec![0, 1, 2, 3, 9], |zone| shipping(zone)));
    assert_eq!(
        (report.loaded, report.present, report.failed),
        (2, 1, 2),
        "{report}: 2 and 3 loaded, 1 held, the panic and the None failed"
    );
    assert_eq!(SHIPPING_LOADS.load(SeqCst), 5, "1, then 0, 2, 3 and 9");
    assert_eq!(shipping(2), Some(20));
    assert_eq!(shipping(3), Some(30));
    assert_eq!(SHIPPING_LOADS.load(SeqCst), 5, "warmed entries are hits");
}

/// Memoized recursion, the `cached` crate's classic: every level below the first is
/// a miss whose loader runs inside the caller's miss.
#[cached(ttl = "1m", local, name = "sync.fib")]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1).wrapping_add(fib(n - 2))
    }
}

#[cached(ttl = "1m", local, name = "async.fib")]
async fn async_fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        let first = Box::pin(async_fib(n - 1)).await;
        first.wrapping_add(Box::pin(async_fib(n - 2)).await)
    }
}

/// A tokio worker's stack. The depth keeps a margin under this test build's frames
/// (unoptimized, `cargo test --bench recursion`: 2,304 B a level for the sync `fn`,
/// 2,273 B for the `async fn`, so about 900 levels fit; an optimized build takes 592
/// and 1,536 B, `cargo bench --bench recursion`). Before the loader's driver made
/// and answered out of line, 3,120 and 3,137 B: 700 levels overflowed, which aborts
/// this test binary.
const WORKER_STACK: usize = 2 << 20;
const DEPTH: u64 = 700;

#[test]
fn a_memoized_recursion_700_deep_fits_a_tokio_workers_stack() {
    let sync = thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(|| fib(DEPTH))
        .unwrap();
    let asynchronous = thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(|| block_on(async_fib(DEPTH)))
        .unwrap();
    // fib(DEPTH) modulo 2^64, which wrapping additions compute.
    let expected = (2..=DEPTH)
        .fold((0u64, 1u64), |(a, b), _| (b, a.wrapping_add(b)))
        .1;
    assert_eq!(sync.join().unwrap(), expected);
    assert_eq!(asynchronous.join().unwrap(), expected);
    let loads = stats().cache("sync.fib").unwrap().misses;
    assert_eq!(loads, DEPTH + 1, "one load per n, 0..=DEPTH");
}

static SELF_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A loader that asks for the very key it is loading.
#[cached(ttl = "1m", local, name = "sync.selfish")]
fn selfish(n: u64) -> u64 {
    SELF_CALLS.fetch_add(1, SeqCst);
    if n == 0 {
        0
    } else {
        selfish(n) + 1
    }
}

#[test]
fn a_loader_calling_its_function_with_its_own_key_panics_instead_of_waiting_forever() {
    // Before, the inner call joined the outer call's flight and parked the thread
    // that had to finish it: no answer ever came.
    let message = support::panic_message_within(Duration::from_secs(30), || selfish(1));
    assert!(
        message.contains("called its own function with the key it is loading"),
        "{message}"
    );
    assert_eq!(SELF_CALLS.load(SeqCst), 1, "the loader ran once");
    // Another key still loads.
    assert_eq!(selfish(0), 0);
}
