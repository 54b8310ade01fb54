//! `refresh_ahead = "xfetch"`: a key read often is refreshed in the background
//! before it expires, so no caller waits on a load after the first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stratacache::cached;

static LOADS: AtomicU64 = AtomicU64::new(0);

/// Loads take 100 ms: with beta 1, refreshes start a few hundred ms before expiry.
#[cached(ttl = "1s", refresh_ahead = "xfetch", local, name = "xfetch.rate")]
async fn rate(pair: u64) -> u64 {
    let load = LOADS.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(100)).await;
    pair * 1_000 + load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_is_refreshed_before_it_expires() {
    assert_eq!(rate(7).await, 7_001);
    let loaded_at = Instant::now();
    // Read every 5 ms until the refresh lands (bounded: the ttl plus a margin).
    let mut refreshed = None;
    while loaded_at.elapsed() < Duration::from_secs(3) {
        let value = rate(7).await;
        if value != 7_001 {
            refreshed = Some((value, loaded_at.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (value, after) = refreshed.expect("no refresh within 3 s");
    assert_eq!(value, 7_002);
    assert!(
        after < Duration::from_millis(1_100),
        "the refresh landed {after:?} after the load: it started before expiry"
    );
    let stats = stratacache::stats();
    let counters = stats.cache("xfetch.rate").unwrap();
    assert_eq!(counters.misses, 1, "only the first call waited for a load");
    assert_eq!(counters.loads, 2);
}
