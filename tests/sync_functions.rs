//! `#[cached]` on a plain `fn`: an in-process cache with single-flight across
//! threads, no async runtime involved.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use stratacache::{block_on, cached, invalidate, invalidate_tag, peek, stats};

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
