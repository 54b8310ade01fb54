//! With the `metrics` feature, the statistics reach a `metrics` recorder (here
//! metrics-util's debugging recorder) under the same names as the Prometheus export.
//! Run by `.ci/run` as `cargo test -p stratacache --features metrics --test metrics_facade`.

use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use stratacache::cached;

#[cached(ttl = "1m", name = "facade.get")]
async fn get(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    id
}

/// A metric's name, its labels, and its value.
type Sample = (String, Vec<(String, String)>, DebugValue);

fn value_of<'a>(
    snapshot: &'a [Sample],
    name: &str,
    label: Option<(&str, &str)>,
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(metric, labels, value)| {
        let cache = labels
            .iter()
            .any(|(k, v)| k == "cache" && v == "facade.get");
        let extra =
            label.is_none_or(|(key, want)| labels.iter().any(|(k, v)| k == key && v == want));
        (metric == name && cache && extra).then_some(value)
    })
}

#[tokio::test]
async fn counters_and_load_durations_reach_the_metrics_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder in this process");
    for id in [1, 1, 1, 2] {
        get(id).await;
    }
    // Counters are published once a second by the clock thread.
    let deadline = Instant::now() + Duration::from_secs(5);
    // The debugging recorder drains histogram samples on every snapshot: keep them.
    let mut durations = Vec::new();
    let snapshot = loop {
        let snapshot: Vec<Sample> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        if let Some(DebugValue::Histogram(samples)) =
            value_of(&snapshot, "stratacache_load_duration_seconds", None)
        {
            durations.extend(samples.iter().map(|d| d.into_inner()));
        }
        if matches!(
            value_of(&snapshot, "stratacache_hits_total", Some(("level", "l1"))),
            Some(DebugValue::Counter(2))
        ) {
            break snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "no published counters after 5 s: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        value_of(&snapshot, "stratacache_misses_total", None),
        Some(&DebugValue::Counter(2))
    );
    assert_eq!(
        value_of(
            &snapshot,
            "stratacache_loads_total",
            Some(("outcome", "ok"))
        ),
        Some(&DebugValue::Counter(2))
    );
    assert_eq!(durations.len(), 2, "one sample per load");
    assert!(durations.iter().all(|&d| d >= 0.002), "{durations:?}");
}
