//! What the fleet's logs say: reads, failed calls, stale reads and their lag, the
//! propagation of invalidations, and whether every invalidation was finally seen.
//!
//! A read is stale if it returned a version that an invalidation had superseded
//! before the read started (that invalidation's call had returned). Its lag is how
//! long before the read that invalidation returned. While a fault lasts, staleness
//! is expected (the fault is what it bounds); once the fault has ended, a read's lag
//! counts from the later of the invalidation and the fault's end, and must stay
//! under the resync interval. A fault may touch some items only (a cluster master
//! holds some items' keys): the others are judged as if nothing had happened.

use std::collections::{BTreeSet, HashMap};

/// One logged operation (see examples/fleet_worker.rs).
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub kind: char,
    pub key: u64,
    pub version: u64,
    pub start: u64,
    pub end: u64,
    pub ok: bool,
}

pub fn parse(text: &str) -> Vec<Op> {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| -> u64 { fields[i].parse().expect("a logged number") };
            Op {
                kind: fields[0].chars().next().expect("a kind"),
                key: number(1),
                version: number(2),
                start: number(3),
                end: number(4),
                ok: number(5) == 1,
            }
        })
        .collect()
}

/// When a fault was injected and when it ended (unix µs), and what it touched.
#[derive(Debug, Clone)]
pub struct Fault {
    pub start: u64,
    /// [`LASTING`] for a fault that had not ended when the phase did.
    pub end: u64,
    /// The items whose keys it touched; `None`: every one.
    pub items: Option<BTreeSet<u64>>,
}

/// The end of a fault that outlasted its phase.
pub const LASTING: u64 = u64::MAX;

impl Fault {
    /// The fault as item `key` met it: `fault` if it touched the item, else none.
    fn of(fault: Option<&Fault>, key: u64) -> Option<&Fault> {
        fault.filter(|f| f.items.as_ref().is_none_or(|items| items.contains(&key)))
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub reads: usize,
    pub failed: usize,
    pub stale: usize,
    pub worst_lag_ms: f64,
    /// Stale reads past the bound: outside a fault, or after it ended, staler than
    /// the resync interval.
    pub past_bound: usize,
    /// The worst lag of a read made once the fault had ended (from its end).
    pub worst_after_fault_ms: f64,
    /// Of a fault that touched some items only: the worst lag of a read of the others.
    pub worst_untouched_ms: f64,
    pub peeks: usize,
    /// Peeks that found in Redis a value an invalidation had superseded.
    pub stale_peeks: usize,
    pub stale_peeks_past_bound: usize,
    pub invalidations: usize,
    /// Loads that a commit of their item overtook: their value was superseded before
    /// they returned it (none must be served after that commit's invalidation).
    pub overtaken_loads: usize,
    /// Invalidations the processes made again, having found Redis gone back (a
    /// counter below a version it held): no fault here loses such a version, so
    /// each is a false finding.
    pub made_again: usize,
    /// The items written while the fault lasted.
    pub written_during_fault: BTreeSet<u64>,
    /// Final reads that did not return the last version written.
    pub unseen: usize,
    /// The same, of items a fault still held when the phase ended: its doing, which
    /// lasts as long as it does, not a lost invalidation.
    pub unseen_in_fault: usize,
    /// Per invalidation made before any fault: how long after it returned a read
    /// (made before the fault too) still returned an older version (0 when none
    /// did), p50 and p99 in ms.
    pub propagation_p50_ms: f64,
    pub propagation_p99_ms: f64,
}

/// Invalidations of one key, by version: when each returned.
struct Key {
    returned: HashMap<u64, u64>,
    latest: u64,
}

pub fn analyse(ops: &[Op], fault: Option<&Fault>, bound_us: u64) -> Report {
    let mut keys: HashMap<u64, Key> = HashMap::new();
    let mut report = Report::default();
    for op in ops.iter().filter(|op| op.kind == 'w') {
        let key = keys.entry(op.key).or_insert_with(|| Key {
            returned: HashMap::new(),
            latest: 0,
        });
        key.returned.insert(op.version, op.end);
        key.latest = key.latest.max(op.version);
        report.invalidations += 1;
        report.failed += usize::from(!op.ok);
        if fault.is_some_and(|f| op.start >= f.start && op.end <= f.end) {
            report.written_during_fault.insert(op.key);
        }
    }
    let healthy_until = |key: u64| Fault::of(fault, key).map_or(u64::MAX, |f| f.start);
    let mut propagation: HashMap<(u64, u64), u64> = HashMap::new();
    for op in ops.iter().filter(|op| op.kind == 'o') {
        report.overtaken_loads += op.version as usize;
    }
    for op in ops.iter().filter(|op| op.kind == 'm') {
        report.made_again += op.version as usize;
    }
    for op in ops.iter().filter(|op| !matches!(op.kind, 'w' | 'o' | 'm')) {
        let Some(key) = keys.get(&op.key) else {
            continue;
        };
        match op.kind {
            'r' => report.reads += 1,
            'p' => report.peeks += 1,
            'f' => {
                let unseen = usize::from(op.version < key.latest);
                match Fault::of(fault, op.key) {
                    Some(f) if f.end == LASTING => report.unseen_in_fault += unseen,
                    _ => report.unseen += unseen,
                }
                report.failed += usize::from(!op.ok);
                continue;
            }
            _ => unreachable!("unknown kind {}", op.kind),
        }
        if !op.ok {
            report.failed += 1;
            continue;
        }
        if op.kind == 'p' && op.version == 0 {
            continue; // nothing in Redis: a miss is never stale
        }
        // The first invalidation that superseded what the read returned.
        let Some(&superseded_at) = key.returned.get(&(op.version + 1)) else {
            continue;
        };
        if superseded_at >= op.start {
            continue;
        }
        let lag = op.start - superseded_at;
        let untouched =
            fault.is_some_and(|f| f.items.is_some()) && Fault::of(fault, op.key).is_none();
        let fault = Fault::of(fault, op.key);
        let counted_from = match fault {
            Some(f) if op.start >= f.start && op.start <= f.end => None,
            Some(f) if op.start > f.end => Some(op.start - superseded_at.max(f.end)),
            _ => Some(lag),
        };
        let past_bound = counted_from.is_some_and(|lag| lag > bound_us);
        if op.kind == 'p' {
            report.stale_peeks += 1;
            report.stale_peeks_past_bound += usize::from(past_bound);
            continue;
        }
        report.stale += 1;
        report.past_bound += usize::from(past_bound);
        report.worst_lag_ms = report.worst_lag_ms.max(lag as f64 / 1e3);
        if untouched {
            report.worst_untouched_ms = report.worst_untouched_ms.max(lag as f64 / 1e3);
        }
        if let (Some(f), Some(after)) = (fault, counted_from) {
            if op.start > f.end {
                report.worst_after_fault_ms = report.worst_after_fault_ms.max(after as f64 / 1e3);
            }
        }
        if op.start >= healthy_until(op.key) {
            continue; // the fault's doing, not propagation's
        }
        for (&version, &returned) in &key.returned {
            if version > op.version && returned < op.start {
                let window = propagation.entry((op.key, version)).or_default();
                *window = (*window).max(op.start - returned);
            }
        }
    }
    let mut windows: Vec<u64> = keys
        .iter()
        .flat_map(|(k, key)| {
            key.returned
                .iter()
                .filter(|(_, &returned)| returned < healthy_until(*k))
                .map(|(v, _)| propagation.get(&(*k, *v)).copied().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .collect();
    windows.sort_unstable();
    let quantile = |q: f64| {
        windows
            .get(((windows.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |us| *us as f64 / 1e3)
    };
    report.propagation_p50_ms = quantile(0.50);
    report.propagation_p99_ms = quantile(0.99);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: char, key: u64, version: u64, start: u64, end: u64) -> Op {
        Op {
            kind,
            key,
            version,
            start,
            end,
            ok: true,
        }
    }

    #[test]
    fn a_read_after_an_invalidation_returned_is_stale_by_the_gap() {
        let ops = [
            op('w', 0, 1, 100, 200),
            op('r', 0, 0, 150, 160), // started before the invalidation returned: fine
            op('r', 0, 0, 5_200, 5_210), // 5 ms after: stale
            op('r', 0, 1, 6_000, 6_010),
            op('f', 0, 1, 9_000, 9_010),
            op('o', 0, 4, 0, 0), // two readers' counts of overtaken loads
            op('o', 0, 3, 0, 0),
            op('m', 0, 2, 0, 0), // a process's count of invalidations made again
        ];
        let report = analyse(&parse_back(&ops), None, 1_000);
        assert_eq!((report.reads, report.stale, report.past_bound), (3, 1, 1));
        assert_eq!(report.overtaken_loads, 7);
        assert_eq!(report.made_again, 2);
        assert_eq!(report.worst_lag_ms, 5.0);
        assert_eq!(report.propagation_p99_ms, 5.0);
        assert_eq!(report.unseen, 0);
    }

    #[test]
    fn staleness_during_a_fault_is_excused_and_counted_from_its_end_after() {
        let ops = [
            op('w', 0, 1, 100, 200),
            op('w', 1, 1, 2_000, 2_100), // a write while the fault lasts
            op('r', 0, 0, 3_000, 3_010), // inside the fault
            op('r', 0, 0, 10_500, 10_510), // 500 µs after the fault
            op('f', 0, 0, 20_000, 20_010), // never saw version 1
        ];
        let fault = Fault {
            start: 1_000,
            end: 10_000,
            items: None,
        };
        let report = analyse(&parse_back(&ops), Some(&fault), 1_000);
        assert_eq!((report.stale, report.past_bound), (2, 0));
        assert_eq!(report.worst_after_fault_ms, 0.5);
        assert_eq!(report.unseen, 1);
        assert_eq!(Vec::from_iter(report.written_during_fault), [1]);
    }

    #[test]
    fn a_fault_of_some_items_excuses_only_theirs() {
        let ops = [
            op('w', 0, 1, 100, 200),
            op('w', 1, 1, 100, 200),
            op('r', 0, 0, 5_000, 5_010), // item 0 is the fault's: excused
            op('r', 1, 0, 5_000, 5_010), // item 1 is not: 4.8 ms past its invalidation
            op('f', 0, 0, 20_000, 20_010),
            op('f', 1, 0, 20_000, 20_010),
        ];
        let fault = Fault {
            start: 1_000,
            end: LASTING,
            items: Some(BTreeSet::from([0])),
        };
        let report = analyse(&parse_back(&ops), Some(&fault), 1_000);
        assert_eq!((report.stale, report.past_bound), (2, 1));
        assert_eq!((report.unseen, report.unseen_in_fault), (1, 1));
        assert_eq!(report.worst_after_fault_ms, 0.0);
        assert_eq!(report.worst_untouched_ms, 4.8);
    }

    /// Round-trips through the log format, so the parser is tested too.
    fn parse_back(ops: &[Op]) -> Vec<Op> {
        let text: String = ops
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} {} {} {}\n",
                    o.kind,
                    o.key,
                    o.version,
                    o.start,
                    o.end,
                    u8::from(o.ok)
                )
            })
            .collect();
        parse(&text)
    }
}
