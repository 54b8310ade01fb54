//! The cache at scale: memory per entry, background CPU with idle entries and after
//! an invalidation, and memory under churn. Every figure comes from a fresh process
//! (this binary runs itself once per subject), so one subject's heap never counts
//! against another's. u64 keys, 64-byte String values; stratacache's entries carry a
//! ttl and two tags (`users`, `user:{key}`).
//!
//! `cargo bench --bench scale` (about a minute). One measurement alone:
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
        ["churn", subject] => churn(subject),
        [] => report(),
        other => panic!("unknown arguments {other:?}"),
    }
}
