//! A load emits one `stratacache.load` span with what answered, the outcome and the
//! duration, a batch load included; a hit emits none.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use stratacache::cached;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span's name and its fields, as text.
type SpanRecord = (String, Vec<(String, String)>);

/// Records every span's name and fields, and how many times each was entered.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanRecord>>>, Arc<Mutex<HashMap<u64, usize>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut spans = self.0.lock().unwrap();
        let mut fields = Vec::new();
        span.record(&mut Fields(&mut fields));
        spans.push((span.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        let index = span.into_u64() as usize - 1;
        values.record(&mut Fields(&mut spans[index].1));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, span: &Id) {
        *self.1.lock().unwrap().entry(span.into_u64()).or_default() += 1;
    }
    fn exit(&self, _: &Id) {}
}

/// The spans `calls` opens, run on a fresh runtime under a recording subscriber.
fn recorded(calls: impl std::future::Future<Output = ()>) -> Vec<SpanRecord> {
    recorded_with_enters(calls).0
}

/// The same, with how many times each span was entered, by its position.
fn recorded_with_enters(
    calls: impl std::future::Future<Output = ()>,
) -> (Vec<SpanRecord>, Vec<usize>) {
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || runtime.block_on(calls));
    let spans = recorder.0.lock().unwrap().clone();
    let enters = recorder.1.lock().unwrap();
    let entered = (1..=spans.len() as u64)
        .map(|id| enters.get(&id).copied().unwrap_or(0))
        .collect();
    (spans, entered)
}

/// The value of field `name` of `span` (empty if it has none).
fn field(span: &SpanRecord, name: &str) -> String {
    span.1
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[cached(ttl = "1m", name = "traced.get")]
async fn traced(id: u64) -> Result<u64, String> {
    if id == 0 {
        Err("zero".into())
    } else {
        Ok(id)
    }
}

#[test]
fn a_load_emits_one_span_with_its_outcome_and_a_hit_none() {
    let spans = recorded(async {
        traced(1).await.unwrap(); // load
        traced(1).await.unwrap(); // hit
        traced(0).await.unwrap_err(); // load that fails
    });
    let loads: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name == "stratacache.load")
        .collect();
    assert_eq!(
        loads.len(),
        2,
        "two loads, and no span for the hit: {spans:?}"
    );
    assert_eq!(field(loads[0], "cache"), "traced.get");
    assert_eq!(
        (
            field(loads[0], "answered_by").as_str(),
            field(loads[0], "outcome").as_str()
        ),
        ("loader", "ok")
    );
    assert_eq!(field(loads[1], "outcome"), "error");
    assert!(
        field(loads[0], "micros").parse::<u64>().is_ok(),
        "duration recorded: {:?}",
        loads[0]
    );
}

#[test]
fn every_step_of_a_load_runs_inside_its_span() {
    let (spans, entered) = recorded_with_enters(async {
        traced(2).await.unwrap();
    });
    let load = spans
        .iter()
        .position(|(name, _)| name == "stratacache.load")
        .expect("a load span");
    // Steps 1 and 2 (read Redis, take the fleet lock), the turn of `max_loads`,
    // the loader, then steps 4 to 7: each is polled inside the span, so what they
    // log is the load's.
    assert!(
        entered[load] >= 4,
        "the load span was entered {} times: {spans:?}",
        entered[load]
    );
}

#[cached(ttl = "1m", batch, name = "traced.many")]
async fn traced_many(ids: &[u64]) -> HashMap<u64, u64> {
    ids.iter().map(|id| (*id, id * 2)).collect()
}

/// The batch leader once drifted from the single-key one: it opened no span.
#[test]
fn a_batch_load_emits_one_span_and_one_duration_sample() {
    let spans = recorded(async {
        assert_eq!(traced_many(&[1, 2, 3]).await.len(), 3); // one load of 3 keys
        assert_eq!(traced_many(&[1, 2]).await.len(), 2); // hits
    });
    let loads: Vec<_> = spans
        .iter()
        .filter(|(name, fields)| {
            name == "stratacache.load"
                && fields
                    .iter()
                    .any(|(f, v)| f == "cache" && v == "traced.many")
        })
        .collect();
    assert_eq!(loads.len(), 1, "one span for one batch load: {spans:?}");
    let load = |name: &str| field(loads[0], name);
    assert_eq!(
        (load("answered_by"), load("outcome"), load("keys")),
        ("loader".into(), "ok".into(), "3".into())
    );
    assert!(load("micros").parse::<u64>().is_ok(), "{:?}", loads[0]);
    let stats = stratacache::stats();
    let histogram = &stats.cache("traced.many").unwrap().load_histogram;
    assert_eq!(histogram.count, 1, "one duration sample for one batch load");
}
