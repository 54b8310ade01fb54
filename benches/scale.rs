//! The cache at scale: time per hit at 10^3, 10^5 and 10^6 entries (of a `#[cached]`
//! `async fn`, and of the same as a sync `fn`) and the cost of a fill, beside
//! quick_cache, moka, the `cached` crate and a HashMap; memory per
//! entry, background CPU with idle entries and after
//! an invalidation, and memory under churn. Every figure comes from a fresh process
//! (this binary runs itself once per subject), so one subject's heap never counts
//! against another's. u64 keys, 64-byte String values; stratacache's entries carry a
//! ttl and two tags (`users`, `user:{key}`).
//!
//! `cargo bench --bench scale` (about two minutes). One measurement alone:
//! `cargo bench --bench scale -- memory quick_cache 1000000` (or `idle 1000000`,
//! `churn stratacache`).

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{block_on, value};

const ENTRIES: u64 = 1_000_000;
const CHURN_CAPACITY: u64 = 100_000;
const CHURN_KEYS: u64 = 2_000_000;
/// How long background CPU is measured for.
const WINDOW: Duration = Duration::from_secs(5);

#[stratacache::cached(ttl = "1h", tags = ["users", "user:{key}"], capacity = 2_000_000)]
async fn strata_get(key: u64) -> String {
    value(key)
}

/// The same as a sync function, as the `cached` crate's users write them.
#[stratacache::cached(ttl = "1h", tags = ["users", "user:{key}"], capacity = 2_000_000)]
fn strata_sync_get(key: u64) -> String {
    value(key)
}

#[cached::macros::cached(max_size = 2_000_000)]
async fn cached_crate_get(key: u64) -> String {
    value(key)
}

#[stratacache::cached(ttl = "1h", tags = ["users", "user:{key}"], capacity = 100_000)]
async fn strata_churn(key: u64) -> String {
    value(key)
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// CPU time (user + system) of this process's stratacache clock thread, the one that
/// sweeps, in clock ticks of 10 ms.
fn sweeper_ticks() -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "stratacache-clo" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // Fields 14 and 15 of stat(5), counted after the name (field 2) and state.
        return fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    panic!("no stratacache-clock thread");
}

/// The sweeper's share of one core over `WINDOW`, in percent.
fn sweeper_share() -> f64 {
    let (start, began) = (sweeper_ticks(), Instant::now());
    std::thread::sleep(WINDOW);
    let ticks = sweeper_ticks() - start;
    ticks as f64 * 10.0 / began.elapsed().as_millis() as f64 * 100.0
}

fn memory(subject: &str, entries: u64) {
    let before = rss();
    let keep: Box<dyn std::any::Any> = match subject {
        "stratacache" => {
            for key in 0..entries {
                block_on(strata_get(key));
            }
            Box::new(())
        }
        "quick_cache" => {
            let cache = quick_cache::sync::Cache::<u64, String>::new(2 * entries as usize);
            for key in 0..entries {
                cache.insert(key, value(key));
            }
            Box::new(cache)
        }
        "moka" => {
            let cache = moka::future::Cache::<u64, String>::new(2 * entries);
            for key in 0..entries {
                block_on(cache.insert(key, value(key)));
            }
            block_on(cache.run_pending_tasks());
            Box::new(cache)
        }
        "hashmap" => {
            let map: HashMap<u64, String> = (0..entries).map(|key| (key, value(key))).collect();
            Box::new(map)
        }
        other => panic!("unknown subject {other}"),
    };
    let per_entry = (rss() - before) as f64 / entries as f64;
    println!("{per_entry:.0}");
    drop(keep);
}

fn idle(entries: u64) {
    for key in 0..entries {
        block_on(strata_get(key));
    }
    std::thread::sleep(Duration::from_secs(1));
    let idle = sweeper_share();
    block_on(stratacache::invalidate_tag("users")).unwrap();
    let after_invalidation = sweeper_share();
    let left = stratacache::stats()
        .caches
        .into_iter()
        .find(|s| s.name.ends_with("strata_get"))
        .map_or(0, |s| s.entries);
    println!("{idle:.2} {after_invalidation:.2} {left}");
}

fn churn(subject: &str) {
    let quick = quick_cache::sync::Cache::<u64, String>::new(CHURN_CAPACITY as usize);
    let fill = |key: u64| match subject {
        "stratacache" => drop(block_on(strata_churn(key))),
        "quick_cache" => quick.insert(key, value(key)),
        other => panic!("unknown subject {other}"),
    };
    (0..CHURN_CAPACITY).for_each(fill);
    let at_capacity = rss();
    (CHURN_CAPACITY..CHURN_CAPACITY + CHURN_KEYS).for_each(fill);
    // Let the sweeper drop what it may (tag cells nobody holds).
    std::thread::sleep(Duration::from_secs(3));
    println!("{at_capacity} {}", rss());
}

type Subject<'a> = (&'static str, Box<dyn Fn(u64) -> String + 'a>);

/// Time per hit at `entries` resident entries, each subject filled with the same keys
/// and read in the same scattered order; interleaved rounds, medians. Also the
/// in-process fill: stratacache's miss path against a quick_cache insert (both make
/// the value). Prints `subject ns` lines.
fn hits(entries: u64) {
    let quick = quick_cache::sync::Cache::<u64, String>::new(2 * entries as usize);
    let moka = moka::future::Cache::<u64, String>::new(2 * entries);
    let mut map = HashMap::with_capacity(entries as usize);
    let began = Instant::now();
    for key in 0..entries {
        block_on(strata_get(key));
    }
    let strata_fill = began.elapsed();
    let began = Instant::now();
    for key in 0..entries {
        quick.insert(key, value(key));
    }
    let quick_fill = began.elapsed();
    for key in 0..entries {
        strata_sync_get(key);
        block_on(moka.insert(key, value(key)));
        block_on(cached_crate_get(key));
        map.insert(key, value(key));
    }
    let per_entry = |took: Duration| took.as_nanos() as f64 / entries as f64;
    println!("fill:stratacache {:.0}", per_entry(strata_fill));
    println!("fill:quick_cache {:.0}", per_entry(quick_fill));
    let subjects: Vec<Subject> = vec![
        ("stratacache", Box::new(|k| block_on(strata_get(k)))),
        ("stratacache-sync", Box::new(strata_sync_get)),
        ("quick_cache", Box::new(|k| quick.get(&k).unwrap())),
        ("moka", Box::new(|k| block_on(moka.get(&k)).unwrap())),
        ("cached", Box::new(|k| block_on(cached_crate_get(k)))),
        ("hashmap", Box::new(|k| map.get(&k).unwrap().clone())),
    ];
    // A fixed scattered order over every resident key.
    let order: Vec<u64> = (0..100_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % entries)
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    for _ in 0..15 {
        for (times, (_, get)) in times.iter_mut().zip(&subjects) {
            let began = Instant::now();
            for &key in &order {
                std::hint::black_box(get(std::hint::black_box(key)));
            }
            times.push(began.elapsed().as_nanos() as f64 / order.len() as f64);
        }
    }
    for (mut times, (name, _)) in times.into_iter().zip(&subjects) {
        times.sort_by(f64::total_cmp);
        println!("{name} {:.1}", times[times.len() / 2]);
    }
}

/// Runs this binary with `args` and returns what it printed.
fn child(args: &[&str]) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .output()
        .expect("run the bench binary");
    assert!(output.status.success(), "{args:?} failed: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn report() {
    println!("time per hit, median of 15 interleaved rounds of 100,000 scattered reads:");
    println!(
        "  entries    stratacache  (sync fn)    quick_cache  moka      cached    HashMap   \
         ratio to quick_cache (sync fn)"
    );
    let mut fills = Vec::new();
    for entries in [1_000u64, 100_000, 1_000_000] {
        let printed = child(&["hits", &entries.to_string()]);
        let figure = |name: &str| -> f64 {
            let line = printed
                .lines()
                .find(|l| l.split(' ').next() == Some(name))
                .unwrap();
            line.split(' ').nth(1).unwrap().parse().unwrap()
        };
        let quick = figure("quick_cache");
        println!(
            "  {entries:<10} {:>8.1} ns  {:>8.1} ns  {quick:>8.1} ns {:>7.1} ns {:>7.1} ns \
             {:>7.1} ns  {:.2}x ({:.2}x)",
            figure("stratacache"),
            figure("stratacache-sync"),
            figure("moka"),
            figure("cached"),
            figure("hashmap"),
            figure("stratacache") / quick,
            figure("stratacache-sync") / quick
        );
        fills.push((
            entries,
            figure("fill:stratacache"),
            figure("fill:quick_cache"),
        ));
    }
    for (entries, strata, quick) in fills {
        println!(
            "fill of {entries} entries, per entry: stratacache (miss path) {strata:.0} ns, \
             quick_cache insert {quick:.0} ns, {:.2}x",
            strata / quick
        );
    }
    let entries = ENTRIES.to_string();
    println!("memory per entry at {ENTRIES} entries (RSS growth / entries):");
    let quick: f64 = child(&["memory", "quick_cache", &entries]).parse().unwrap();
    for subject in ["stratacache", "quick_cache", "moka", "hashmap"] {
        let bytes: f64 = child(&["memory", subject, &entries]).parse().unwrap();
        println!(
            "  {subject:<12} {bytes:>6.0} B  {:.2}x quick_cache",
            bytes / quick
        );
    }
    let idle = child(&["idle", &entries]);
    let figures: Vec<&str> = idle.split(' ').collect();
    println!(
        "sweeper CPU with {ENTRIES} idle entries: {}% of a core; in the {} s after invalidating \
         the tag all carry: {}%, {} entries left",
        figures[0],
        WINDOW.as_secs(),
        figures[1],
        figures[2]
    );
    println!("churn: {CHURN_KEYS} keys through capacity {CHURN_CAPACITY}:");
    for subject in ["stratacache", "quick_cache"] {
        let churn = child(&["churn", subject]);
        let (at_capacity, after) = churn.split_once(' ').unwrap();
        let (at_capacity, after): (f64, f64) =
            (at_capacity.parse().unwrap(), after.parse().unwrap());
        println!(
            "  {subject:<12} RSS {:.1} MiB at capacity, {:.1} MiB after, {:.2}x",
            at_capacity / 1048576.0,
            after / 1048576.0,
            after / at_capacity
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["memory", subject, entries] => memory(subject, entries.parse().unwrap()),
        ["idle", entries] => idle(entries.parse().unwrap()),
        ["hits", entries] => hits(entries.parse().unwrap()),
        ["churn", subject] => churn(subject),
        [] => report(),
        other => panic!("unknown arguments {other:?}"),
    }
}
