//! One URL naming a node of a Redis Cluster, without `cluster`: the node answers
//! `MOVED` or `CROSSSLOT` for most keys, and a tag's counter held by another node
//! would take no invalidation. The tier is treated as down (the circuit opens, so
//! misses stop making round trips that fail) and one error names the setting. In a
//! binary of its own: it sets the process's subscriber and calls `init`, once per
//! process.

#[macro_use]
mod support;
// Not in `support`: the example service's tests share it and have no `tracing`.
#[path = "support/events.rs"]
mod events;

use stratacache::{cached, Config};
use support::RedisCluster;
use tracing::Level;

#[cached(ttl = "1m", tags = ["user:{id}"], name = "misdirected.user")]
async fn user(id: u64) -> String {
    format!("user {id}")
}

#[test]
fn a_url_naming_a_cluster_node_without_cluster_is_one_error_and_an_open_circuit() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let one_node = url.split(',').next().unwrap().to_owned();
    events::keep();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let errors = runtime.block_on(async {
        stratacache::init(Config::new().redis_url(one_node).namespace("misdirected")).unwrap();
        for id in 0..40 {
            assert_eq!(user(id).await, format!("user {id}"), "every call answers");
        }
        stratacache::stats()
            .cache("misdirected.user")
            .unwrap()
            .l2_errors
    });
    assert!(
        errors <= 10,
        "40 misses made {errors} Redis calls that failed: the circuit never opened"
    );
    let logged = events::logged(Level::ERROR, "::l2");
    assert_eq!(logged.len(), 1, "one error names the setting: {logged:?}");
    assert!(logged[0].2.contains("Config::cluster"), "{logged:?}");
}
