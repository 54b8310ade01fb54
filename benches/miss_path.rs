//! Miss path: 1,000 concurrent callers of one missing key, and 100 distinct missing keys
//! at once, with a loader that takes 2 ms. Loader calls are counted and printed: the
//! `cached` crate's `#[cached]` is the peer (it has no single-flight).
//!
//! `cargo bench --bench miss_path`

mod support;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use support::value;

const LOAD: Duration = Duration::from_millis(2);
static STRATA_LOADS: AtomicU64 = AtomicU64::new(0);
static CACHED_LOADS: AtomicU64 = AtomicU64::new(0);
/// Each iteration uses fresh keys, so every iteration starts with a miss.
static ROUND: AtomicU64 = AtomicU64::new(0);

#[stratacache::cached(ttl = "15m", capacity = 200_000)]
async fn strata_load(key: u64) -> String {
    STRATA_LOADS.fetch_add(1, Relaxed);
    tokio::time::sleep(LOAD).await;
    value(key)
}

#[cached::macros::cached(max_size = 200_000)]
async fn cached_crate_load(key: u64) -> String {
    CACHED_LOADS.fetch_add(1, Relaxed);
    tokio::time::sleep(LOAD).await;
    value(key)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One round: a task per key in `keys` (fresh keys each round, so all miss), all at once.
async fn round<F, Fut>(call: F, keys: impl Fn(u64) -> Vec<u64>) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let keys = keys(ROUND.fetch_add(1, Relaxed) * 1_000_000);
    let started = Instant::now();
    let callers: Vec<_> = keys
        .into_iter()
        .map(|key| tokio::spawn(call(key)))
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    started.elapsed()
}

/// 1,000 callers of one key.
fn one_key(base: u64) -> Vec<u64> {
    vec![base; 1000]
}

/// 100 distinct keys.
fn distinct_keys(base: u64) -> Vec<u64> {
    (base..base + 100).collect()
}

fn miss_path(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("miss/1000_callers_one_key");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let (mut strata_calls, mut cached_calls) = (0, 0);
    group.bench_function("stratacache #[cached]", |b| {
        b.iter_custom(|iters| {
            let before = STRATA_LOADS.load(Relaxed);
            let took = (0..iters)
                .map(|_| rt.block_on(round(strata_load, one_key)))
                .sum();
            strata_calls = (STRATA_LOADS.load(Relaxed) - before) / iters;
            took
        })
    });
    group.bench_function("cached crate #[cached]", |b| {
        b.iter_custom(|iters| {
            let before = CACHED_LOADS.load(Relaxed);
            let took = (0..iters)
                .map(|_| rt.block_on(round(cached_crate_load, one_key)))
                .sum();
            cached_calls = (CACHED_LOADS.load(Relaxed) - before) / iters;
            took
        })
    });
    group.finish();
    eprintln!("loader calls per 1,000-caller stampede: stratacache {strata_calls}, cached crate {cached_calls}");
    assert_eq!(strata_calls, 1, "single-flight broken");

    let mut group = c.benchmark_group("miss/100_distinct_keys");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("stratacache #[cached]", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(round(strata_load, distinct_keys)))
                .sum()
        })
    });
    group.bench_function("cached crate #[cached]", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(round(cached_crate_load, distinct_keys)))
                .sum()
        })
    });
    group.bench_function("one load (2 ms sleep)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    rt.block_on(async {
                        let s = Instant::now();
                        tokio::time::sleep(LOAD).await;
                        s.elapsed()
                    })
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, miss_path);
criterion_main!(benches);
