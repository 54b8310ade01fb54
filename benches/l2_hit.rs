//! The Redis tier: an L2 hit through `#[cached]` (the in-process tier is missed: it
//! holds one entry and the keys rotate over 2,000) against a raw `GET` plus postcard
//! decode of the same 64-byte payload, on a `ConnectionManager` to the same server,
//! in the same run; then the two alternately, call by call (printed: medians and the
//! median ratio). Also the payload formats, to choose the default.
//!
//! Starts its own redis-server on a free loopback port. `cargo bench --bench l2_hit`

#[path = "../tests/support/mod.rs"]
mod redis_support;
mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use redis::AsyncCommands;
use support::value;

const KEYS: u64 = 2_000;

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.l2")]
async fn l2_get(key: u64) -> String {
    value(key)
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
}

fn l2_hit(c: &mut Criterion) {
    let server = redis_support::RedisServer::start();
    let (rt, mut raw) = support::redis_runtime(&server.url());
    rt.block_on(async {
        for key in 0..KEYS {
            l2_get(key).await;
            let bytes = postcard::to_allocvec(&value(key)).unwrap();
            let _: () = raw.set(format!("raw:{key}"), bytes).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("l2_hit");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut next = 0u64;
    group.bench_function("stratacache #[cached] (L1 missed)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    next = (next + 1) % KEYS;
                    std::hint::black_box(l2_get(next).await);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("raw GET + postcard decode", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    next = (next + 1) % KEYS;
                    let bytes: Vec<u8> = raw.get(format!("raw:{next}")).await.unwrap();
                    std::hint::black_box(postcard::from_bytes::<String>(&bytes).unwrap());
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    let (mut first, mut second) = (0u64, KEYS / 2);
    let pair = rt.block_on(support::paired(
        20_000,
        async || {
            first = (first + 1) % KEYS;
            std::hint::black_box(l2_get(first).await);
        },
        async || {},
        async || {
            second = (second + 1) % KEYS;
            let bytes: Vec<u8> = raw.get(format!("raw:{second}")).await.unwrap();
            std::hint::black_box(postcard::from_bytes::<String>(&bytes).unwrap());
        },
    ));
    eprintln!(
        "l2_hit paired (20,000 alternating pairs): stratacache {:.1} µs, raw GET {:.1} µs, median ratio {:.2}x",
        pair.first_us, pair.second_us, pair.ratio
    );
    let stats = stratacache::stats();
    let counters = stats.cache("bench.l2").unwrap();
    eprintln!(
        "bench.l2: l1_hits {}, l2_hits {}, misses {}",
        counters.l1_hits, counters.l2_hits, counters.misses
    );

    let user = User {
        id: 42,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        roles: vec!["admin".into(), "billing".into()],
    };
    let mut group = c.benchmark_group("payload_round_trip");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("postcard", |b| {
        b.iter(|| {
            postcard::from_bytes::<User>(
                &postcard::to_allocvec(std::hint::black_box(&user)).unwrap(),
            )
            .unwrap()
        })
    });
    group.bench_function("json", |b| {
        b.iter(|| {
            serde_json::from_slice::<User>(
                &serde_json::to_vec(std::hint::black_box(&user)).unwrap(),
            )
            .unwrap()
        })
    });
    group.finish();
    let postcard_len = postcard::to_allocvec(&user).unwrap().len();
    let json_len = serde_json::to_vec(&user).unwrap().len();
    eprintln!("payload bytes: postcard {postcard_len}, json {json_len}");
}

criterion_group!(benches, l2_hit);
criterion_main!(benches);
