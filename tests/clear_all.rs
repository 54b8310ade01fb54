//! `clear_all` is process-wide, so it has a test binary (a process) of its own.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use stratacache::cached;

static A_LOADS: AtomicUsize = AtomicUsize::new(0);
static B_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn a(id: u64) -> u64 {
    A_LOADS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(40)).await;
    id
}

#[cached(local)]
async fn b(id: u64) -> u64 {
    B_LOADS.fetch_add(1, SeqCst);
    id
}

#[tokio::test]
async fn clear_all_drops_every_cache_and_outlives_loads_in_flight() {
    a(1).await;
    b(1).await;
    let in_flight = tokio::spawn(a(2));
    // Wait (bounded) until a(2)'s load has started, then clear.
    for _ in 0..1000 {
        if A_LOADS.load(SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(A_LOADS.load(SeqCst), 2, "a(2)'s load did not start");
    stratacache::clear_all().await.unwrap();
    assert_eq!(in_flight.await.unwrap(), 2);
    a(1).await;
    b(1).await;
    a(2).await;
    assert_eq!(
        A_LOADS.load(SeqCst),
        4,
        "a(1) twice, a(2) twice: the in-flight load was not stored"
    );
    assert_eq!(B_LOADS.load(SeqCst), 2);
    let stats = stratacache::stats();
    assert_eq!(stats.cache("clear_all::b").unwrap().entries, 1);
}
