//! L1 hit path, side by side in one run: `#[cached]` (ttl and one tag) against raw
//! quick_cache, raw moka (future) and the `cached` crate's `#[cached]`, on one and two
//! threads. u64 keys over 1,024 warm entries, 64-byte String values.
//!
//! `cargo bench --bench hit_path`

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use support::{block_on, value};

const KEYS: u64 = 1024;

#[stratacache::cached(ttl = "15m", tags = ["bench"], capacity = 10_000)]
async fn strata_get(key: u64) -> String {
    value(key)
}

#[cached::macros::cached(max_size = 10_000)]
async fn cached_crate_get(key: u64) -> String {
    value(key)
}

type Subject = Arc<dyn Fn(u64) -> String + Send + Sync>;

fn subjects() -> Vec<(&'static str, Subject)> {
    let quick = Arc::new(quick_cache::sync::Cache::<u64, String>::new(10_000));
    let moka = moka::future::Cache::<u64, String>::new(10_000);
    for key in 0..KEYS {
        quick.insert(key, value(key));
        block_on(moka.insert(key, value(key)));
        block_on(strata_get(key));
        block_on(cached_crate_get(key));
    }
    vec![
        (
            "stratacache #[cached]",
            Arc::new(|k| block_on(strata_get(k))),
        ),
        (
            "quick_cache sync get",
            Arc::new(move |k| quick.get(&k).expect("warm")),
        ),
        (
            "moka future get",
            Arc::new(move |k| block_on(moka.get(&k)).expect("warm")),
        ),
        (
            "cached crate #[cached]",
            Arc::new(|k| block_on(cached_crate_get(k))),
        ),
    ]
}

/// Runs `iters` hits on each of `threads` threads and returns the slowest thread's time,
/// so the reported time per iteration is the time per hit of one thread.
fn run_threads(subject: &Subject, threads: usize, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (subject, barrier) = (subject.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                let mut key = t as u64 * 7;
                for _ in 0..iters {
                    key = (key + 1) & (KEYS - 1);
                    std::hint::black_box(subject(std::hint::black_box(key)));
                }
                started.elapsed()
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .max()
        .unwrap()
}

fn hit_path(c: &mut Criterion) {
    let subjects = subjects();
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("l1_hit/{threads}_thread"));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, subject) in &subjects {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| run_threads(subject, threads, iters))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, hit_path);
criterion_main!(benches);
