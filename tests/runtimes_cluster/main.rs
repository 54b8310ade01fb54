//! Runtimes that come and go, on a Redis Cluster (the test is in `runtimes/body.rs`).

#[path = "../support/mod.rs"]
mod support;

#[path = "../runtimes/body.rs"]
mod body;

#[test]
fn a_runtime_that_ends_takes_no_redis_connection_with_it() {
    body::a_runtime_that_ends_takes_no_redis_connection_with_it(true);
}
