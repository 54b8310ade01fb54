//! A process-wide `tracing` subscriber that keeps every event's level, target and
//! message, for the tests that check what stratacache logs (one binary each: the
//! subscriber, like `stratacache::init`, is set once per process). Included with
//! `#[path]` by the binaries that use it.

use std::fmt::Debug;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// An event: its level, its target (the module that logged it) and its message
/// followed by its other fields.
pub type Logged = (Level, String, String);

static EVENTS: Mutex<Vec<Logged>> = Mutex::new(Vec::new());

struct Keeper;

/// The message, then each other field as ` name=value`.
struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Keeper {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let metadata = event.metadata();
        let logged = (*metadata.level(), metadata.target().to_owned(), message);
        EVENTS.lock().unwrap().push(logged);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Keeps every event of this process from now on (the first call sets the subscriber).
pub fn keep() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| tracing::subscriber::set_global_default(Keeper).expect("no other subscriber"));
}

/// The events kept at `level` or above logged in `module` or below it (whose target
/// contains it: `::l2` for `stratacache_runtime::l2::renewal`).
pub fn logged(level: Level, module: &str) -> Vec<Logged> {
    let events = EVENTS.lock().unwrap();
    let wanted = |(at, target, _): &&Logged| *at <= level && target.contains(module);
    events.iter().filter(wanted).cloned().collect()
}

/// Waits, at most 10 s, until `found` returns `count` events or more; fails the test
/// with what it found otherwise.
#[allow(dead_code)] // Not every binary that includes this waits.
pub async fn until_found<T: Debug>(count: usize, found: impl Fn() -> Vec<T>) {
    let started = std::time::Instant::now();
    while found().len() < count {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            found()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
