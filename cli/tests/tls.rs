//! The inspector against a real redis-server that speaks only TLS to it, its
//! certificate signed by a private CA.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;

use common::{answer, failure, run as cli};

#[test]
fn the_inspector_speaks_tls_with_the_private_ca_it_is_given() {
    let redis = support::RedisServer::start_tls();
    let url = redis.tls_url();
    let ca_file = redis.ca_file().display().to_string();
    let base = [
        "--redis",
        url.as_str(),
        "--namespace",
        "tls",
        "--ca-file",
        ca_file.as_str(),
    ];

    let invalidated = answer(cli(&[&base[..], &["invalidate-tag", "user:7"]].concat()));
    assert_eq!(invalidated["invalidated"], "user:7", "{invalidated}");
    let version = invalidated["version"]
        .as_u64()
        .expect("the counter's version");

    let tags = answer(cli(&[&base[..], &["tags", "user:*"]].concat()));
    assert_eq!(
        tags["tags"]["user:7"].as_u64(),
        Some(version),
        "the counter set through TLS is listed through TLS: {tags}"
    );
    answer(cli(&[&base[..], &["inspect"]].concat()));

    // The same through the environment, as the services configure it.
    let output = Command::new(env!("CARGO_BIN_EXE_stratacache-cli"))
        .args([
            "--redis",
            url.as_str(),
            "--namespace",
            "tls",
            "tags",
            "user:*",
        ])
        .env("STRATACACHE_REDIS_CA_FILE", &ca_file)
        .output()
        .expect("run the inspector");
    assert_eq!(answer(output), tags);
}

#[test]
fn a_tls_server_whose_ca_is_not_given_is_refused_with_the_reason() {
    let redis = support::RedisServer::start_tls();
    let url = redis.tls_url();
    let stderr = failure(cli(&["--redis", url.as_str(), "tags", "*"]));
    assert!(stderr.contains("cannot reach Redis at"), "{stderr}");
}

#[test]
fn an_unreadable_ca_file_fails_before_any_connection() {
    let stderr = failure(cli(&[
        "--redis",
        "rediss://127.0.0.1:1",
        "--ca-file",
        "/nonexistent/ca.crt",
        "inspect",
    ]));
    assert!(
        stderr.contains("cannot read the CA file /nonexistent/ca.crt"),
        "{stderr}"
    );
}
