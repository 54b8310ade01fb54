//! Statistics in the Prometheus text exposition format. Metric names are stable;
//! labels are the cache name and, where it applies, the level or outcome. Tags never
//! become labels: their number is unbounded.

use std::fmt::Write;

use crate::stats::OutboxSnapshot;
use crate::stats::{CacheStatsSnapshot, StatsSnapshot};

type Sample = fn(&CacheStatsSnapshot) -> Vec<(Option<(&'static str, &'static str)>, u64)>;

const COUNTERS: &[(&str, &str, &str, Sample)] = &[
    (
        "stratacache_hits_total",
        "counter",
        "Calls answered from a cache tier.",
        |c| {
            vec![
                (Some(("level", "l1")), c.l1_hits),
                (Some(("level", "l2")), c.l2_hits),
            ]
        },
    ),
    (
        "stratacache_misses_total",
        "counter",
        "Calls answered by a load.",
        |c| vec![(None, c.misses)],
    ),
    (
        "stratacache_loads_total",
        "counter",
        "Loader runs, by outcome (error: Err or panic).",
        |c| {
            vec![
                (
                    Some(("outcome", "ok")),
                    c.loads.saturating_sub(c.load_errors),
                ),
                (Some(("outcome", "error")), c.load_errors),
            ]
        },
    ),
    (
        "stratacache_stale_served_total",
        "counter",
        "Stale values served while refreshing.",
        |c| vec![(None, c.stale_served)],
    ),
    (
        "stratacache_l2_errors_total",
        "counter",
        "Redis faults and unusable Redis values (each a miss).",
        |c| vec![(None, c.l2_errors)],
    ),
    (
        "stratacache_oversized_total",
        "counter",
        "Values over max_payload, kept in process and not written to Redis.",
        |c| vec![(None, c.oversized)],
    ),
    (
        "stratacache_schema_mismatches_total",
        "counter",
        "Values in Redis written with another shape of the value type (misses).",
        |c| vec![(None, c.schema_mismatches)],
    ),
    (
        "stratacache_rejected_total",
        "counter",
        "Values in Redis not signed by a configured secret (misses).",
        |c| vec![(None, c.rejected)],
    ),
    (
        "stratacache_invalid_total",
        "counter",
        "Loaded values refused by validate, returned but not cached.",
        |c| vec![(None, c.invalid)],
    ),
    (
        "stratacache_load_queue",
        "gauge",
        "Loads waiting for their turn under max_loads.",
        |c| vec![(None, c.load_queue)],
    ),
    (
        "stratacache_queued_loads_total",
        "counter",
        "Loads that waited for their turn under max_loads.",
        |c| vec![(None, c.queued_loads)],
    ),
    (
        "stratacache_load_queue_wait_microseconds_total",
        "counter",
        "Total time loads waited for their turn under max_loads.",
        |c| vec![(None, c.load_queue_wait_micros)],
    ),
    (
        "stratacache_invalidations_total",
        "counter",
        "Entries dropped by invalidations.",
        |c| vec![(None, c.invalidations)],
    ),
    (
        "stratacache_entries",
        "gauge",
        "Entries held in the in-process tier.",
        |c| vec![(None, c.entries)],
    ),
];

pub(crate) fn render(stats: &StatsSnapshot) -> String {
    let mut out = String::new();
    if stats.caches.is_empty() && stats.outbox == OutboxSnapshot::default() {
        return out;
    }
    for (name, kind, help, sample) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for cache in &stats.caches {
            for (label, value) in sample(cache) {
                let cache_label = escape(&cache.name);
                match label {
                    Some((key, label)) => {
                        let _ = writeln!(
                            out,
                            "{name}{{cache=\"{cache_label}\",{key}=\"{label}\"}} {value}"
                        );
                    }
                    None => {
                        let _ = writeln!(out, "{name}{{cache=\"{cache_label}\"}} {value}");
                    }
                }
            }
        }
    }
    let name = "stratacache_load_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Loader run time.\n# TYPE {name} histogram"
    );
    for cache in &stats.caches {
        let cache_label = escape(&cache.name);
        let histogram = &cache.load_histogram;
        for (le_micros, count) in &histogram.buckets {
            let le = *le_micros as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{cache=\"{cache_label}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{cache=\"{cache_label}\",le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{cache=\"{cache_label}\"}} {}",
            histogram.sum_micros as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "{name}_count{{cache=\"{cache_label}\"}} {}",
            histogram.count
        );
    }
    render_outbox(&mut out, &stats.outbox);
    render_process_counter(
        &mut out,
        UNAUTHENTICATED,
        "Backplane messages ignored as not signed by a configured secret.",
        stats.unauthenticated_messages,
    );
    render_process_counter(
        &mut out,
        MADE_AGAIN,
        "Invalidations made again because Redis had lost them.",
        stats.invalidations_made_again,
    );
    out
}

/// A counter of the whole process, with no labels.
fn render_process_counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// The outbox's figures, as `(event label, value)`: how many invalidations Redis
/// could not take at once, and what became of them.
fn outbox_events(outbox: &OutboxSnapshot) -> [(&'static str, u64); 4] {
    [
        ("queued", outbox.queued),
        ("delivered", outbox.delivered),
        ("coalesced", outbox.coalesced),
        ("overflowed", outbox.overflowed),
    ]
}

const OUTBOX_PENDING: &str = "stratacache_outbox_pending";
const OUTBOX_EVENTS: &str = "stratacache_outbox_invalidations_total";
const UNAUTHENTICATED: &str = "stratacache_unauthenticated_messages_total";
const MADE_AGAIN: &str = "stratacache_invalidations_made_again_total";

fn render_outbox(out: &mut String, outbox: &OutboxSnapshot) {
    let _ = writeln!(
        out,
        "# HELP {OUTBOX_PENDING} Invalidations waiting for Redis.\n# TYPE {OUTBOX_PENDING} gauge\n{OUTBOX_PENDING} {}",
        outbox.pending
    );
    let _ = writeln!(
        out,
        "# HELP {OUTBOX_EVENTS} Invalidations Redis could not take at once, by what became of them.\n# TYPE {OUTBOX_EVENTS} counter"
    );
    for (event, value) in outbox_events(outbox) {
        let _ = writeln!(out, "{OUTBOX_EVENTS}{{event=\"{event}\"}} {value}");
    }
}

/// Publishes every cache's counters through the `metrics` crate facade, as absolute
/// values (the clock thread calls it every second; loads record their durations as
/// they happen). Same names and labels as [`prometheus()`](crate::prometheus).
#[cfg(feature = "metrics")]
pub(crate) fn publish_to_metrics_facade(stats: StatsSnapshot) {
    metrics::gauge!(OUTBOX_PENDING).set(stats.outbox.pending as f64);
    metrics::counter!(UNAUTHENTICATED).absolute(stats.unauthenticated_messages);
    metrics::counter!(MADE_AGAIN).absolute(stats.invalidations_made_again);
    for (event, value) in outbox_events(&stats.outbox) {
        metrics::counter!(OUTBOX_EVENTS, "event" => event).absolute(value);
    }
    for cache in stats.caches {
        for (name, kind, _, sample) in COUNTERS {
            for (label, value) in sample(&cache) {
                let mut labels = vec![metrics::Label::new("cache", cache.name.clone())];
                if let Some((key, label)) = label {
                    labels.push(metrics::Label::new(key, label));
                }
                if *kind == "gauge" {
                    metrics::gauge!(*name, labels).set(value as f64);
                } else {
                    metrics::counter!(*name, labels).absolute(value);
                }
            }
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
