//! Runtimes that come and go, on a standalone server (the test is in `body.rs`).

#[path = "../support/mod.rs"]
mod support;

mod body;

#[test]
fn a_runtime_that_ends_takes_no_redis_connection_with_it() {
    body::a_runtime_that_ends_takes_no_redis_connection_with_it(false);
}
