//! A batch call of 100 keys, 90 of them in Redis and 10 in no tier, against the same
//! 100 keys as 100 concurrent single-key calls, and against one raw `MGET` of the same
//! 100 Redis keys (the entry keys the batch reads, computed from the documented key
//! layout; 90 present), on a `ConnectionManager` to the same server, in the same run.
//! For reference, also a raw `MGET` of 100 short keys holding bare postcard values.
//! Then the batch call and the raw `MGET` of the same keys alternately, call by call
//! (printed: medians and the median ratio). L1 holds one entry (`capacity = 1`) and
//! the 90 keys rotate over a pool of 18,000 written beforehand, so they are read from
//! Redis; the 10 missing keys are new on every iteration, so they are loaded (and
//! written back) every time.
//!
//! Starts its own redis-server on a free loopback port. `cargo bench --bench batch`

#[path = "../tests/support/mod.rs"]
mod redis_support;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use redis::AsyncCommands;
use support::value;

const WINDOWS: u64 = 200;
const PRESENT: u64 = 90;
const MISSING: u64 = 10;
/// Keys from here on are never written before the iteration that loads them.
const FRESH: u64 = 1 << 40;

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.batch")]
async fn single(id: u64) -> String {
    value(id)
}

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.batch", batch)]
async fn many(ids: &[u64]) -> HashMap<u64, String> {
    ids.iter().map(|id| (*id, value(*id))).collect()
}

/// The Redis key of an entry, as the README's key layout documents it.
fn entry_key(id: u64) -> String {
    let hash = xxhash_rust::xxh3::xxh3_128(&postcard::to_allocvec(&id).unwrap());
    format!("bench:bench.batch:v0:{hash:032x}")
}

/// The keys of iteration `n`: a window of 90 written keys and 10 fresh ones.
fn keys(n: u64) -> Vec<u64> {
    let window = (n % WINDOWS) * PRESENT;
    let fresh = FRESH + n * MISSING;
    (window..window + PRESENT)
        .chain(fresh..fresh + MISSING)
        .collect()
}

fn batch(c: &mut Criterion) {
    let server = redis_support::RedisServer::start();
    let (rt, mut raw) = support::redis_runtime(&server.url());
    rt.block_on(async {
        let pool: Vec<u64> = (0..WINDOWS * PRESENT).collect();
        for chunk in pool.chunks(1000) {
            many(chunk).await;
        }
        for id in pool {
            let bytes = postcard::to_allocvec(&value(id)).unwrap();
            let _: () = raw.set(format!("raw:{id}"), bytes).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("batch_100_keys_90_in_redis");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    let mut n = 0u64;
    group.bench_function("stratacache batch call", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    let got = many(&keys(n)).await;
                    assert_eq!(got.len(), 100);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("100 concurrent single-key calls", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    let calls = keys(n).into_iter().map(single);
                    let got = futures_util::future::join_all(calls).await;
                    std::hint::black_box(got);
                }
                started.elapsed()
            })
        })
    });
    // The layout is the documented one: the batch's own reads hit these keys.
    let written: Vec<String> = keys(0)[..90].iter().map(|id| entry_key(*id)).collect();
    let present: Vec<Option<Vec<u8>>> = rt.block_on(raw.mget(written)).unwrap();
    assert!(
        present.iter().all(Option::is_some),
        "the entry keys are where the README says"
    );
    group.bench_function("raw MGET of the same 100 entry keys", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    let names: Vec<String> = keys(n).into_iter().map(entry_key).collect();
                    let replies: Vec<Option<Vec<u8>>> = raw.mget(&names).await.unwrap();
                    assert_eq!(replies.iter().flatten().count(), PRESENT as usize);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("raw MGET of 100 short keys + postcard decode", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    let names: Vec<String> = keys(n).iter().map(|id| format!("raw:{id}")).collect();
                    let replies: Vec<Option<Vec<u8>>> = raw.mget(&names).await.unwrap();
                    let decoded: Vec<String> = replies
                        .iter()
                        .flatten()
                        .map(|bytes| postcard::from_bytes(bytes).unwrap())
                        .collect();
                    assert_eq!(decoded.len(), PRESENT as usize);
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    // Each call takes the next iteration's keys, so each set of keys is new to it.
    let iteration = std::cell::Cell::new(n);
    let next_keys = || {
        iteration.set(iteration.get() + 1);
        keys(iteration.get())
    };
    let mut settle = raw.clone();
    let pair = rt.block_on(support::paired(
        2_000,
        async || {
            let got = many(&next_keys()).await;
            assert_eq!(got.len(), 100);
        },
        // An MGET not measured: the batch's background write-back runs meanwhile, so
        // the raw subject is timed on a quiet server (the criterion runs above charge
        // the write-back to the batch instead).
        async || {
            let names: Vec<String> = next_keys().into_iter().map(entry_key).collect();
            let _: Vec<Option<Vec<u8>>> = settle.mget(&names).await.unwrap();
        },
        async || {
            let names: Vec<String> = next_keys().into_iter().map(entry_key).collect();
            let replies: Vec<Option<Vec<u8>>> = raw.mget(&names).await.unwrap();
            assert_eq!(replies.iter().flatten().count(), PRESENT as usize);
        },
    ));
    eprintln!(
        "batch paired (2,000 alternating pairs): batch call {:.1} µs, raw MGET {:.1} µs, median ratio {:.2}x",
        pair.first_us, pair.second_us, pair.ratio
    );
    let stats = stratacache::stats();
    let counters = stats.cache("bench.batch").unwrap();
    eprintln!(
        "bench.batch: l1_hits {}, l2_hits {}, misses {}, loads {}",
        counters.l1_hits, counters.l2_hits, counters.misses, counters.loads
    );
}

criterion_group!(benches, batch);
criterion_main!(benches);
