//! The fleet checker: a writer, four readers and a peeker, each a separate process
//! (examples/fleet_worker.rs), over one cache Redis, with the source of truth in a
//! second Redis that is never faulted. Four items are written every 80 ms, eight
//! more every 2.4 s, so that a lost message of one of those shows, unless a resync
//! finds it. Each phase injects one fault into the cache Redis and checks what the
//! fleet promises (tests/fleet/analysis.rs says how):
//! - no call fails;
//! - once a fault has ended, no read is staler than the resync interval;
//! - no value an invalidation superseded is served from Redis past that bound
//!   (with no fault: never);
//! - every invalidation is seen by every reader in the end;
//! - with no fault, an invalidation reaches every reader within 10 ms (p99);
//! - and, of the run itself: more than 10 loads were overtaken by a write of their
//!   item (a slow load spans the next write), and, in the phase that cuts pub/sub,
//!   at least two slow items were written during the cut, so that the checks above
//!   cover them.
//!
//! The short form (one round, 7 s phases) runs with `cargo test`. The long form, for
//! the README's table: `cargo build --release --examples`, then
//! `FLEET_SECONDS=12 FLEET_ROUNDS=3 cargo test --release --test fleet -- --nocapture`.

#[path = "../support/mod.rs"]
mod support;

mod analysis;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use analysis::{Fault, Report};
use support::{Deployment, RedisServer};

const READERS: usize = 4;
/// Items written every 80 ms (one every 20 ms, round robin).
const KEYS: u64 = 4;
/// Items written every 2.4 s (one every 300 ms, round robin), longer apart than the
/// resync interval: a lost message of one is found by a resync or not at all, where
/// one of the `KEYS` items would be healed by its next write. Every other one is
/// written by tag alone, in a cache of its own (examples/fleet_worker.rs).
const SLOW_KEYS: u64 = 8;
/// The longest a load takes after its read of the source of truth (a slow query):
/// one load in four takes from half of it to all of it, longer than the 80 ms
/// between two writes of one item, so that it spans the next write, whose message
/// must doom it in every process.
const LOAD_MS: u64 = 120;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Injected {
    None,
    /// `CLIENT KILL TYPE pubsub` every 20 ms for 3 s: the subscriptions are down
    /// most of the time, each one made again dropped within 20 ms, while the writer
    /// goes on (most slow items are written meanwhile, their messages mostly lost).
    CutPubsub,
    /// Redis (standalone) restarted with nothing in it.
    RestartEmpty,
    /// SIGSTOP for 3 s.
    Freeze,
    /// Down for 2 s while the writer goes on invalidating (the outbox).
    DownWhileInvalidating,
    /// One master of the cluster restarted with nothing in it.
    RestartOneMaster,
}

struct Phase {
    name: &'static str,
    cluster: bool,
    fault: Injected,
}

const PHASES: [Phase; 7] = [
    Phase {
        name: "no fault",
        cluster: false,
        fault: Injected::None,
    },
    Phase {
        name: "pub/sub cut 3 s",
        cluster: false,
        fault: Injected::CutPubsub,
    },
    Phase {
        name: "Redis restarted empty",
        cluster: false,
        fault: Injected::RestartEmpty,
    },
    Phase {
        name: "Redis frozen 3 s",
        cluster: false,
        fault: Injected::Freeze,
    },
    Phase {
        name: "Redis down 2 s while invalidating",
        cluster: false,
        fault: Injected::DownWhileInvalidating,
    },
    Phase {
        name: "cluster, no fault",
        cluster: true,
        fault: Injected::None,
    },
    Phase {
        name: "cluster, one master restarted empty",
        cluster: true,
        fault: Injected::RestartOneMaster,
    },
];

struct Settings {
    run: Duration,
    rounds: usize,
    resync: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let number = |name: &str, default: u64| {
            std::env::var(name).ok().map_or(default, |v| {
                v.parse().unwrap_or_else(|_| panic!("{name} is a number"))
            })
        };
        Self {
            run: Duration::from_secs(number("FLEET_SECONDS", 7)),
            rounds: number("FLEET_ROUNDS", 1) as usize,
            resync: Duration::from_secs(1),
        }
    }
}

#[test]
fn the_fleet_stays_coherent_under_faults() {
    let settings = Settings::from_env();
    let truth = RedisServer::start();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for round in 0..settings.rounds {
        let mut standalone = Deployment::standalone();
        let mut cluster = Deployment::cluster();
        for (index, phase) in PHASES.iter().enumerate() {
            let cache = if phase.cluster {
                &mut cluster
            } else {
                &mut standalone
            };
            let namespace = format!("fleet{round}p{index}");
            let report = run_phase(cache, &truth, phase, &namespace, &settings);
            problems.extend(check(phase, &report, &settings));
            rows.push(row(phase, &report));
        }
    }
    let table = table(&rows);
    println!("{table}");
    assert!(problems.is_empty(), "{problems:#?}\n{table}");
}

fn check(phase: &Phase, report: &Report, settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{}: {what}", phase.name));
        }
    };
    expect(report.reads > 1000, format!("only {} reads", report.reads));
    expect(
        report.invalidations > 50,
        format!("only {} invalidations", report.invalidations),
    );
    expect(
        report.overtaken_loads > 10,
        format!(
            "only {} loads overtaken by a write: the run did not test them",
            report.overtaken_loads
        ),
    );
    expect(
        report.failed == 0,
        format!("{} failed calls", report.failed),
    );
    expect(
        report.past_bound == 0,
        format!(
            "{} reads staler than the resync interval ({:?}) outside the fault",
            report.past_bound, settings.resync
        ),
    );
    expect(
        report.stale_peeks_past_bound == 0,
        format!(
            "{} superseded values served from Redis",
            report.stale_peeks_past_bound
        ),
    );
    expect(
        report.unseen == 0,
        format!("{} invalidations never seen", report.unseen),
    );
    if phase.fault == Injected::CutPubsub {
        // Slow items written during the cut: by tag alone (odd), in every way (even).
        let (by_tag, every_way): (Vec<u64>, Vec<u64>) = (KEYS..KEYS + SLOW_KEYS)
            .filter(|k| report.written_during_fault.contains(k))
            .partition(|k| (k - KEYS) % 2 == 1);
        expect(
            by_tag.len() >= 2 && every_way.len() >= 2,
            format!("slow items written during the cut: {by_tag:?} by tag, {every_way:?} every way; the run did not test a lost message's resync"),
        );
    }
    if phase.fault == Injected::None {
        expect(
            report.stale_peeks == 0,
            format!("{} superseded values served from Redis", report.stale_peeks),
        );
        expect(
            report.propagation_p99_ms <= 10.0,
            format!(
                "propagation p99 {} ms over 10 ms",
                report.propagation_p99_ms
            ),
        );
    }
    problems
}

fn run_phase(
    cache: &mut Deployment,
    truth: &RedisServer,
    phase: &Phase,
    namespace: &str,
    settings: &Settings,
) -> Report {
    let dir = std::env::temp_dir().join(format!(
        "stratacache-fleet-{}-{namespace}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let roles = std::iter::once("writer")
        .chain(std::iter::repeat_n("reader", READERS))
        .chain(std::iter::once("peeker"));
    let mut children: Vec<(Child, PathBuf)> = roles
        .enumerate()
        .map(|(i, role)| {
            let out = dir.join(format!("{i}-{role}.log"));
            (spawn(role, cache, truth, namespace, settings, &out), out)
        })
        .collect();
    let started = Instant::now();
    let fault = inject(cache, phase.fault, started + settings.run.mul_f64(0.3));
    let deadline = started + settings.run + 2 * settings.resync + Duration::from_secs(30);
    let mut log = String::new();
    for (child, out) in &mut children {
        wait(child, deadline);
        log.push_str(&std::fs::read_to_string(&*out).expect("the worker wrote its log"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let bound_us = settings.resync.as_micros() as u64;
    analysis::analyse(&analysis::parse(&log), fault, bound_us)
}

fn spawn(
    role: &str,
    cache: &Deployment,
    truth: &RedisServer,
    namespace: &str,
    settings: &Settings,
    out: &Path,
) -> Child {
    let ms = |d: Duration| d.as_millis().to_string();
    Command::new(support::example_path("fleet_worker"))
        .arg(role)
        .arg(cache.url())
        .arg(truth.url())
        .arg(namespace)
        .arg(KEYS.to_string())
        .arg(SLOW_KEYS.to_string())
        .arg(ms(settings.run))
        .arg(ms(2 * settings.resync + Duration::from_millis(500)))
        .arg(ms(settings.resync))
        .arg(LOAD_MS.to_string())
        .arg(out)
        .spawn()
        .expect("start fleet_worker")
}

fn wait(child: &mut Child, deadline: Instant) {
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "a fleet worker failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a fleet worker did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Injects `fault` at `at` (the schedule of the phase) and returns when it lasted.
fn inject(cache: &mut Deployment, fault: Injected, at: Instant) -> Option<Fault> {
    if fault == Injected::None {
        return None;
    }
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
    let start = now_us();
    match fault {
        Injected::None => unreachable!(),
        Injected::CutPubsub => {
            let cut = Instant::now();
            let mut killed = 0;
            while cut.elapsed() < Duration::from_secs(3) {
                killed += cache.drop_subscriptions();
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(killed > 0, "no subscriber to kill");
        }
        Injected::RestartEmpty => cache.restart(),
        Injected::Freeze => {
            cache.freeze();
            std::thread::sleep(Duration::from_secs(3));
            cache.thaw();
        }
        Injected::DownWhileInvalidating => {
            cache.stop();
            std::thread::sleep(Duration::from_secs(2));
            cache.restart();
        }
        Injected::RestartOneMaster => cache.restart_owner_of("any key"),
    }
    Some(Fault {
        start,
        end: now_us(),
    })
}

fn row(phase: &Phase, r: &Report) -> String {
    format!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {} / {} | {} | {} | {:.1} | {:.1} | {} |",
        phase.name,
        r.reads,
        r.failed,
        r.stale,
        r.worst_lag_ms,
        r.worst_after_fault_ms,
        r.stale_peeks,
        r.peeks,
        r.invalidations,
        r.unseen,
        r.propagation_p50_ms,
        r.propagation_p99_ms,
        r.overtaken_loads,
    )
}

fn table(rows: &[String]) -> String {
    let header = "| phase | reads | failed | stale reads | worst lag ms | worst after fault ms | stale peeks / peeks | invalidations | unseen | propagation p50 ms | p99 ms | loads overtaken |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
    format!("{header}\n{}", rows.join("\n"))
}
