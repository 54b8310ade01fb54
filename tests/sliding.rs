//! `#[cached(ttl = .., sliding)]`: each hit extends the value's freshness, in this
//! process and, through the envelope and its `PX`, in Redis for the others.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stratacache::cached;
use support::{Deployment, Worker};

static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(ttl = "1s", sliding, local, name = "sliding.session")]
async fn session(id: u64) -> u64 {
    LOADS.fetch_add(1, Ordering::SeqCst);
    id
}

/// Sleeps until `at` after `start` (a schedule of reads, not a wait for a condition).
async fn at(start: Instant, offset: Duration) {
    tokio::time::sleep((start + offset).saturating_duration_since(Instant::now())).await;
}

#[tokio::test]
async fn a_key_read_every_300_ms_loads_once_and_loads_again_after_an_idle_ttl() {
    let start = Instant::now();
    for read in 0..=10 {
        at(start, Duration::from_millis(300 * read)).await;
        session(1).await;
    }
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert_eq!(LOADS.load(Ordering::SeqCst), 1, "3 s of reads, one load");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    session(1).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 2, "idle for 1.5 s: expired");
}

fn pttl(server: &Deployment) -> i64 {
    let keys = server.keys("s:worker.sliding:v0:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    server.query(redis::cmd("PTTL").arg(&keys[0]))
}

/// A reads the key every 300 ms (its L1 extends, and so does Redis); B, a fresh
/// process, finds it fresh in Redis after more than a ttl, without a load.
#[test]
fn the_extension_reaches_redis_for_the_other_processes() {
    let server = Deployment::standalone();
    let mut a = Worker::start(&server.url(), "s", &[]);
    a.get("sliding 1");
    let first = pttl(&server);
    let start = Instant::now();
    for read in 1..=6 {
        let due = start + Duration::from_millis(300 * read);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        assert_eq!(a.get("sliding 1").loads, 1);
    }
    // 1.8 s after the load, past its 1 s ttl: fresh in Redis only if extended.
    let mut b = Worker::start(&server.url(), "s", &[]);
    let read = b.get("sliding 1");
    assert_eq!(
        (read.l2_hits, read.loads),
        (1, 0),
        "B found it fresh in Redis"
    );
    assert!(pttl(&server) > 0 && first > 0);
}
