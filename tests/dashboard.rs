//! `dashboards/stratacache.json`, the Grafana dashboard: it parses, and every
//! metric it reads is one that `stratacache::prometheus()` exports.

use prometheus_parse::Scrape;
use stratacache::cached;

#[cached(ttl = "1m", name = "dashboard.probe")]
async fn probe(id: u64) -> u64 {
    id
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the export parses")
}

/// Every expression of every panel in `dashboards/stratacache.json`.
fn dashboard_expressions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/stratacache.json");
    let text = std::fs::read_to_string(path).expect("the dashboard is in the repository");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("it is JSON");
    let panels = dashboard["panels"].as_array().expect("it has panels");
    assert!(panels.len() >= 6, "{} panels", panels.len());
    panels
        .iter()
        .flat_map(|panel| {
            panel["targets"]
                .as_array()
                .expect("every panel has targets")
        })
        .map(|target| {
            target["expr"]
                .as_str()
                .expect("a PromQL expression")
                .to_owned()
        })
        .collect()
}

/// The metric names an expression reads: the `stratacache_*` identifiers.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("stratacache_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

#[tokio::test]
async fn the_grafana_dashboard_names_only_metrics_that_exist() {
    probe(5).await;
    let exported: std::collections::BTreeSet<String> = parse(&stratacache::prometheus())
        .samples
        .into_iter()
        .map(|s| s.metric)
        .collect();
    // prometheus-parse folds a histogram's `_bucket`, `_sum`, `_count` into its name.
    let histogram = "stratacache_load_duration_seconds";
    assert!(exported.contains(histogram));
    let mut read = 0;
    for expr in dashboard_expressions() {
        for name in metric_names(&expr) {
            let base = name.strip_suffix("_bucket").filter(|b| *b == histogram);
            assert!(
                exported.contains(base.unwrap_or(&name)),
                "the dashboard reads {name}, which is not exported (in `{expr}`)"
            );
            read += 1;
        }
    }
    assert!(read >= 15, "{read} metric reads");
    for wanted in [
        "stratacache_hits_total",
        "stratacache_load_duration_seconds_bucket",
        "stratacache_stale_served_total",
        "stratacache_l2_errors_total",
        "stratacache_outbox_pending",
    ] {
        let shown = dashboard_expressions().iter().any(|e| e.contains(wanted));
        assert!(shown, "the dashboard shows {wanted}");
    }
}
