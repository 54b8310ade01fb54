//! What protecting payloads costs, to choose and to report (README "Payload
//! protection: measured"):
//!
//! 1. the compression codecs on JSON-like text of 1 KiB, 64 KiB and 1 MiB: bytes
//!    kept, and compress plus decompress time (lz4_flex, snap, zstd levels 1 and 3);
//!    and an HMAC-SHA256 (the signature) at 1 KiB and 64 KiB;
//! 2. an L2 hit of a 1 KiB value, encrypted against not, both signed (the process
//!    holds a secret), alternated call by call (`paired`);
//! 3. an L2 hit of a 64 KiB value, compressed against not, the same way.
//!
//! Starts its own redis-server on a free loopback port.
//! `cargo bench --bench protection`

#[path = "../tests/support/mod.rs"]
mod redis_support;
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Records like the ones services cache: similar keys, varied numbers and names.
fn json_like(len: usize) -> String {
    let mut text = String::with_capacity(len + 200);
    let mut id = 0u64;
    while text.len() < len {
        id += 1;
        let score = id.wrapping_mul(2_654_435_761) % 10_000;
        text.push_str(&format!(
            r#"{{"id":{id},"name":"user {id}","email":"user{id}@example.com","score":{score},"roles":["reader","billing"],"active":{}}},"#,
            !id.is_multiple_of(3)
        ));
    }
    text.truncate(len);
    text
}

const SIZES: [(&str, usize); 3] = [("1 KiB", 1 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20)];

type Codec = (&'static str, fn(&[u8]) -> Vec<u8>, fn(&[u8]) -> Vec<u8>);

const CODECS: [Codec; 4] = [
    (
        "lz4_flex",
        |raw| lz4_flex::compress_prepend_size(raw),
        |packed| lz4_flex::decompress_size_prepended(packed).unwrap(),
    ),
    (
        "snap",
        |raw| snap::raw::Encoder::new().compress_vec(raw).unwrap(),
        |packed| snap::raw::Decoder::new().decompress_vec(packed).unwrap(),
    ),
    (
        "zstd-1",
        |raw| zstd::bulk::compress(raw, 1).unwrap(),
        |packed| zstd::bulk::decompress(packed, 2 << 20).unwrap(),
    ),
    (
        "zstd-3",
        |raw| zstd::bulk::compress(raw, 3).unwrap(),
        |packed| zstd::bulk::decompress(packed, 2 << 20).unwrap(),
    ),
];

fn codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("compress+decompress");
    group
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20);
    for (size_name, size) in SIZES {
        let raw = json_like(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (codec, compress, decompress) in CODECS {
            let packed = compress(raw.as_bytes());
            assert_eq!(decompress(&packed), raw.as_bytes());
            eprintln!(
                "{codec} {size_name}: {} -> {} bytes ({:.1}% kept)",
                raw.len(),
                packed.len(),
                100.0 * packed.len() as f64 / raw.len() as f64
            );
            group.bench_with_input(BenchmarkId::new(codec, size_name), &raw, |b, raw| {
                b.iter(|| decompress(&compress(std::hint::black_box(raw.as_bytes()))))
            });
        }
    }
    group.finish();
    // The signature's own cost: one HMAC-SHA256 over the envelope per read and write.
    let mut group = c.benchmark_group("hmac-sha256");
    group
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20);
    for (size_name, size) in &SIZES[..2] {
        let raw = json_like(*size);
        group.bench_with_input(BenchmarkId::from_parameter(size_name), &raw, |b, raw| {
            use hmac::Mac;
            b.iter(|| {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7; 32]).unwrap();
                mac.update(std::hint::black_box(raw.as_bytes()));
                mac.finalize().into_bytes()
            })
        });
    }
    group.finish();
}

const KEYS: u64 = 500;

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.signed", encrypt = false)]
async fn signed(key: u64) -> String {
    format!("{key:>8}{}", json_like(1024 - 8))
}

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.encrypted", encrypt = true)]
async fn encrypted(key: u64) -> String {
    format!("{key:>8}{}", json_like(1024 - 8))
}

#[stratacache::cached(ttl = "1h", capacity = 1, name = "bench.compressed", compress = true)]
async fn compressed(key: u64) -> String {
    format!("{key:>8}{}", json_like((64 << 10) - 8))
}

#[stratacache::cached(
    ttl = "1h",
    capacity = 1,
    name = "bench.uncompressed",
    compress = false
)]
async fn uncompressed(key: u64) -> String {
    format!("{key:>8}{}", json_like((64 << 10) - 8))
}

fn l2_hits(_: &mut Criterion) {
    let server = redis_support::RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = stratacache::Config::new()
            .redis_url(server.url())
            .namespace("bench")
            .secret("bench-secret-of-some-length");
        stratacache::init(config).unwrap();
        for key in 0..KEYS {
            signed(key).await;
            encrypted(key).await;
            compressed(key).await;
            uncompressed(key).await;
        }
    });
    let (mut a, mut b) = (0u64, KEYS / 2);
    let pair = rt.block_on(support::paired(
        10_000,
        async || {
            a = (a + 1) % KEYS;
            std::hint::black_box(encrypted(a).await);
        },
        async || {},
        async || {
            b = (b + 1) % KEYS;
            std::hint::black_box(signed(b).await);
        },
    ));
    eprintln!(
        "l2 hit, 1 KiB value (10,000 alternating pairs): encrypted {:.1} µs, signed only {:.1} µs, median ratio {:.3}x",
        pair.first_us, pair.second_us, pair.ratio
    );
    let pair = rt.block_on(support::paired(
        5_000,
        async || {
            a = (a + 1) % KEYS;
            std::hint::black_box(compressed(a).await);
        },
        async || {},
        async || {
            b = (b + 1) % KEYS;
            std::hint::black_box(uncompressed(b).await);
        },
    ));
    eprintln!(
        "l2 hit, 64 KiB value (5,000 alternating pairs): compressed {:.1} µs, uncompressed {:.1} µs, median ratio {:.3}x",
        pair.first_us, pair.second_us, pair.ratio
    );
    let stats = stratacache::stats();
    for cache in [
        "bench.signed",
        "bench.encrypted",
        "bench.compressed",
        "bench.uncompressed",
    ] {
        let counters = stats.cache(cache).unwrap();
        assert_eq!(
            counters.loads, KEYS,
            "{cache}: every measured call was an L2 hit"
        );
        eprintln!(
            "{cache}: l2_hits {}, loads {}",
            counters.l2_hits, counters.loads
        );
    }
}

criterion_group!(benches, codecs, l2_hits);
criterion_main!(benches);
