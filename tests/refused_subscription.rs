//! A refusal that lasts is one warning, not one per attempt: against a server that
//! wants a password the URL lacks, the backplane tries to subscribe again every
//! 500 ms for as long as the process runs. In a binary of its own: it sets the
//! process's subscriber and calls `init`, once per process.

#[macro_use]
mod support;
// Not in `support`: the example service's tests share it and have no `tracing`.
#[path = "support/events.rs"]
mod events;

use stratacache::{cached, Config};
use support::RedisServer;
use tracing::Level;

#[cached(ttl = "1m", name = "refused.user")]
async fn user(id: u64) -> String {
    format!("user {id}")
}

/// The backplane's refused subscriptions logged so far, at any level.
fn refusals() -> Vec<events::Logged> {
    let logged = events::logged(Level::DEBUG, "::backplane");
    let refused = |(_, _, message): &events::Logged| message.contains("could not subscribe");
    logged.into_iter().filter(refused).collect()
}

#[test]
fn a_subscription_refused_again_and_again_is_one_warning() {
    let server = RedisServer::start_with(Some("s3cret"));
    let url = server.url().replace(":s3cret@", "");
    events::keep();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        stratacache::init(Config::new().redis_url(url).namespace("refused")).unwrap();
        assert_eq!(user(1).await, "user 1", "a call answers");
        // The backplane tries again 100, 200, 400, then every 500 ms: wait, bounded,
        // until it has been refused four times.
        events::until_found(4, refusals).await;
    });
    let warnings = events::logged(Level::WARN, "::backplane");
    assert_eq!(
        warnings.len(),
        1,
        "the backplane warned more than once about one refusal that lasted: {warnings:?}"
    );
}
