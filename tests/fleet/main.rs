//! The fleet checker: a writer, four readers and a peeker, each a separate process
//! (examples/fleet_worker.rs), over one cache Redis, with the source of truth in a
//! second Redis that is never faulted. Four items are written every 80 ms, eight
//! more every 2.4 s, so that a lost message of one of those shows, unless a resync
//! finds it. Each phase injects one fault into the cache Redis and checks what the
//! fleet promises (tests/fleet/analysis.rs says how):
//! - no call fails;
//! - no process takes Redis for gone back (a counter below a version it held), and
//!   makes an invalidation again: no fault here loses such a version;
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
//! The last two phases freeze (SIGSTOP), then stop, the cluster master that holds
//! the invalidation channel, and leave it so: a fault that never ends, and touches
//! only the items whose entry or tag counter that master holds. Those may stay stale
//! as long as it lasts (their invalidations wait in the writer's outbox); every
//! other item is held to the bounds above as if nothing had happened (the
//! backplanes must listen, publish and resync elsewhere), and no call of any item
//! fails. Frozen, the master accepts connections and answers nothing, so every call
//! to it waits for its timeout; stopped, it refuses them at once.
//!
//! The short form (one round, 7 s phases) runs with `cargo test`. The long form, for
//! the README's table: `cargo build --release --examples`, then
//! `FLEET_SECONDS=12 FLEET_ROUNDS=3 cargo test --release --test fleet -- --nocapture`.
//! `FLEET_ONLY=frozen` runs only the phases whose name contains it.

#[path = "../support/mod.rs"]
mod support;

mod analysis;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use analysis::{Fault, Report, LASTING};
use stratacache_runtime::inspect;
use support::{Deployment, RedisCluster, RedisServer};

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
    /// The master of the invalidation channel's slot, where every backplane
    /// listens, stopped for the rest of the phase, the others serving on
    /// (`cluster-require-full-coverage no`): it holds some items' entries or tag
    /// counters, and none of the namespace's counters (see [`master_down`]).
    StopChannelMaster,
    /// The same master frozen (SIGSTOP) for the rest of the phase, thawed after it:
    /// its connections stay open and answer nothing, so every call to it waits for
    /// its timeout, where a stopped master refuses at once.
    FreezeChannelMaster,
}

struct Phase {
    name: &'static str,
    cluster: bool,
    fault: Injected,
}

const PHASES: [Phase; 9] = [
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
    Phase {
        name: "cluster, the channel's master frozen for good",
        cluster: true,
        fault: Injected::FreezeChannelMaster,
    },
    Phase {
        name: "cluster, the channel's master down for good",
        cluster: true,
        fault: Injected::StopChannelMaster,
    },
];

struct Settings {
    run: Duration,
    rounds: usize,
    resync: Duration,
    /// `FLEET_ONLY`: run only the phases whose name contains it.
    only: Option<String>,
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
            only: std::env::var("FLEET_ONLY").ok(),
        }
    }

    fn runs(&self, phase: &Phase) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| phase.name.contains(only.as_str()))
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
            if !settings.runs(phase) {
                continue;
            }
            let cache = if phase.cluster {
                &mut cluster
            } else {
                &mut standalone
            };
            let mut namespace = format!("fleet{round}p{index}");
            let mut down = None;
            if let (
                Injected::StopChannelMaster | Injected::FreezeChannelMaster,
                Deployment::Cluster(cluster),
            ) = (phase.fault, &*cache)
            {
                let (chosen, plan) = master_down(cluster, &namespace);
                (namespace, down) = (chosen, Some(plan));
            }
            let report = run_phase(cache, &truth, phase, &namespace, down.as_ref(), &settings);
            problems.extend(check(phase, &report, down.as_ref(), &settings));
            rows.push(row(phase, &report));
        }
    }
    let table = table(&rows);
    println!("{table}");
    assert!(problems.is_empty(), "{problems:#?}\n{table}");
}

fn check(
    phase: &Phase,
    report: &Report,
    down: Option<&MasterDown>,
    settings: &Settings,
) -> Vec<String> {
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
        report.made_again == 0,
        format!(
            "{} invalidations made again, though Redis went back in no phase",
            report.made_again
        ),
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
            .partition(|&k| read_by_tag(k));
        expect(
            by_tag.len() >= 2 && every_way.len() >= 2,
            format!("slow items written during the cut: {by_tag:?} by tag, {every_way:?} every way; the run did not test a lost message's resync"),
        );
    }
    if let Some(down) = down {
        let (held, others): (Vec<u64>, Vec<u64>) = report
            .written_during_fault
            .iter()
            .partition(|k| down.items.contains(k));
        expect(
            !held.is_empty() && !others.is_empty(),
            format!("items written while the master was down: {held:?} held by it, {others:?} elsewhere; the run did not test both"),
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
    down: Option<&MasterDown>,
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
    let fault = inject(
        cache,
        phase.fault,
        started + settings.run.mul_f64(0.3),
        down,
    );
    let deadline = started + settings.run + 2 * settings.resync + Duration::from_secs(30);
    let mut log = String::new();
    for (child, out) in &mut children {
        wait(child, deadline);
        log.push_str(&std::fs::read_to_string(&*out).expect("the worker wrote its log"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let (Injected::FreezeChannelMaster, Deployment::Cluster(cluster), Some(down)) =
        (phase.fault, &*cache, down)
    {
        cluster.nodes[down.node].thaw();
    }
    let bound_us = settings.resync.as_micros() as u64;
    analysis::analyse(&analysis::parse(&log), fault.as_ref(), bound_us)
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
fn inject(
    cache: &mut Deployment,
    fault: Injected,
    at: Instant,
    down: Option<&MasterDown>,
) -> Option<Fault> {
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
        Injected::StopChannelMaster | Injected::FreezeChannelMaster => {
            let (Deployment::Cluster(cluster), Some(down)) = (cache, down) else {
                unreachable!("a master is faulted in a cluster, as planned by `master_down`")
            };
            cluster.serve_without_full_coverage();
            let node = &mut cluster.nodes[down.node];
            if fault == Injected::StopChannelMaster {
                node.stop();
            } else {
                node.freeze();
            }
            return Some(Fault {
                start,
                end: LASTING,
                items: Some(down.items.clone()),
            });
        }
    }
    Some(Fault {
        start,
        end: now_us(),
        items: None,
    })
}

/// Whether item `k` is one of the slow items written by tag alone and read through
/// a cache of its own (examples/fleet_worker.rs).
fn read_by_tag(k: u64) -> bool {
    k >= KEYS && (k - KEYS) % 2 == 1
}

/// The master that [`Injected::StopChannelMaster`] stops (or
/// [`Injected::FreezeChannelMaster`] freezes), and the items whose entry or tag
/// counter it holds.
struct MasterDown {
    node: usize,
    items: BTreeSet<u64>,
}

/// A namespace (`base` and a suffix) whose channel's master holds none of its
/// counters, and the keys of some of the items written every 80 ms but not of all:
/// stopped or frozen, it takes every process's subscription with it, and leaves items
/// it holds and items that must not notice it.
fn master_down(cluster: &RedisCluster, base: &str) -> (String, MasterDown) {
    for attempt in 0..100 {
        let namespace = format!("{base}s{attempt}");
        let node = cluster.owner_of(&format!("{namespace}:invalidations"));
        if own_keys(&namespace)
            .iter()
            .any(|key| cluster.owner_of(key) == node)
        {
            continue;
        }
        let items: BTreeSet<u64> = (0..KEYS + SLOW_KEYS)
            .filter(|&k| {
                item_keys(&namespace, k)
                    .iter()
                    .any(|key| cluster.owner_of(key) == node)
            })
            .collect();
        let held_fast = (0..KEYS).filter(|k| items.contains(k)).count() as u64;
        if held_fast > 0 && held_fast < KEYS {
            return (namespace, MasterDown { node, items });
        }
    }
    panic!("no namespace of {base} leaves a master free of its own keys");
}

/// The counters of a namespace that every item's reads or resyncs go through (the
/// runtime's key scheme, cache-runtime/src/l2/keys.rs): the global counter, the
/// count of bumps, and each cache's own and entry-change counters.
fn own_keys(namespace: &str) -> Vec<String> {
    let mut keys = vec![
        format!("{namespace}:global-tag"),
        format!("{{{namespace}}}:bumps"),
    ];
    for cache in ["fleet.item", "fleet.item_by_tag"] {
        keys.push(format!("{namespace}:cache-tag:{cache}"));
        keys.push(format!("{namespace}:entry-changes:{cache}"));
    }
    keys
}

/// Item `k`'s entry, in the cache it is read through, and its tag's counter.
fn item_keys(namespace: &str, k: u64) -> [String; 2] {
    let cache = if read_by_tag(k) {
        "fleet.item_by_tag"
    } else {
        "fleet.item"
    };
    let key = postcard::to_allocvec(&k).expect("a u64 serializes");
    [
        inspect::entry_key(namespace, cache, 0, &key),
        inspect::tag_key(namespace, &format!("item:{k}")),
    ]
}

fn row(phase: &Phase, r: &Report) -> String {
    format!(
        "| {} | {} | {} | {} | {:.1} | {} | {} / {} | {} | {} | {:.1} | {:.1} | {} |",
        phase.name,
        r.reads,
        r.failed,
        r.stale,
        r.worst_lag_ms,
        match phase.fault {
            Injected::StopChannelMaster => {
                format!(
                    "(still down; its other items' worst lag {:.1})",
                    r.worst_untouched_ms
                )
            }
            Injected::FreezeChannelMaster => {
                format!(
                    "(still frozen; its other items' worst lag {:.1})",
                    r.worst_untouched_ms
                )
            }
            _ => format!("{:.1}", r.worst_after_fault_ms),
        },
        r.stale_peeks,
        r.peeks,
        r.invalidations,
        match r.unseen_in_fault {
            0 => r.unseen.to_string(),
            held => format!("{} (+{held} of the faulted master's items)", r.unseen),
        },
        r.propagation_p50_ms,
        r.propagation_p99_ms,
        r.overtaken_loads,
    )
}

fn table(rows: &[String]) -> String {
    let header = "| phase | reads | failed | stale reads | worst lag ms | worst after fault ms | stale peeks / peeks | invalidations | unseen | propagation p50 ms | p99 ms | loads overtaken |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
    format!("{header}\n{}", rows.join("\n"))
}
