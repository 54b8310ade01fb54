//! A refusal that lasts is one warning, not one per attempt: against a server that
//! wants a password the URL lacks, the backplane tries to subscribe again every
//! 500 ms for as long as the process runs. In a binary of its own: it sets the
//! process's subscriber and calls `init`, once per process.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stratacache::{cached, Config};
use support::RedisServer;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts the backplane's warnings.
struct BackplaneWarnings(&'static AtomicU64);

impl Subscriber for BackplaneWarnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        if *metadata.level() <= Level::WARN && metadata.target().ends_with("::backplane") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

static WARNINGS: AtomicU64 = AtomicU64::new(0);

#[cached(ttl = "1m", name = "refused.user")]
async fn user(id: u64) -> String {
    format!("user {id}")
}

#[test]
fn a_subscription_refused_again_and_again_is_one_warning() {
    let server = RedisServer::start_with(Some("s3cret"));
    let url = server.url().replace(":s3cret@", "");
    tracing::subscriber::set_global_default(BackplaneWarnings(&WARNINGS)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        stratacache::init(Config::new().redis_url(url).namespace("refused")).unwrap();
        // The backplane's attempts come 100, 200, 400, then every 500 ms apart: at
        // least five in 2.5 s.
        for id in 0..25 {
            assert_eq!(user(id).await, format!("user {id}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let warnings = WARNINGS.load(Ordering::SeqCst);
    assert_eq!(
        warnings, 1,
        "the backplane warned {warnings} times about one refusal that lasted"
    );
}
