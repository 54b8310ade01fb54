//! The inspector against a real redis-server that the example service filled.

#[path = "../../examples/service/src/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../../examples/service/src/launch.rs"]
#[allow(dead_code)]
mod launch;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn cli(redis: &str, namespace: &str, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_stratacache-cli"))
        .args(["--redis", redis, "--namespace", namespace])
        .args(args)
        .output()
        .expect("run the inspector");
    assert!(output.status.success(), "{args:?}: {output:?}");
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

/// What `inspect` says of `cache`.
fn listed(listing: &Value, cache: &str) -> Value {
    listing["caches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cache"] == cache)
        .cloned()
        .unwrap_or_else(|| panic!("{cache} is not listed: {listing}"))
}

/// `user-service`, built beside this test's binary by `cargo test --workspace`.
fn service_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("user-service");
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p stratacache-example-service`)",
        path.display()
    );
    path
}

#[test]
fn the_inspector_lists_the_services_cache_and_decodes_an_entry() {
    let redis = support::RedisServer::start();
    let namespace = "inspected";
    let service = launch::Service::start(
        &service_binary(),
        &[
            ("STRATACACHE_REDIS_URL", &redis.url()),
            ("STRATACACHE_NAMESPACE", namespace),
        ],
    );
    let get = |path: &str| {
        http::Connection::open(&service.addr)
            .unwrap()
            .request("GET", path, None)
            .unwrap()
    };
    for id in [7, 8, 9] {
        assert_eq!(get(&format!("/users/{id}")).0, 200);
    }

    let listing = cli(&redis.url(), namespace, &["inspect"]);
    let users = listed(&listing, "users.get");
    assert_eq!(users["entries"], 3, "{listing}");
    assert_eq!(
        (&users["live"], &users["ended"], &users["tombstones"]),
        (&3.into(), &0.into(), &0.into()),
        "{listing}"
    );
    assert!(users["bytes"].as_u64().unwrap() > 0);
    assert!(
        listing["tag_counters"].as_u64().unwrap() >= 4,
        "users, user:7, user:8, user:9"
    );

    // What an `invalidate!` leaves at an entry key: counted apart.
    let tombstone = [&b"SC\xffgone:"[..], &[0; 24]].concat();
    let gone_key = format!("{namespace}:gone.get:v0:{}", "0".repeat(32));
    let _: () = redis::cmd("SET")
        .arg(&gone_key)
        .arg(tombstone)
        .query(&mut redis.connection())
        .unwrap();
    let listing = cli(&redis.url(), namespace, &["inspect"]);
    let gone = listed(&listing, "gone.get");
    assert_eq!(
        (&gone["entries"], &gone["live"], &gone["tombstones"]),
        (&1.into(), &0.into(), &1.into()),
        "{listing}"
    );

    let entry = cli(&redis.url(), namespace, &["entry", "users.get", "7"]);
    assert_eq!(entry["format"], "postcard");
    assert_eq!(entry["signature"], "unsigned");
    assert!(
        entry["fresh_until"]["from_now_ms"].as_i64().unwrap() > 0,
        "{entry}"
    );
    let text = entry["payload"]["text"].as_str().unwrap();
    assert!(text.contains("user7@example.com"), "{entry}");
    let tags = entry["tags"].as_array().unwrap();
    assert!(tags.iter().all(|t| t["valid"] == true), "{entry}");
    assert!(tags
        .iter()
        .any(|t| t["counter"] == format!("{namespace}:tag:user:7")));

    let counters = cli(&redis.url(), namespace, &["tags", "user:*"]);
    assert!(
        counters["tags"]["user:7"].as_u64().unwrap() > 0,
        "{counters}"
    );

    let invalidated = cli(&redis.url(), namespace, &["invalidate-tag", "user:7"]);
    assert!(invalidated["version"].as_u64() > counters["tags"]["user:7"].as_u64());
    let after = cli(&redis.url(), namespace, &["entry", "users.get", "7"]);
    let stale_tag = after["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["counter"] == format!("{namespace}:tag:user:7"))
        .cloned()
        .unwrap();
    assert_eq!(
        stale_tag["valid"], false,
        "the entry is invalid under its new version: {after}"
    );
    // The service heard the message too: its next read loads again.
    let queries = || {
        let page = get("/metrics").1;
        http::sample(&page, "app_db_queries_total").unwrap()
    };
    let before = queries();
    assert!(support::eventually(Duration::from_secs(5), || {
        get("/users/7");
        queries() > before
    }));
}

/// The inspector's answer, or `None` when it found nothing (or failed).
fn cli_found(redis: &str, namespace: &str, args: &[&str]) -> Option<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_stratacache-cli"))
        .args(["--redis", redis, "--namespace", namespace])
        .args(args)
        .output()
        .expect("run the inspector");
    output
        .status
        .success()
        .then(|| serde_json::from_slice(&output.stdout).expect("one JSON document"))
}

#[test]
fn the_inspector_finds_an_entry_by_a_struct_key_written_as_json() {
    let redis = support::RedisServer::start();
    let namespace = "struct-keys";
    let mut worker = support::Worker::start(&redis.url(), namespace, &[]);
    // A filter with both fields is a postcard struct key (`Some(3)`, `Some(4)`); with
    // one left out by `skip_serializing_if`, it is keyed by its JSON.
    for (command, key_json) in [
        ("search city=3,age=4", r#"{"city": 3, "age": 4}"#),
        ("search city=5", r#"{"city": 5}"#),
    ] {
        worker.get(command);
        let mut found = None;
        assert!(
            support::eventually(Duration::from_secs(5), || {
                found = cli_found(
                    &redis.url(),
                    namespace,
                    &["entry", "worker.search", key_json],
                );
                found.is_some()
            }),
            "no entry found for {key_json} after `{command}`"
        );
        let entry = found.unwrap();
        assert!(
            entry["redis_key"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{namespace}:worker.search:v")),
            "{entry}"
        );
    }
    assert!(
        cli_found(
            &redis.url(),
            namespace,
            &["entry", "worker.search", r#"{"city": 6}"#]
        )
        .is_none(),
        "a key never cached is not found"
    );
}

#[test]
fn the_inspector_reads_every_master_of_a_cluster() {
    let cluster = support::Deployment::start(true, None);
    let namespace = "cluster-inspected";
    let mut worker = support::Worker::start(&cluster.url(), namespace, &[]);
    for id in 1..=30 {
        worker.get(&format!("get {id}"));
    }
    let mut listing = Value::Null;
    assert!(
        support::eventually(Duration::from_secs(5), || {
            listing = cli(&cluster.url(), namespace, &["inspect"]);
            let caches = listing["caches"].as_array().unwrap();
            caches
                .iter()
                .any(|c| c["cache"] == "worker.user" && c["entries"] == 30)
        }),
        "30 entries, spread over the masters: {listing}"
    );
    assert!(listing["tag_counters"].as_u64().unwrap() >= 30, "{listing}");
    let entry = cli(&cluster.url(), namespace, &["entry", "worker.user", "7"]);
    let tags = entry["tags"].as_array().unwrap();
    assert!(
        !tags.is_empty() && tags.iter().all(|t| t["valid"] == true),
        "its tag counters read on their own masters: {entry}"
    );
    let found = cli(&cluster.url(), namespace, &["tags", "user:*"]);
    assert_eq!(found["tags"].as_object().unwrap().len(), 30, "{found}");
}

#[test]
fn the_inspector_invalidates_a_tag_on_a_cluster() {
    let cluster = support::Deployment::start(true, None);
    let namespace = "cluster-tags";
    // Through the node list, and through one node alone, as `inspect` takes it.
    let every_node = cluster.url();
    let one_node = every_node.split(',').next().unwrap().to_owned();
    for (url, tag) in [(&every_node, "user:7"), (&one_node, "user:8")] {
        let answer = cli(url, namespace, &["invalidate-tag", tag]);
        assert_eq!(answer["invalidated"], tag, "{answer}");
        let counter = cluster.get(&format!("{namespace}:tag:{tag}"));
        let counter: u64 = String::from_utf8(counter).unwrap().parse().unwrap();
        assert_eq!(
            answer["version"], counter,
            "read back from its master, through {url}: {answer}"
        );
    }
}

#[test]
fn the_inspector_clears_one_cache_then_every_cache_for_the_fleet() {
    let redis = support::RedisServer::start();
    let namespace = "cleared";
    let counter = |key: &str| -> u64 {
        let value: String = redis::cmd("GET")
            .arg(format!("{namespace}:{key}"))
            .query(&mut redis.connection())
            .unwrap();
        value.parse().unwrap()
    };
    let mut worker = support::Worker::start(&redis.url(), namespace, &[]);
    worker.get("get 7");
    let loaded = worker.get("small 1").loads;
    assert_eq!(worker.get("get 7").loads, loaded, "a hit");

    let answer = cli(&redis.url(), namespace, &["clear", "worker.user"]);
    assert_eq!(answer["cleared"], "worker.user", "{answer}");
    assert_eq!(
        answer["version"],
        counter("cache-tag:worker.user"),
        "{answer}"
    );
    // The worker heard it: its next read of that cache loads again, and of the other
    // cache does not.
    assert!(
        support::eventually(Duration::from_secs(5), || worker.get("get 7").loads
            > loaded),
        "worker.user was not cleared"
    );
    let cleared_one = worker.get("small 1").loads;
    assert_eq!(cleared_one, loaded + 1, "worker.small kept its entry");

    let answer = cli(&redis.url(), namespace, &["clear-all"]);
    assert_eq!(answer["version"], counter("global-tag"), "{answer}");
    assert!(
        support::eventually(Duration::from_secs(5), || worker.get("small 1").loads
            > cleared_one),
        "worker.small was not cleared"
    );
}

#[test]
fn the_inspector_invalidates_one_entry_for_the_fleet() {
    let redis = support::RedisServer::start();
    let namespace = "entry-invalidated";
    let mut worker = support::Worker::start(&redis.url(), namespace, &[]);
    worker.get("get 7");
    let loaded = worker.get("get 8").loads;
    let mut before = Value::Null;
    assert!(
        support::eventually(Duration::from_secs(5), || {
            before = cli(&redis.url(), namespace, &["inspect"]);
            before["caches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["cache"] == "worker.user" && c["live"] == 2)
        }),
        "both written back: {before}"
    );

    let answer = cli(&redis.url(), namespace, &["invalidate", "worker.user", "7"]);
    assert_eq!(answer["invalidated"], "worker.user", "{answer}");
    let listing = cli(&redis.url(), namespace, &["inspect"]);
    let users = listed(&listing, "worker.user");
    assert_eq!(
        (&users["live"], &users["tombstones"]),
        (&1.into(), &1.into()),
        "7's entry is a tombstone, 8's is live: {listing}"
    );
    // The worker heard it: 7 loads again, 8 is still a hit.
    assert!(
        support::eventually(Duration::from_secs(5), || worker.get("get 7").loads
            > loaded),
        "7 was not invalidated in the worker"
    );
    assert_eq!(worker.get("get 8").loads, loaded + 1, "8 kept its entry");

    let missing = cli_found(&redis.url(), namespace, &["invalidate", "worker.user", "9"]);
    assert!(missing.is_none(), "a key never cached is not found");
}
