//! What the Redis tier stores can be trusted: a changed value shape, a corrupted or
//! forged entry and an unsigned invalidation are all caught, across real processes
//! (`examples/cache_worker.rs`, `examples/schema_v*.rs`) against a real
//! `redis-server`.

#[macro_use]
mod support;

use std::process::Command;
use std::time::Duration;

use support::{eventually, example_path, Deployment, Worker};

const NS: &str = "p";

fn only_key(server: &Deployment, cache: &str) -> String {
    let keys = server.keys(&format!("{NS}:{cache}:v0:*"));
    assert_eq!(keys.len(), 1, "one entry of {cache}: {keys:?}");
    keys.into_iter().next().unwrap()
}

fn with_secret(server: &Deployment, secret: &str) -> Worker {
    Worker::start_with_env(&server.url(), NS, &[], &[("STRATACACHE_SECRET", secret)])
}

/// Runs `examples/schema_vN` once and returns what it printed.
fn schema_deploy(server: &Deployment, version: u8) -> serde_json::Value {
    let output = Command::new(example_path(&format!("schema_v{version}")))
        .args([server.url().as_str(), NS])
        .output()
        .expect("run the schema example");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

#[test]
fn a_deploy_with_swapped_fields_loads_instead_of_misreading() {
    let server = Deployment::standalone();
    let first = schema_deploy(&server, 1);
    assert_eq!(
        (first["id"].as_u64(), first["balance"].as_u64()),
        (Some(7), Some(700))
    );
    let again = schema_deploy(&server, 1);
    assert_eq!(again["l2_hits"], 1, "the same deploy reads its own entry");
    // `schema.brief`'s entry ends 100 ms after it was written; its key stays (60 s).
    let brief = only_key(&server, "schema.brief");
    let ended = eventually(Duration::from_secs(5), || {
        server.query::<i64>(redis::cmd("PTTL").arg(&brief)) < 59_850
    });
    assert!(ended, "schema.brief's 100 ms entry never ended");

    let second = schema_deploy(&server, 2);
    assert_eq!(
        (second["id"].as_u64(), second["balance"].as_u64()),
        (Some(7), Some(700)),
        "postcard alone would have read id 700, balance 7"
    );
    assert_eq!(
        (
            second["loads"].as_u64(),
            second["schema_mismatches"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        second["brief_schema_mismatches"], 0,
        "an ended entry of the old shape is a plain miss, not a mismatch"
    );
    let after = schema_deploy(&server, 2);
    assert_eq!(after["l2_hits"], 1, "the load overwrote the old shape");
}

#[test]
fn a_large_compressible_value_is_stored_compressed_and_read_back() {
    let server = Deployment::standalone();
    let mut writer = Worker::start(&server.url(), NS, &[]);
    let written = writer.get("text 1");
    assert!(
        written.value.starts_with("200000 bytes"),
        "{}",
        written.value
    );
    let stored: usize = server.query(redis::cmd("STRLEN").arg(only_key(&server, "worker.text")));
    assert!(
        stored < 200_000 / 5,
        "{stored} bytes in Redis for a 200 kB value"
    );

    let mut reader = Worker::start(&server.url(), NS, &[]);
    let read = reader.get("text 1");
    assert_eq!(
        (read.value.as_str(), read.l2_hits, read.loads),
        (written.value.as_str(), 1, 0)
    );
}

/// A value written by one worker with `command`, read back by another from Redis:
/// its payload (which holds `needle`) is JSON.
fn shared_as_json(command: &str, cache: &str, needle: &str) {
    let server = Deployment::standalone();
    let mut writer = Worker::start(&server.url(), NS, &[]);
    let written = writer.get(command);
    assert!(written.value.contains(needle), "{}", written.value);
    let stored = server.get(&only_key(&server, cache));
    assert!(
        stored.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "the payload is JSON: {:?}",
        String::from_utf8_lossy(&stored)
    );

    let mut reader = Worker::start(&server.url(), NS, &[]);
    let read = reader.get(command);
    assert_eq!(
        (
            read.value.as_str(),
            read.l2_hits,
            read.l2_errors,
            read.loads
        ),
        (written.value.as_str(), 1, 0, 0),
        "read from Redis, not loaded again"
    );
}

/// postcard cannot decode a type whose `Deserialize` asks the input what it holds
/// (internally tagged and untagged enums, `serde_json::Value`, `#[serde(flatten)]`):
/// such values go to Redis as JSON, and another process reads them back.
#[test]
fn a_value_postcard_cannot_decode_is_shared_as_json() {
    shared_as_json("document 3", "worker.document", r#""kind":"Profile""#);
}

/// postcard reads fields by position: a value whose `Serialize` leaves some out
/// (`skip_serializing_if`) would not read back, so it goes to Redis as JSON.
#[test]
fn a_value_that_skips_fields_when_serialized_is_shared_as_json() {
    shared_as_json("profile 4", "worker.profile", r#""id":4,"loaded_by""#);
}

/// Two keys that postcard alone serializes alike (fields left out by
/// `skip_serializing_if`) are two entries in Redis, not one read for both.
#[test]
fn keys_that_skip_fields_when_serialized_do_not_share_an_entry() {
    let server = Deployment::standalone();
    let mut writer = Worker::start(&server.url(), NS, &[]);
    let by_city = writer.get("search city=3");
    assert_eq!(by_city.value, "city Some(3) age None");

    let mut reader = Worker::start(&server.url(), NS, &[]);
    let by_age = reader.get("search age=3");
    assert_eq!(
        (by_age.value.as_str(), by_age.loads),
        ("city None age Some(3)", 1),
        "its own value, loaded"
    );
    let again = reader.get("search city=3");
    assert_eq!(
        (again.value.as_str(), again.l2_hits, again.loads),
        ("city Some(3) age None", 1, 1),
        "the writer's entry, from Redis"
    );
}

/// The position of `needle` in an entry, to flip a byte of the payload.
fn position(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the payload is in clear")
}

#[test]
fn a_process_with_a_secret_reads_only_values_signed_by_one_of_its_secrets() {
    let server = Deployment::standalone();
    let key_of_user_1 = || only_key(&server, "worker.user");

    // Written by k2, then unsigned: a k1 process refuses both, loads and overwrites.
    for (what, writer_secret) in [("signed with k2", Some("k2")), ("unsigned", None)] {
        server.query::<()>(&redis::cmd("FLUSHALL"));
        let mut writer = match writer_secret {
            Some(secret) => with_secret(&server, secret),
            None => Worker::start(&server.url(), NS, &[]),
        };
        writer.get("get 1");
        let mut k1 = with_secret(&server, "k1");
        let answer = k1.get("get 1");
        assert_eq!((answer.loads, answer.rejected), (1, 1), "{what}: refused");
        let mut k1_again = with_secret(&server, "k1");
        assert_eq!(k1_again.get("get 1").l2_hits, 1, "{what}: overwritten");
    }

    // Signed by k1: a process holding `k2,k1` (rotation under way) reads it.
    let mut rotating = with_secret(&server, "k2,k1");
    let read = rotating.get("get 1");
    assert_eq!((read.l2_hits, read.loads, read.rejected), (1, 0, 0));

    // One payload byte flipped: the checksum catches it.
    let valid = server.get(&key_of_user_1());
    let mut flipped = valid.clone();
    flipped[position(&valid, b"loaded") + 5] ^= 1;
    server.set(&key_of_user_1(), &flipped);
    let answer = with_secret(&server, "k1").get("get 1");
    assert_eq!(
        (answer.loads, answer.l2_errors),
        (1, 1),
        "a flipped byte is a miss"
    );

    // A forger who fixes the checksum still lacks the MAC.
    let mut forged = valid.clone();
    forged[position(&valid, b"loaded") + 5] ^= 1;
    let body = forged.len() - 8;
    let checksum = xxhash_rust::xxh3::xxh3_64(&forged[..body]).to_le_bytes();
    forged[body..].copy_from_slice(&checksum);
    server.set(&key_of_user_1(), &forged);
    let answer = with_secret(&server, "k1").get("get 1");
    assert_eq!(
        (answer.loads, answer.rejected),
        (1, 1),
        "a forged value is refused"
    );
    let unverified = Worker::start(&server.url(), NS, &[]).get("get 1");
    assert_eq!(unverified.l2_hits, 1, "the load replaced the forgery");
}

#[test]
fn an_encrypted_value_is_opaque_in_redis_and_read_by_another_process() {
    let server = Deployment::standalone();
    let env = [
        ("STRATACACHE_SECRET", "k1"),
        ("STRATACACHE_ENCRYPT", "true"),
    ];
    let mut writer = Worker::start_with_env(&server.url(), NS, &[], &env);
    let written = writer.get("get 3");
    let stored = server.get(&only_key(&server, "worker.user"));
    assert!(written.value.starts_with("user 3 loaded"));
    assert!(
        !stored.windows(13).any(|w| w == b"user 3 loaded"),
        "the plaintext is in Redis"
    );
    let read = Worker::start_with_env(&server.url(), NS, &[], &env).get("get 3");
    assert_eq!(
        (read.value.as_str(), read.l2_hits),
        (written.value.as_str(), 1)
    );
    let without = Worker::start(&server.url(), NS, &[]).get("get 3");
    assert_eq!(
        (without.loads, without.rejected),
        (1, 1),
        "no secret: cannot decrypt, loads"
    );
}

#[test]
fn an_unsigned_invalidation_is_ignored_by_a_process_holding_a_secret() {
    let server = Deployment::standalone();
    let mut guarded = with_secret(&server, "k1");
    let mut open = Worker::start(&server.url(), NS, &[]);
    for worker in [&mut guarded, &mut open] {
        worker.until_redis_answers();
        worker.get("get 1");
    }
    let (guarded_before, open_before) = (guarded.get("get 1"), open.get("get 1"));
    // What anyone able to PUBLISH could send: "flush everything" (a namespace-wide
    // invalidation at a version far ahead).
    let forged = format!("{:016x}\u{1f}a\u{1f}999", 1);
    let receivers: i64 = server.query(
        redis::cmd("PUBLISH")
            .arg(format!("{NS}:invalidations"))
            .arg(&forged),
    );
    assert_eq!(receivers, 2, "both processes subscribe");
    assert!(
        eventually(Duration::from_secs(5), || guarded
            .get("peek 1")
            .unauthenticated_messages
            == 1),
        "the process holding a secret counts the message"
    );
    let kept = guarded.get("get 1");
    assert_eq!(
        (kept.l2_hits, kept.loads),
        (guarded_before.l2_hits, guarded_before.loads),
        "its L1 was kept: an L1 hit"
    );
    assert!(
        eventually(Duration::from_secs(5), || open.get("get 1").l2_hits
            > open_before.l2_hits),
        "a process without a secret applies the same message: its L1 is dropped"
    );
}

#[tokio::test]
async fn encryption_without_a_secret_is_refused_at_init() {
    let config = stratacache::Config::new()
        .redis_url("redis://127.0.0.1:1")
        .encrypt(true);
    let refused = stratacache::init(config);
    assert!(
        matches!(&refused, Err(stratacache::Error::Config(why)) if why.contains("secret")),
        "{refused:?}"
    );
}
