//! The Prometheus export parses with a real parser and agrees with `stats()`.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use stratacache::cached;

#[cached(ttl = "1m", name = "metrics.users")]
async fn user(id: u64) -> Result<String, String> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    if id == 0 {
        Err("no user 0".into())
    } else {
        Ok(format!("user {id}"))
    }
}

#[cached(local, name = "metrics \"quoted\" \\ name")]
async fn oddly_named(id: u64) -> u64 {
    id
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the export parses")
}

fn sample(scrape: &Scrape, metric: &str, cache: &str, label: Option<(&str, &str)>) -> f64 {
    let found = scrape.samples.iter().find(|s| {
        s.metric == metric
            && s.labels.get("cache") == Some(cache)
            && label.is_none_or(|(key, value)| s.labels.get(key) == Some(value))
    });
    match found
        .unwrap_or_else(|| panic!("no sample {metric} for {cache} {label:?}"))
        .value
    {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric} is not a number: {other:?}"),
    }
}

#[tokio::test]
async fn the_export_parses_and_matches_the_snapshot() {
    for id in [1, 2, 1, 1, 0, 0] {
        let _ = user(id).await;
    }
    oddly_named(1).await;
    oddly_named(1).await;

    let text = stratacache::prometheus();
    let scrape = parse(&text);
    let stats = stratacache::stats();
    for cache in &stats.caches {
        // prometheus-parse returns label values as written (it does not unescape), so
        // the lookup uses the escaped form the exposition format requires.
        let escaped = cache.name.replace('\\', "\\\\").replace('"', "\\\"");
        let name = escaped.as_str();
        let counter = |metric, label| sample(&scrape, metric, name, label) as u64;
        assert_eq!(
            counter("stratacache_hits_total", Some(("level", "l1"))),
            cache.l1_hits
        );
        assert_eq!(
            counter("stratacache_hits_total", Some(("level", "l2"))),
            cache.l2_hits
        );
        assert_eq!(counter("stratacache_misses_total", None), cache.misses);
        assert_eq!(
            counter("stratacache_loads_total", Some(("outcome", "error"))),
            cache.load_errors
        );
        assert_eq!(
            counter("stratacache_loads_total", Some(("outcome", "ok"))),
            cache.loads - cache.load_errors
        );
        assert_eq!(
            counter("stratacache_stale_served_total", None),
            cache.stale_served
        );
        assert_eq!(
            counter("stratacache_l2_errors_total", None),
            cache.l2_errors
        );
        assert_eq!(
            counter("stratacache_invalidations_total", None),
            cache.invalidations
        );
        assert_eq!(counter("stratacache_entries", None), cache.entries);
    }

    for (metric, value) in [
        (
            "stratacache_unauthenticated_messages_total",
            stats.unauthenticated_messages,
        ),
        (
            "stratacache_invalidations_made_again_total",
            stats.invalidations_made_again,
        ),
    ] {
        let sample = scrape.samples.iter().find(|s| s.metric == metric);
        let exported = match sample.unwrap_or_else(|| panic!("no sample {metric}")).value {
            Value::Counter(v) => v as u64,
            ref other => panic!("{metric} is not a counter: {other:?}"),
        };
        assert_eq!(exported, value, "{metric}");
    }

    let users = stats.cache("metrics.users").unwrap();
    assert_eq!(
        (users.l1_hits, users.misses, users.loads, users.load_errors),
        (2, 4, 4, 2)
    );
    assert!(
        stats.cache("metrics \"quoted\" \\ name").is_some(),
        "odd name kept"
    );
    assert!(
        text.contains(r#"stratacache_hits_total{cache="metrics \"quoted\" \\ name",level="l1"} 1"#)
    );

    // The histogram: every load took at least 3 ms, so the 2.5 ms bucket is empty and
    // the +Inf bucket holds them all.
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "stratacache_load_duration_seconds"
                && s.labels.get("cache") == Some("metrics.users")
        })
        .expect("a histogram for metrics.users");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {:?}", histogram.value)
    };
    let at = |le: f64| {
        buckets
            .iter()
            .find(|b| b.less_than == le || (b.less_than - le).abs() < 1e-9)
            .map(|b| b.count)
    };
    assert_eq!(at(0.0025), Some(0.0));
    assert_eq!(at(f64::INFINITY), Some(4.0));
    assert!(text.contains("stratacache_load_duration_seconds_count{cache=\"metrics.users\"} 4"));
    let sum_line = text
        .lines()
        .find(|l| l.starts_with("stratacache_load_duration_seconds_sum{cache=\"metrics.users\"}"))
        .unwrap();
    let sum: f64 = sum_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(sum >= 0.012, "four loads of at least 3 ms each: {sum}");
}
