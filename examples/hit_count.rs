//! Counts the instructions of an L1 hit, deterministically, under callgrind:
//!
//! ```sh
//! cargo build --release --example hit_count
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/hits.$n target/release/examples/hit_count stratacache $n
//! done
//! ```
//!
//! The difference of the two totals over 100,000 is one hit's instructions, setup and
//! process start cancelling out. Subjects: `stratacache` (a `#[cached]` function, u64
//! key, 64-byte `String` value, 1,024 warm keys) and `quick_cache` (a raw
//! `quick_cache::sync::Cache::get` of the same key and value); `stratacache-swr` is
//! the first with `stale_while_revalidate`, whose loads may run in the background;
//! `stratacache-sync` the first as a sync `fn`, called with no future.
//!
//! `misses-stratacache-sync N` and `misses-quick_cache N` read 100,000 warm keys in
//! a scattered order, more than the CPU caches hold: with
//! `valgrind --tool=callgrind --cache-sim=yes`, the difference of the `D1mr` totals
//! over 100,000 is a hit's misses of the simulated L1 data cache.
//!
//! `fill-stratacache N` and `fill-quick_cache N` count a fill the same way: N distinct
//! keys, each a miss that runs the loader and stores its value (for quick_cache: the
//! same `format!` and an insert).

use std::hint::black_box;

#[stratacache::cached(ttl = "1h", tags = ["users", "user:{id}"], name = "count.hit")]
async fn cached_value(id: u64) -> String {
    format!("{id:064}")
}

/// The same with `stale_while_revalidate`: its loads may run in the background.
#[stratacache::cached(ttl = "1h", tags = ["users", "user:{id}"], name = "count.swr", stale_while_revalidate)]
async fn refreshed_value(id: u64) -> String {
    format!("{id:064}")
}

/// The same as a sync function: no future at all on a hit.
#[stratacache::cached(ttl = "1h", tags = ["users", "user:{id}"], name = "count.sync")]
fn sync_value(id: u64) -> String {
    format!("{id:064}")
}

#[stratacache::cached(ttl = "1h", tags = ["users", "user:{id}"], name = "count.fill", capacity = 1_000_000)]
async fn filled_value(id: u64) -> String {
    format!("{id:064}")
}

/// The same with room for the scattered subjects' keys.
#[stratacache::cached(ttl = "1h", tags = ["users", "user:{id}"], name = "count.scattered", capacity = 1_000_000)]
fn scattered_value(id: u64) -> String {
    format!("{id:064}")
}

const KEYS: u64 = 1_024;
const SCATTERED_KEYS: u64 = 100_000;

/// The `i`th key of the scattered subjects: every one of them, in a scattered order.
fn scattered_key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % SCATTERED_KEYS
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [subject, hits] = args.as_slice() else {
        eprintln!(
            "usage: hit_count ([fill-]stratacache | stratacache-swr | [misses-]stratacache-sync | [fill-|misses-]quick_cache) COUNT"
        );
        std::process::exit(2);
    };
    let hits: u64 = hits.parse().expect("HITS is a number");
    match subject.as_str() {
        "stratacache" => {
            for id in 0..KEYS {
                stratacache::block_on(cached_value(id));
            }
            for i in 0..hits {
                black_box(stratacache::block_on(cached_value(black_box(i % KEYS))));
            }
        }
        "stratacache-swr" => {
            for id in 0..KEYS {
                stratacache::block_on(refreshed_value(id));
            }
            for i in 0..hits {
                black_box(stratacache::block_on(refreshed_value(black_box(i % KEYS))));
            }
        }
        "stratacache-sync" => {
            for id in 0..KEYS {
                sync_value(id);
            }
            for i in 0..hits {
                black_box(sync_value(black_box(i % KEYS)));
            }
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, String>::new(KEYS as usize * 2);
            for id in 0..KEYS {
                cache.insert(id, format!("{id:064}"));
            }
            for i in 0..hits {
                black_box(cache.get(&black_box(i % KEYS)));
            }
        }
        "misses-stratacache-sync" => {
            for id in 0..SCATTERED_KEYS {
                scattered_value(id);
            }
            for i in 0..hits {
                black_box(scattered_value(black_box(scattered_key(i))));
            }
        }
        "misses-quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, String>::new(SCATTERED_KEYS as usize * 2);
            for id in 0..SCATTERED_KEYS {
                cache.insert(id, format!("{id:064}"));
            }
            for i in 0..hits {
                black_box(cache.get(&black_box(scattered_key(i))));
            }
        }
        "fill-stratacache" => {
            for id in 0..hits {
                black_box(stratacache::block_on(filled_value(black_box(id))));
            }
        }
        "fill-quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, String>::new(1_000_000);
            for id in 0..hits {
                cache.insert(black_box(id), format!("{id:064}"));
            }
        }
        other => panic!("unknown subject {other}"),
    }
}
