//! The Redis tier against a real `redis-server`, across real OS processes: each
//! `Worker` is a separate process running `examples/cache_worker.rs`, so a fresh worker
//! is a fresh, empty L1. Each test owns its server, and runs twice: against a
//! standalone server and against a 3-master Redis Cluster (`cluster::*`).

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use support::{eventually, Answer, Deployment, RedisCluster, RedisServer, Relay, Worker};

const NS: &str = "t";

fn entry_keys(server: &Deployment, cache: &str) -> Vec<String> {
    server.keys(&format!("{NS}:{cache}:v0:*"))
}

on_standalone_and_cluster!(
    another_process_reads_an_l2_hit_and_promotes_it,
    redis_ttl_is_the_end_of_the_stale_window,
    a_tag_invalidated_in_one_process_reloads_in_another,
    a_tag_invalidated_in_another_process_drops_a_sync_functions_entry,
    an_entry_invalidated_in_one_process_is_dropped_everywhere,
    corrupt_truncated_and_foreign_values_are_misses_and_are_overwritten,
    an_oversized_value_is_not_written,
    redis_stopped_mid_run_never_fails_a_call_and_l2_resumes_after_restart,
    a_stopped_redis_makes_no_call_wait_for_a_reconnect,
    a_lost_invalidation_message_is_caught_up_by_the_resync,
    a_lost_entry_invalidation_message_is_caught_up_when_the_subscription_is_back,
    a_frozen_redis_is_cut_short_by_the_timeout_and_calls_still_answer,
    the_password_in_the_url_authenticates,
    a_server_that_wants_a_password_the_url_lacks_opens_the_circuit,
    an_entry_evicted_from_l1_comes_back_from_redis_in_the_same_process,
    a_failing_loader_in_a_fresh_process_falls_back_on_the_value_in_redis,
    a_tag_added_by_the_loader_also_guards_the_value_in_redis,
    a_batch_reads_values_with_added_tags_from_redis_and_keeps_them_under_those_tags,
    a_batch_write_back_after_an_invalidation_of_an_added_tag_is_not_served,
    a_stale_value_in_redis_is_served_at_once_and_the_refresh_reaches_redis,
    four_processes_missing_one_key_with_lock_run_one_load,
    a_killed_lock_holder_does_not_block_the_others,
    a_cancelled_load_lets_go_of_its_lock_at_once,
    writes_redis_refuses_do_not_stop_the_reads_it_answers,
    refresh_ahead_reloads_even_though_redis_holds_the_same_value,
    put_and_refresh_in_one_process_are_read_by_the_others_without_a_load,
    a_batch_call_reads_redis_in_one_go_and_loads_only_the_rest,
    a_put_during_a_batch_read_is_not_undone_by_what_the_read_returns,
    a_load_in_flight_does_not_write_over_a_put_or_an_invalidation_in_redis,
    a_load_elsewhere_that_began_before_an_invalidation_does_not_write_over_it,
    a_load_that_outlives_the_tombstone_does_not_write_back,
    a_load_elsewhere_does_not_write_back_once_the_write_that_replaced_its_read_has_ended,
    an_idle_resync_reads_no_tag_counter,
);

fn another_process_reads_an_l2_hit_and_promotes_it(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);

    let first = a.get("get 7");
    assert_eq!(first.loads, 1);
    assert_eq!(
        entry_keys(&server, "worker.user").len(),
        1,
        "the load was written to Redis"
    );

    let from_b = b.get("get 7");
    assert_eq!(from_b.value, first.value, "B got A's value");
    assert_eq!((from_b.loads, from_b.l2_hits), (0, 1), "an L2 hit, no load");
    let again = b.get("get 7");
    assert_eq!(
        (again.l1_hits, again.l2_hits, again.loads),
        (1, 1, 0),
        "promoted: the next call is an L1 hit"
    );
}

fn redis_ttl_is_the_end_of_the_stale_window(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("get 1");
    let keys = entry_keys(&server, "worker.user");
    let pttl: i64 = server.query(redis::cmd("PTTL").arg(&keys[0]));
    // ttl 60 s + stale_while_revalidate 30 s.
    assert!(
        (85_000..=90_000).contains(&pttl),
        "PTTL {pttl} ms, expected about 90 s"
    );
}

fn a_tag_invalidated_in_one_process_reloads_in_another(cluster: bool) {
    let (_server, _a, mut b) = user_7_invalidated_by_tag_elsewhere(cluster, "get");
    // B's own next read loads too: the Redis entry is invalid for everyone.
    let from_b = b.get("get 7");
    assert!(
        from_b.loads == 1 || from_b.l2_hits == 1,
        "B reads the reloaded value: {from_b:?}"
    );
}

/// A sync function's cache is in-process only, but its tags are the fleet's.
fn a_tag_invalidated_in_another_process_drops_a_sync_functions_entry(cluster: bool) {
    user_7_invalidated_by_tag_elsewhere(cluster, "sync");
}

/// A caches users 7 and 8 through the worker's `command`, B invalidates `user:7`:
/// A must load 7 again (within 5 s), and not 8. Returns the server and both workers.
fn user_7_invalidated_by_tag_elsewhere(
    cluster: bool,
    command: &str,
) -> (Deployment, Worker, Worker) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    let (user_7, user_8) = (format!("{command} 7"), format!("{command} 8"));
    a.get(&user_7);
    a.get(&user_8);
    assert_eq!(a.get(&user_7).loads, 2, "both cached in A");
    assert_eq!(b.send("invalidate_tag user:7"), "ok");
    let reloaded = eventually(Duration::from_secs(5), || a.get(&user_7).loads == 3);
    assert!(
        reloaded,
        "A kept serving user 7 after B invalidated it ({command})"
    );
    assert_eq!(a.get(&user_8).loads, 3, "user 8 was not invalidated");
    (server, a, b)
}

fn an_entry_invalidated_in_one_process_is_dropped_everywhere(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    a.get("get 5");
    assert_eq!(b.get("get 5").l2_hits, 1);
    assert_eq!(b.send("invalidate 5"), "ok");
    let keys = entry_keys(&server, "worker.user");
    assert_eq!(keys.len(), 1);
    assert!(
        server.get(&keys[0]).starts_with(b"SC\xffgone:"),
        "the Redis entry was replaced by a tombstone"
    );
    let pttl: i64 = server.query(redis::cmd("PTTL").arg(&keys[0]));
    assert!(
        (1..=60_000).contains(&pttl),
        "a tombstone lasts a minute: {pttl}"
    );
    assert!(
        eventually(Duration::from_secs(5), || a.get("get 5").loads == 2),
        "A still served the entry"
    );

    // The cache's entry changes are counted one by one from a start the others can
    // tell (a multiple of 1,024), so a process that hears 1 then 3 knows it missed 2.
    let counter = format!("{NS}:entry-changes:worker.user");
    let read = || -> u64 {
        String::from_utf8(server.get(&counter))
            .unwrap()
            .parse()
            .unwrap()
    };
    let first = read();
    assert_eq!(first % 1024, 1, "the first change: {first}");
    assert_eq!(b.send("invalidate 5"), "ok");
    assert_eq!(read(), first + 1);
}

fn corrupt_truncated_and_foreign_values_are_misses_and_are_overwritten(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut writer = Worker::start(&server.url(), NS, &[]);
    writer.get("get 1");
    writer.get("get 2");
    let key_of = |id: u64| -> String {
        // The value names the user, so the entry's key is found by its contents.
        entry_keys(&server, "worker.user")
            .into_iter()
            .find(|k| {
                String::from_utf8_lossy(&server.get(k)).contains(&format!("user {id} loaded"))
            })
            .expect("the entry exists")
    };
    let key1 = key_of(1);
    let valid = server.get(&key1);
    let foreign = server.get(&key_of(2));
    // One byte of the payload changed: "user 1 loaded..." becomes "user 1 loadee...",
    // which postcard decodes without complaint; the envelope's checksum catches it.
    let mut flipped = valid.clone();
    let at = flipped
        .windows(6)
        .position(|w| w == b"loaded")
        .expect("the payload is in clear")
        + 5;
    flipped[at] ^= 1;
    let bad_values: [(&str, Vec<u8>); 4] = [
        ("garbage", b"{\"not\": \"ours\"}".to_vec()),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("another key's entry", foreign),
        ("one payload byte flipped", flipped),
    ];
    for (what, bad) in bad_values {
        server.set(&key1, &bad);
        let mut fresh = Worker::start(&server.url(), NS, &[]);
        let answer = fresh.get("get 1");
        assert_eq!(answer.loads, 1, "{what}: must be a miss that loads");
        assert_eq!(answer.l2_errors, 1, "{what}: must be counted");
        assert!(
            answer.value.starts_with("user 1 loaded"),
            "{what}: wrong value {}",
            answer.value
        );
        let mut reader = Worker::start(&server.url(), NS, &[]);
        let reread = reader.get("get 1");
        assert_eq!(
            (reread.l2_hits, reread.loads),
            (1, 0),
            "{what}: the load overwrote the bad value"
        );
    }
}

fn an_oversized_value_is_not_written(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut small = Worker::start(&server.url(), NS, &["1024"]);
    let answer = small.get("big 1");
    assert_eq!(answer.loads, 1);
    assert_eq!(
        (answer.oversized, answer.l2_errors),
        (1, 0),
        "the refusal is counted as oversized, not as a Redis fault"
    );
    assert!(
        entry_keys(&server, "worker.big").is_empty(),
        "a 4 KiB value was written past a 1 KiB limit"
    );
    let mut roomy = Worker::start(&server.url(), NS, &[]);
    roomy.get("big 2");
    assert_eq!(
        entry_keys(&server, "worker.big").len(),
        1,
        "under the limit it is written"
    );
}

fn redis_stopped_mid_run_never_fails_a_call_and_l2_resumes_after_restart(cluster: bool) {
    let mut server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("get 1");
    server.stop();
    for id in 2..12 {
        let answer = a.get(&format!("get {id}"));
        assert!(
            answer.value.starts_with(&format!("user {id} loaded")),
            "call {id} not answered: {answer:?}"
        );
    }
    let during = a.get("get 12");
    assert_eq!(during.loads, 12, "every call was answered by its loader");
    assert!(during.l2_errors > 0, "L2 faults are counted");

    server.restart();
    // Same process, no restart: once the circuit's probe succeeds, loads are written
    // to Redis again and another process reads them as L2 hits.
    let mut id = 100;
    let resumed = eventually(Duration::from_secs(10), || {
        id += 1;
        a.get(&format!("get {id}"));
        let mut b = Worker::start(&server.url(), NS, &[]);
        b.get(&format!("get {id}")).l2_hits == 1
    });
    assert!(resumed, "L2 did not resume after Redis came back");
    // And the backplane reconnected: an invalidation from B reaches A.
    let mut b = Worker::start(&server.url(), NS, &[]);
    let loads = a.get(&format!("get {id}")).loads;
    assert_eq!(b.send(&format!("invalidate_tag user:{id}")), "ok");
    let reloaded = eventually(Duration::from_secs(10), || {
        a.get(&format!("get {id}")).loads == loads + 1
    });
    assert!(reloaded, "A never saw B's invalidation after the restart");
}

/// A stopped server refuses a connection at once, and a call must not wait on its
/// behalf for the client's next attempt: redis-rs's `ConnectionManager` retries a
/// failed connect after a back-off of 100 to 200 ms unless told not to, which made
/// each miss that reached Redis (until the breaker opened, then each probe) as slow
/// as the timeout. Ten misses take a few milliseconds; the back-off alone, three
/// times before the worker's breaker opens, took more than 300.
fn a_stopped_redis_makes_no_call_wait_for_a_reconnect(cluster: bool) {
    let mut server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("get 1");
    server.stop();
    let started = Instant::now();
    for id in 2..12 {
        let answer = a.get(&format!("get {id}"));
        assert!(answer.value.starts_with(&format!("user {id} loaded")));
    }
    let ten_misses = started.elapsed();
    assert!(a.get("get 12").l2_errors > 0, "the misses reached Redis");
    assert!(
        ten_misses < Duration::from_millis(300),
        "ten misses with Redis stopped took {ten_misses:?}: the calls waited for reconnects"
    );
}

fn a_lost_invalidation_message_is_caught_up_by_the_resync(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("get 9");
    assert_eq!(a.get("get 9").loads, 1);
    // Bumps listed before and after the lost one, the first read by a resync of the
    // worker's (it runs the script that walks the list: one `EVAL` more). A bump made
    // before the worker's first resync is read by that resync's full read, and
    // walked by none: the first bump is made again until one is walked.
    let evals = || server.info_sum("commandstats", "cmdstat_eval:calls=");
    let read = (0..5).any(|_| {
        assert_eq!(a.send("invalidate_tag user:1"), "ok");
        let bumped = evals();
        eventually(Duration::from_secs(3), || evals() > bumped)
    });
    assert!(read, "no resync walked the list of bumps");
    // An invalidation whose pub/sub message never arrived: the counter moved, no
    // message. The invalidation's script moves the count of bumps too, and lists the
    // counter with the counts before and after: a bump of the count made without
    // the list breaks that chain, and the resync reads every counter (the idle
    // resyncs' test has a counter listed, and one moved without the count).
    let _: u64 = server.query(redis::cmd("INCR").arg(format!("{NS}:tag:user:9")));
    let _: u64 = server.query(redis::cmd("INCR").arg(bumps_key(cluster)));
    assert_eq!(a.send("invalidate_tag user:2"), "ok");
    // The worker resyncs every 500 ms: caught within one interval or two, not the
    // thirty after which a resync reads every counter whatever the count says.
    let caught_up = eventually(Duration::from_millis(1_500), || a.get("get 9").loads == 2);
    assert!(
        caught_up,
        "a lost message left user 9 stale past the resync interval"
    );
}

/// The namespace's count of named tags' bumps, and their list: on a cluster, in the
/// slot of the hash tag `{t}`.
fn bumps_key(cluster: bool) -> String {
    if cluster {
        format!("{{{NS}}}:bumps")
    } else {
        format!("{NS}:bumps")
    }
}

fn bumped_key(cluster: bool) -> String {
    bumps_key(cluster).replace(":bumps", ":bumped")
}

/// An `invalidate!`, `put!` or `refresh!` announces itself by a message alone (no tag
/// counter moves): one published while a process's subscription was down never
/// reached it, and the process served its copy until its ttl, where the resync
/// catches up on a lost tag invalidation.
fn a_lost_entry_invalidation_message_is_caught_up_when_the_subscription_is_back(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    a.get("get 5");
    a.get("get 6");
    assert_eq!(a.get("get 5").l1_hits, 1);
    server.drop_subscriptions(); // A subscribes again after 100 ms
    assert_eq!(b.send("invalidate 5"), "ok");
    let caught_up = eventually(Duration::from_secs(5), || a.get("get 5").loads == 3);
    assert!(
        caught_up,
        "A kept serving entry 5 after missing its invalidation"
    );

    assert!(a.get("get 6").value.starts_with("user 6 loaded"));
    server.drop_subscriptions();
    assert_eq!(b.send("put 6 written by put"), "ok");
    let caught_up = eventually(Duration::from_secs(5), || {
        a.get("get 6").value == "written by put"
    });
    assert!(caught_up, "A kept serving entry 6 after missing its put!");
}

fn a_frozen_redis_is_cut_short_by_the_timeout_and_calls_still_answer(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("get 1");
    server.freeze();
    for id in 2..6 {
        let answer = a.get(&format!("get {id}"));
        assert!(
            answer.value.starts_with(&format!("user {id} loaded")),
            "call {id} not answered"
        );
    }
    let during = a.get("get 6");
    assert_eq!(during.loads, 6);
    // At least the first: the circuit opens after 3 timeouts, and the process's own
    // resync, every 500 ms, may be one of them (seen once, under load: 2 of the 3).
    assert!(
        during.l2_errors >= 1,
        "timeouts are counted as L2 errors: {during:?}"
    );
    server.thaw();
}

fn the_password_in_the_url_authenticates(cluster: bool) {
    let server = Deployment::start(cluster, Some("s3cret"));
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    a.get("get 1");
    let from_b = b.get("get 1");
    assert_eq!(
        (from_b.l2_hits, from_b.loads, from_b.l2_errors),
        (1, 0, 0),
        "AUTH from the URL failed"
    );
}

/// A server that wants a password the URL lacks answers every command with `NOAUTH`:
/// Redis serves this process nothing, so the circuit opens (as for a server that is
/// down) instead of every miss making a round trip that fails.
fn a_server_that_wants_a_password_the_url_lacks_opens_the_circuit(cluster: bool) {
    let server = Deployment::start(cluster, Some("s3cret"));
    let url = server.url().replace(":s3cret@", "");
    let mut a = Worker::start(&url, NS, &[]);
    let mut last = None;
    for id in 1..=40 {
        let answer = a.get(&format!("get {id}"));
        assert_eq!(answer.loads, id, "every call answers, from its loader");
        last = Some(answer);
    }
    let errors = last.unwrap().l2_errors;
    assert!(
        errors <= 10,
        "40 misses made {errors} Redis calls that failed: the circuit never opened"
    );
}

fn an_entry_evicted_from_l1_comes_back_from_redis_in_the_same_process(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    // quick_cache is scan-resistant: entries admitted while it fills up survive a
    // scan. So fill it first, then cache key 1, then push it out with other keys.
    // Keys spread over the store's shards by a hash seeded anew in each process:
    // enough of them that every shard is filled, then scanned, whatever the seed.
    for id in 1000..1400 {
        a.get(&format!("small {id}"));
    }
    a.get("small 1");
    for id in 2..=600 {
        a.get(&format!("small {id}"));
    }
    let before = a.get("small 1000"); // counters before the re-read (an L1 hit)
    let again = a.get("small 1");
    assert_eq!(again.value, "small 1");
    assert_eq!(
        again.loads, before.loads,
        "key 1 was loaded again instead of read from Redis"
    );
    assert_eq!(
        again.l2_hits,
        before.l2_hits + 1,
        "key 1 must be an L2 hit after its eviction"
    );
}

fn a_failing_loader_in_a_fresh_process_falls_back_on_the_value_in_redis(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let written = a.get("fragile 1");
    assert!(written.value.starts_with("fragile 1 loaded"), "{written:?}");
    std::thread::sleep(Duration::from_millis(300)); // past the 200 ms ttl

    let mut b = Worker::start(&server.url(), NS, &[]);
    assert_eq!(b.send("down on"), "ok");
    let answer = b.get("fragile 1");
    assert_eq!(
        answer.value, written.value,
        "B's loader failed and Redis's kept value answered"
    );
    assert_eq!(answer.loads, 1, "B did try its loader");
    let mut c = Worker::start(&server.url(), NS, &[]);
    assert_eq!(c.send("down on"), "ok");
    assert!(
        c.get("fragile 2").value.starts_with("error: database down"),
        "no value anywhere: the error stands"
    );
}

fn a_tag_added_by_the_loader_also_guards_the_value_in_redis(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("grouped 1");
    let mut b = Worker::start(&server.url(), NS, &[]);
    assert_eq!(b.get("grouped 1").l2_hits, 1, "shared as usual");
    assert_eq!(b.get("grouped 1").l1_hits, 1, "promoted to B's L1");
    assert_eq!(b.send("invalidate_tag group:1"), "ok");
    let answer = b.get("grouped 1");
    assert_eq!(
        (answer.l1_hits, answer.loads),
        (1, 1),
        "B's promoted copy carries the added tag: B's own invalidation drops it"
    );
    let mut c = Worker::start(&server.url(), NS, &[]);
    let answer = c.get("grouped 1");
    assert_eq!(
        (answer.l2_hits, answer.loads),
        (1, 0),
        "B's reload is in Redis under the new version of the added tag"
    );
    assert_eq!(c.get("grouped 1").l1_hits, 1, "promoted to C's L1");
    assert_eq!(a.send("invalidate_tag group:1"), "ok");
    let dropped = eventually(Duration::from_secs(5), || c.get("grouped 1").loads == 1);
    assert!(
        dropped,
        "A's invalidation of the added tag reaches C's promoted copy"
    );
    let mut d = Worker::start(&server.url(), NS, &[]);
    let answer = d.get("grouped 1");
    assert_eq!(
        (answer.l2_hits, answer.loads),
        (1, 0),
        "C's reload is in Redis again"
    );
}

/// The race behind a rare failure of the test below: a batch's write-back runs in the
/// background, and reads the counters of the tags its loader added only then.
fn a_batch_write_back_after_an_invalidation_of_an_added_tag_is_not_served(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut b = Worker::start(&server.url(), NS, &[]);
    let answer = b.get("grouped_batch_then_invalidate 5 group:1");
    assert_eq!(
        (answer.value.as_str(), answer.loads),
        ("1 values, loaded [5]", 1)
    );
    let mut c = Worker::start(&server.url(), NS, &[]);
    let answer = c.get("grouped 5");
    assert_eq!(
        (answer.l2_hits, answer.loads),
        (0, 1),
        "B loaded 5 before invalidating group:1: Redis must not serve it under the new version"
    );
    assert_eq!(c.get("grouped 5").l1_hits, 1);
    let mut d = Worker::start(&server.url(), NS, &[]);
    assert_eq!(
        d.get("grouped 5").l2_hits,
        1,
        "C's load, after the invalidation, is shared"
    );
}

fn a_batch_reads_values_with_added_tags_from_redis_and_keeps_them_under_those_tags(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("grouped 1");
    a.get("grouped 3");
    a.get("grouped 4");
    let mut b = Worker::start(&server.url(), NS, &[]);
    let answer = b.get("grouped_batch 1,3,4,5");
    assert_eq!(
        (answer.value.as_str(), answer.l2_hits, answer.loads),
        ("4 values, loaded [5]", 3, 1),
        "the values tagged by their loader are read from Redis, not loaded again"
    );
    assert_eq!(b.get("grouped 3").l1_hits, 1, "kept in B's L1");
    assert_eq!(b.send("invalidate_tag group:1"), "ok");
    let answer = b.get("grouped_batch 1,3,4,5");
    assert_eq!(
        answer.value, "4 values, loaded [1,3,5]",
        "B's copies carry the added tag: its invalidation drops them (4 is group:0)"
    );
    assert_eq!(a.send("invalidate_tag group:0"), "ok");
    let reloaded = eventually(Duration::from_secs(5), || {
        b.get("grouped_batch 1,3,4,5").value == "4 values, loaded [4]"
    });
    assert!(
        reloaded,
        "A's invalidation of group:0 reaches the copy of 4 that B read from Redis"
    );
    // B's write-backs run in the background: wait until Redis holds B's four values.
    let b_pid = b
        .get("grouped 4")
        .value
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let written_back = eventually(Duration::from_secs(5), || {
        let entries = entry_keys(&server, "worker.grouped");
        entries.len() == 4
            && entries.iter().all(|key| {
                let bytes: Vec<u8> = server.query(redis::cmd("GET").arg(key));
                String::from_utf8_lossy(&bytes).contains(&format!("loaded by pid {b_pid}"))
            })
    });
    assert!(written_back, "B's reloads never reached Redis");
    let mut c = Worker::start(&server.url(), NS, &[]);
    let answer = c.get("grouped_batch 1,3,4,5");
    assert_eq!(
        (answer.value.as_str(), answer.l2_hits, answer.loads),
        ("4 values, loaded []", 4, 0),
        "B's reloads are in Redis under the current versions of the added tags"
    );
}

fn a_stale_value_in_redis_is_served_at_once_and_the_refresh_reaches_redis(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let first = a.get("swr 1").value;
    std::thread::sleep(Duration::from_millis(300)); // past the 200 ms ttl, inside the window

    // B starts empty and its loader takes 2 s: it must answer with A's stale value
    // (its own load would carry its own pid).
    let mut b = Worker::start(&server.url(), NS, &[]);
    assert_eq!(b.send("slow on"), "ok");
    let from_b = b.get("swr 1");
    assert_eq!(
        from_b.value, first,
        "B waited for its own load instead of serving the stale value"
    );
    assert_eq!(from_b.l2_hits, 1, "a stale L2 hit");
    // The refresh starts in the background right after the stale value is offered;
    // while it runs (2 s), reads of B join it rather than start another.
    let one_refresh = eventually(Duration::from_secs(1), || b.get("swr 1").loads == 1);
    assert!(one_refresh, "B did not start its refresh");
    assert_eq!(b.get("swr 1").loads, 1, "exactly one refresh in B");

    // B's refresh finishes in the background and reaches Redis for everyone else.
    // Readers are slow too, so they answer with what Redis holds, never their own load.
    let mut reads = 0;
    let refreshed = eventually(Duration::from_secs(10), || {
        reads += 1;
        let mut reader = Worker::start(&server.url(), NS, &[]);
        assert_eq!(reader.send("slow on"), "ok");
        reader.get("swr 1").value != first
    });
    assert!(refreshed, "B's refreshed value never reached Redis");
    assert!(
        reads > 1,
        "B's 2 s refresh cannot have reached Redis at once"
    );
}

fn four_processes_missing_one_key_with_lock_run_one_load(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut workers: Vec<Worker> = (0..4)
        .map(|_| Worker::start(&server.url(), NS, &[]))
        .collect();
    for worker in &mut workers {
        worker.request("locked 1");
    }
    let answers: Vec<_> = workers.iter_mut().map(Worker::answer).collect();
    let loads: u64 = answers.iter().map(|a| a.loads).sum();
    assert_eq!(loads, 1, "one load for the whole fleet: {answers:?}");
    assert!(
        answers.iter().all(|a| a.value == answers[0].value),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().map(|a| a.l2_hits).sum::<u64>(),
        3,
        "the others read the holder's value from Redis"
    );
}

/// A load in another process that began before an `invalidate!` and ends before
/// the invalidation's message reaches it (here: never, the process hears none)
/// wrote its older value over the deletion, and Redis served it to the whole fleet
/// until its ttl. Its write-back now lands only over what its read found.
fn a_load_elsewhere_that_began_before_an_invalidation_does_not_write_over_it(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let (mut invalidating, old) = invalidate_during_a_deaf_load(&server, &[], || {});
    let after = reload_after_the_deaf_load(&mut invalidating, &old);
    // The load after the invalidation writes over what it left.
    let mut third = Worker::start(&server.url(), NS, &[]);
    let shared = third.get("locked 3");
    assert_eq!((shared.loads, shared.l2_hits), (0, 1), "{shared:?}");
    assert_eq!(shared.value, after.value);
}

/// The same race with a load longer than the tombstone's life (2 s here, 60 s by
/// default): the tombstone is gone when the load ends, and the key is empty again, as
/// the load's read found it.
fn a_load_that_outlives_the_tombstone_does_not_write_back(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let entries = || {
        let keys = entry_keys(&server, "worker.locked");
        keys.into_iter()
            .filter(|key| !key.ends_with(":lock"))
            .count()
    };
    let short_tombstones = [("WORKER_TOMBSTONE_MS", "2000")];
    let (mut invalidating, old) = invalidate_during_a_deaf_load(&server, &short_tombstones, || {
        assert_eq!(entries(), 1, "the invalidation's tombstone");
        let expired = eventually(Duration::from_secs(5), || entries() == 0);
        assert!(expired, "the tombstone outlived its 2 s");
    });
    reload_after_the_deaf_load(&mut invalidating, &old);
}

/// Two loads in a worker that hears no invalidation read two empty keys of a cache
/// whose entries live 300 ms; meanwhile another worker `put!`s the first key, and
/// invalidates the second and loads it again, writing its value over the tombstone.
/// Both writes' entries end long before the 5 s loads do (the second's after waiting
/// 2 s for the deaf load's lock to lapse). Their keys were then empty again, as the
/// loads' reads had found them, and both older values landed there for every
/// process. A written key now stays in Redis for a tombstone's life, its entry past
/// its end reading as a miss.
fn a_load_elsewhere_does_not_write_back_once_the_write_that_replaced_its_read_has_ended(
    cluster: bool,
) {
    let server = Deployment::start(cluster, None);
    let mut writer = Worker::start(&server.url(), NS, &[]);
    let mut deaf_loads: Vec<Worker> = (1..=2)
        .map(|_| {
            let mut deaf = Worker::start_with_env(&server.url(), NS, &[], &[("WORKER_DEAF", "1")]);
            assert_eq!(deaf.send("slow on"), "ok");
            deaf
        })
        .collect();
    // Sent together: each holds its key's lock (for 2 s) once its read is done.
    for (id, deaf) in (1..=2).zip(&mut deaf_loads) {
        deaf.request(&format!("brief {id}"));
    }
    let loading = eventually(Duration::from_secs(5), || {
        server.keys(&format!("{NS}:worker.brief:v0:*:lock")).len() == 2
    });
    assert!(loading, "the deaf loads never began");
    assert_eq!(writer.send("put_brief 1 written by put"), "ok");
    assert_eq!(writer.send("invalidate_brief 2"), "ok");
    // It waits for the deaf load's lock to lapse (2 s), then loads over the tombstone.
    let reloaded = writer.get("brief 2");
    assert_eq!(reloaded.loads, 1, "{reloaded:?}");

    let old: Vec<Answer> = deaf_loads
        .into_iter()
        .map(|mut deaf| deaf.answer())
        .collect();
    let held: Vec<String> = entry_keys(&server, "worker.brief")
        .iter()
        .filter(|key| !key.ends_with(":lock"))
        .map(|key| {
            let bytes: Vec<u8> = server.query(redis::cmd("GET").arg(key));
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    assert_eq!(held.len(), 2, "both keys are held, their entries ended");
    for (id, old) in (1..=2).zip(&old) {
        assert_eq!(old.loads, 1, "{old:?}");
        assert!(
            !held.iter().any(|entry| entry.contains(&old.value)),
            "Redis holds key {id}'s value loaded before the write that replaced it"
        );
    }
    for newer in ["written by put", reloaded.value.as_str()] {
        assert!(
            held.iter().any(|entry| entry.contains(newer)),
            "Redis lost {newer:?}: {held:?}"
        );
    }
}

/// A worker that hears no invalidation begins a 5 s load of `locked 3`, and another
/// (the first returned) invalidates the entry while it runs; `meanwhile` runs before
/// the load's answer (the second returned) is taken. Both workers get `env`.
fn invalidate_during_a_deaf_load(
    server: &Deployment,
    env: &[(&str, &str)],
    meanwhile: impl FnOnce(),
) -> (Worker, Answer) {
    let mut invalidating = Worker::start_with_env(&server.url(), NS, &[], env);
    let deaf_env: Vec<_> = env.iter().copied().chain([("WORKER_DEAF", "1")]).collect();
    let mut deaf = Worker::start_with_env(&server.url(), NS, &[], &deaf_env);
    assert_eq!(deaf.send("slow on"), "ok");
    deaf.request("locked 3"); // it holds the fleet lock once its read is done
    let loading = eventually(Duration::from_secs(5), || {
        !server
            .keys(&format!("{NS}:worker.locked:v0:*:lock"))
            .is_empty()
    });
    assert!(loading, "the deaf worker's load never began");
    assert_eq!(invalidating.send("invalidate_locked 3"), "ok");
    meanwhile();
    let old = deaf.answer();
    assert_eq!(old.loads, 1, "{old:?}");
    (invalidating, old)
}

/// The invalidating worker's read after the deaf load ended: a load of its own, as
/// Redis holds nothing the deaf load wrote.
fn reload_after_the_deaf_load(invalidating: &mut Worker, old: &Answer) -> Answer {
    let after = invalidating.get("locked 3");
    assert_eq!(
        (after.loads, after.l2_hits, after.l2_errors),
        (1, 0, 0),
        "Redis held the value loaded before the invalidation: {}",
        after.value
    );
    assert_ne!(after.value, old.value);
    after
}

fn a_killed_lock_holder_does_not_block_the_others(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut holder = Worker::start(&server.url(), NS, &[]);
    assert_eq!(holder.send("slow on"), "ok");
    holder.request("locked 2"); // a 5 s load, holding the lock
    let locked = eventually(Duration::from_secs(5), || {
        !server
            .keys(&format!("{NS}:worker.locked:v0:*:lock"))
            .is_empty()
    });
    assert!(locked, "the holder never took the lock");
    drop(holder); // killed mid-load, lock held

    // The lock expires (2 s hold) or the wait bound (4 s) passes: B loads itself.
    let mut other = Worker::start(&server.url(), NS, &[]);
    let answer = other.get("locked 2");
    assert_eq!(answer.loads, 1, "B loaded it itself: {answer:?}");
    assert!(answer.value.starts_with("locked 2 loaded"), "{answer:?}");
}

/// A call dropped while it holds the fleet lock (a request cancelled by its
/// client's timeout) releases the lock: it stayed for its whole `hold` (the
/// worker's 2 s; 5 s by default), and every process that missed the key meanwhile,
/// this one's next caller too, waited for a value that was never coming.
fn a_cancelled_load_lets_go_of_its_lock_at_once(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut cancelling = Worker::start(&server.url(), NS, &[]);
    let mut other = Worker::start(&server.url(), NS, &[]);
    assert_eq!(cancelling.get("cancel_locked 1").value, "cancelled: true");
    // Well inside the 2 s hold of a lock taken just before the cancellation.
    let released = eventually(Duration::from_secs(1), || {
        server
            .keys(&format!("{NS}:worker.locked:*:lock"))
            .is_empty()
    });
    assert!(released, "the cancelled load's lock is still held");
    let answered = other.get("locked 1");
    assert_eq!(
        (answered.loads, answered.l2_hits),
        (1, 0),
        "the other process loads at once: {}",
        answered.value
    );
}

/// Redis at `maxmemory` (`noeviction`) refuses every write-back and still answers
/// reads. A refusal is a reply, not an outage: it must not open the circuit, which
/// stopped the reads too (every call then loaded from the database, for the
/// breaker's cooldown and again after each probe, for as long as Redis stayed full).
fn writes_redis_refuses_do_not_stop_the_reads_it_answers(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut writer = Worker::start(&server.url(), NS, &[]);
    let mut refused = Worker::start(&server.url(), NS, &[]);
    assert_eq!(writer.get("get 1").loads, 1);

    server.refuse_writes(true);
    // Twenty misses at once: their reads answered, then twenty write-backs refused.
    let misses = refused.get("concurrent_gets 100 120");
    assert_eq!((misses.loads, misses.l2_errors), (20, 20), "{misses:?}");
    let read = refused.get("get 1");
    server.refuse_writes(false);
    assert_eq!(
        (read.loads, read.l2_hits),
        (20, 1),
        "an L2 hit, no load: {read:?}"
    );
}

fn refresh_ahead_reloads_even_though_redis_holds_the_same_value(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    assert_eq!(a.get("ahead 1").loads, 1);
    std::thread::sleep(Duration::from_millis(700)); // past the refresh point (0.5 s), far from the ttl (2 s)
    assert_eq!(a.get("ahead 1").value, "ahead 1 load 1", "answered at once");
    // The refresh must load, not re-promote the equally old value Redis holds; and
    // well before the ttl would force a load anyway.
    let refreshed = eventually(Duration::from_millis(900), || a.get("ahead 1").loads == 2);
    assert!(
        refreshed,
        "the refresh took Redis's copy of the same value instead of loading"
    );
    let mut b = Worker::start(&server.url(), NS, &[]);
    assert_eq!(
        b.get("ahead 1").value,
        "ahead 1 load 2",
        "the refreshed value reached Redis"
    );
}

/// A failover behind one endpoint (a cloud provider's primary endpoint: the DNS name
/// moves to the promoted replica): the connection made before it still reaches the
/// old master, now a replica, which answers every write with `READONLY`. The process
/// connects afresh, so the invalidation it queued reaches the new master and the
/// process that reads from there.
#[test]
fn after_a_failover_behind_one_endpoint_an_invalidation_reaches_the_new_master() {
    let old = RedisServer::start();
    let new = RedisServer::start();
    let endpoint = Relay::to(old.port);
    let mut a = Worker::start(&endpoint.url(), NS, &[]);
    a.get("get 7");
    // The failover: `old` becomes a replica of `new`, and the endpoint moves.
    let replica_of = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(new.port)
        .clone();
    let _: () = replica_of.query(&mut old.connection()).unwrap();
    endpoint.retarget(new.port);
    let mut b = Worker::start(&new.url(), NS, &[]);
    assert_eq!(b.get("get 7").loads, 1);
    assert_eq!(b.get("get 7").l1_hits, 1, "B keeps user 7 in L1");
    assert_eq!(a.send("invalidate_tag user:7"), "ok");
    let heard = eventually(Duration::from_secs(5), || b.get("get 7").loads == 2);
    assert!(heard, "A's invalidation never reached the new master");
}

/// A resync reads the counters of the named tags a process holds only when one may
/// have moved since it last did, and then only those listed as bumped (and every
/// one, one resync in thirty): a process holding 2,000 per-entity tags, resyncing
/// every 50 ms, reads a few dozen keys a resync while nothing is invalidated, and
/// while a tag is invalidated at every resync (it read every counter, about 2,000
/// keys, at every resync, and until this release, at every resync after a bump).
fn an_idle_resync_reads_no_tag_counter(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let env = [("WORKER_RESYNC_MS", "50")];
    let mut a = Worker::start_with_env(&server.url(), NS, &[], &env);
    // In bursts of 250: 2,000 misses at once on a cluster, in a debug build, outlast
    // the worker's `l2_timeout`, and the open circuits would skip the resyncs a while.
    for from in (0..2000).step_by(250) {
        a.send(&format!("concurrent_gets {from} {}", from + 250));
    }
    // Keys Redis has looked up: each key of an `MGET` is one.
    let looked_up = || -> u64 {
        server.info_sum("stats", "keyspace_hits:") + server.info_sum("stats", "keyspace_misses:")
    };
    let in_300ms = || {
        let before = looked_up();
        std::thread::sleep(Duration::from_millis(300));
        looked_up() - before
    };
    // Six resyncs in 300 ms, of which one at most (one in thirty) reads every
    // counter: at most about 2,000 + 6 × 4 keys, where six full reads are 12,000;
    // and each reads the few counters it always reads (4 here), so that none made
    // at all would show.
    let settled = eventually(Duration::from_secs(5), || in_300ms() < 2_500);
    assert!(settled, "every resync read every tag counter");
    let idle: Vec<u64> = (0..3).map(|_| in_300ms()).collect();
    assert!(
        idle.iter().all(|&n| n < 2_500) && idle.iter().sum::<u64>() >= 4,
        "keys read in 300 ms of idle resyncs: {idle:?}"
    );
    // An entry's change moves no named tag's counter, nor the count; an
    // invalidation of a tag moves it, and lists the counter.
    let count = || -> Option<u64> { server.query(redis::cmd("GET").arg(bumps_key(cluster))) };
    let counted = count();
    assert_eq!(a.send("invalidate 5"), "ok");
    assert_eq!(count(), counted, "an invalidate! moved the count of bumps");
    assert_eq!(a.send("invalidate_tag user:1"), "ok");
    assert_ne!(
        count(),
        counted,
        "an invalidate_tag! left the count where it was"
    );
    // A tag invalidated at every resync: each reads the counters listed, not all.
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let url = server.url();
    let (busy, sent) = (&AtomicBool::new(true), &AtomicU64::new(0));
    let invalidating = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut b = Worker::start(&url, NS, &[]);
            for tag in 1000..1400 {
                if !busy.load(Ordering::Relaxed) {
                    break;
                }
                assert_eq!(b.send(&format!("invalidate_tag user:{tag}")), "ok");
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let started = eventually(Duration::from_secs(10), || {
            sent.load(Ordering::Relaxed) >= 3
        });
        let lookups: Vec<u64> = (0..3).map(|_| in_300ms()).collect();
        let sent_while_measured = sent.load(Ordering::Relaxed);
        busy.store(false, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            started && sent_while_measured >= 20,
            "too few invalidations: {sent_while_measured}"
        );
        lookups
    });
    assert!(
        invalidating.iter().filter(|&&n| n < 2_500).count() >= 2,
        "keys read in 300 ms of resyncs while tags were invalidated: {invalidating:?}"
    );
    // A bump whose message never came, as the invalidation's script makes it (the
    // counter, the count, the list): caught by the next resync or the one after,
    // not the thirtieth.
    let held = a.get("get 3");
    assert_eq!(a.get("get 3").loads, held.loads, "user 3 is held in L1");
    let counter = format!("{NS}:tag:user:3");
    let _: u64 = server.query(redis::cmd("INCR").arg(&counter));
    let before = count().expect("the count exists");
    let bumped: u64 = server.query(redis::cmd("INCR").arg(bumps_key(cluster)));
    let _: u64 = server.query(
        redis::cmd("RPUSH")
            .arg(bumped_key(cluster))
            .arg(format!("{bumped} {before} {counter}")),
    );
    let caught_up = eventually(Duration::from_millis(500), || {
        a.get("get 3").loads == held.loads + 1
    });
    assert!(caught_up, "a listed bump was not read by the next resyncs");
    // A counter moved by hand moves no count, and its message never came: one
    // resync in thirty (1.5 s here) reads every counter all the same.
    let held = a.get("get 2");
    assert_eq!(a.get("get 2").loads, held.loads, "user 2 is held in L1");
    let _: u64 = server.query(redis::cmd("INCR").arg(format!("{NS}:tag:user:2")));
    let caught_up = eventually(Duration::from_secs(5), || {
        a.get("get 2").loads == held.loads + 1
    });
    assert!(caught_up, "a counter moved by hand was never read");
}

/// On a cluster the log of a named tag's bump (the count and the list) is a third
/// call, to the master of the count's slot, made once the bump has succeeded and its
/// message has gone: while that master refuses it, the others hear of the bump all
/// the same, and the outbox makes the delivery again until the bump is listed (so
/// that a resync reads it).
#[test]
fn cluster_a_bump_whose_log_was_refused_is_heard_and_logged_by_the_outbox() {
    let server = Deployment::cluster();
    let Deployment::Cluster(cluster) = &server else {
        unreachable!()
    };
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    assert_eq!(a.send("invalidate_tag user:0"), "ok");
    let count_node = cluster.owner_of(&bumps_key(true));
    let id = (1..)
        .find(|id| cluster.owner_of(&format!("{NS}:tag:user:{id}")) != count_node)
        .unwrap();
    let counter = format!("{NS}:tag:user:{id}");
    let held = b.get(&format!("get {id}"));
    let scripts = |rule: &str| {
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg(rule)
            .query::<()>(&mut cluster.nodes[count_node].connection())
            .unwrap();
    };
    let listed = || -> usize {
        let list: Vec<String> =
            server.query(redis::cmd("LRANGE").arg(bumped_key(true)).arg(0).arg(-1));
        list.iter()
            .filter(|entry| entry.ends_with(&counter))
            .count()
    };
    scripts("-eval");
    let answer = a.send(&format!("invalidate_tag user:{id}"));
    let heard = eventually(Duration::from_secs(2), || {
        b.get(&format!("get {id}")).loads > held.loads
    });
    let pending = a.stats()["outbox"]["pending"].as_u64().unwrap();
    let unlisted = listed();
    scripts("+eval");
    assert!(heard, "B never heard of the bump whose log was refused");
    assert_eq!(
        (unlisted, pending),
        (0, 1),
        "the refused log ({answer}) was not kept to be sent again"
    );
    let logged = eventually(Duration::from_secs(5), || listed() > 0);
    assert!(logged, "the outbox never sent the bump's log again");
}

/// One seed URL (a cloud provider's configuration endpoint, say) is a cluster when
/// `STRATACACHE_REDIS_CLUSTER` says so: two processes share values through it.
#[test]
fn one_seed_url_and_the_cluster_flag_from_the_environment_reach_the_cluster() {
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let seed = url.split(',').next().unwrap();
    let env = [("STRATACACHE_REDIS_CLUSTER", "true")];
    let mut a = Worker::start_with_env(seed, NS, &[], &env);
    let mut b = Worker::start_with_env(seed, NS, &[], &env);
    for id in 1..=20 {
        a.get(&format!("get {id}"));
    }
    for id in 1..=20 {
        let from_b = b.get(&format!("get {id}"));
        assert_eq!(from_b.loads, 0, "user {id}: B loaded it: {from_b:?}");
    }
    let answered = b.get("get 20");
    assert_eq!((answered.l2_hits, answered.l2_errors), (20, 0));
}

#[test]
fn cluster_entries_spread_over_every_node_and_a_stopped_node_never_fails_a_call() {
    let mut cluster = RedisCluster::start();
    let mut a = Worker::start(&cluster.url(), NS, &[]);
    for id in 0..30 {
        a.get(&format!("get {id}"));
    }
    for node in &cluster.nodes {
        let held: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{NS}:worker.user:v0:*"))
            .query(&mut node.connection())
            .unwrap();
        assert!(
            !held.is_empty(),
            "node {} holds no entry: keys are not spread",
            node.port
        );
    }

    cluster.nodes[0].stop();
    let mut b = Worker::start(&cluster.url(), NS, &[]);
    for id in 0..30 {
        let answer = b.get(&format!("get {id}"));
        assert!(
            answer
                .value
                .starts_with(&format!("user {id} loaded by pid")),
            "call {id} not answered with one node down: {answer:?}"
        );
    }
    let during = b.get("get 0");
    assert!(
        during.l2_errors > 0,
        "the stopped node's faults are counted"
    );
    // An L2 read needs the entry's node and the nodes of its tag counters (the global
    // one among them), so while a master is down with no replica to take over, reads
    // that touch it are misses answered by the loader.
    assert!(during.loads > 0, "{during:?}");

    cluster.nodes[0].restart();
    cluster.wait_until_ok();
    let mut id = 100;
    let resumed = eventually(Duration::from_secs(15), || {
        id += 1;
        b.get(&format!("get {id}"));
        let mut c = Worker::start(&cluster.url(), NS, &[]);
        c.get(&format!("get {id}")).l2_hits == 1
    });
    assert!(resumed, "L2 did not resume once the node was back");
}

fn put_and_refresh_in_one_process_are_read_by_the_others_without_a_load(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let mut b = Worker::start(&server.url(), NS, &[]);
    a.get("get 5");
    assert_eq!(b.get("get 5").l2_hits, 1, "B holds A's value in its L1");

    assert_eq!(a.send("put 5 written by A"), "ok");
    let seen = eventually(Duration::from_secs(5), || {
        b.get("get 5").value == "written by A"
    });
    assert!(seen, "B kept its old copy after A's put");
    assert_eq!(
        b.get("get 5").loads,
        0,
        "B read the put value from Redis, no load"
    );
    let mut c = Worker::start(&server.url(), NS, &[]);
    assert_eq!(c.get("peek 6").value, "<none>", "peek of an absent entry");
    let from_c = c.get("peek 5");
    assert_eq!(
        (from_c.value.as_str(), from_c.loads),
        ("written by A", 0),
        "peek found the put value in Redis without loading"
    );

    let refreshed = c.get("refresh 5");
    assert_eq!(
        refreshed.loads, 1,
        "refresh loads although Redis holds a fresh value"
    );
    assert!(
        refreshed.value.starts_with("user 5 loaded by pid"),
        "{refreshed:?}"
    );
    let seen = eventually(Duration::from_secs(5), || {
        b.get("get 5").value == refreshed.value
    });
    assert!(seen, "B kept the put value after C's refresh");
    assert_eq!(b.get("get 5").loads, 0);
}

fn a_batch_call_reads_redis_in_one_go_and_loads_only_the_rest(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let written = a.get("batch 0 90");
    assert_eq!(written.value, format!("90 values, loaded [{}]", ids(0..90)));
    // Written back in the background, after the call returned.
    let stored = eventually(Duration::from_secs(5), || {
        entry_keys(&server, "worker.user").len() == 90
    });
    assert!(stored, "one entry per key reaches Redis");

    let mut b = Worker::start(&server.url(), NS, &[]);
    let answer = b.get("batch 0 100");
    assert_eq!(
        answer.value,
        format!("100 values, loaded [{}]", ids(90..100)),
        "exactly the 10 keys Redis did not have reached the loader"
    );
    assert_eq!(
        (answer.loads, answer.l2_hits),
        (1, 90),
        "one loader call; 90 L2 hits"
    );
    let stored = eventually(Duration::from_secs(5), || {
        entry_keys(&server, "worker.user").len() == 100
    });
    assert!(stored, "the 10 loaded values reach Redis");

    // The single-key function shares the entries: promoted ones here, Redis's elsewhere.
    let single = b.get("get 5");
    assert_eq!((single.loads, single.l1_hits), (1, 1));
    let mut c = Worker::start(&server.url(), NS, &[]);
    let from_c = c.get("get 95");
    assert_eq!(
        (from_c.loads, from_c.l2_hits),
        (0, 1),
        "B's batch wrote 95 to Redis"
    );
    assert!(
        from_c.value.starts_with("user 95 loaded by pid"),
        "{from_c:?}"
    );
}

fn a_put_during_a_batch_read_is_not_undone_by_what_the_read_returns(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    a.get("batch 0 10");
    let stored = eventually(Duration::from_secs(5), || {
        entry_keys(&server, "worker.user").len() == 10
    });
    assert!(stored, "the batch's values reach Redis");
    // B's batch finds Redis frozen; 30 ms in, B puts key 3; 80 ms in, Redis answers
    // (inside the 200 ms timeout) with the value from before the put. The put must
    // stay B's value for key 3. The read must come back in time for the case to be
    // tested: a few tries on a slow machine.
    for attempt in 1..=3 {
        let mut b = Worker::start(&server.url(), NS, &[]);
        server.freeze();
        b.request(&format!("batch_put 0 10 3 put-{attempt}"));
        std::thread::sleep(Duration::from_millis(80));
        server.thaw();
        let answer = b.answer();
        if !answer.value.contains("loaded []") {
            eprintln!("attempt {attempt}: the read timed out ({})", answer.value);
            continue;
        }
        assert_eq!(
            answer.value,
            format!("10 values, loaded []; then 3 is put-{attempt}"),
            "the value read from Redis before the put did not replace it"
        );
        return;
    }
    panic!("in three tries, Redis never answered the frozen read inside its timeout");
}

fn ids(range: std::ops::Range<u64>) -> String {
    range.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// A refresh that reads Redis while a `put!` of the key is on its way there finds the
/// value the put replaces, stale, and must not keep it over the put's value in L1: a
/// read after the put returned got the replaced value until the refresh's own load
/// landed (up to 10 ms in a stress run of 3 ms ttls; here the refresh takes 2 s). The
/// worker pauses Redis (`CLIENT PAUSE`) so that the refresh's read queues behind the
/// put's first round trip (standalone only: the pause is one server's).
#[test]
fn a_refresh_reading_redis_during_a_put_does_not_bring_back_the_replaced_value() {
    let server = Deployment::standalone();
    let mut a = Worker::start(&server.url(), NS, &[]);
    let answer = a.get("put_while_paused 1");
    let (during, after) = answer.value.split_once(" / ").expect("two reads");
    assert_eq!(
        during, "written by put",
        "the put's value, stale, while the refresh runs"
    );
    assert_eq!(
        after, "written by put",
        "after the put returned, the value it replaced came back: {answer:?}"
    );
}

fn a_load_in_flight_does_not_write_over_a_put_or_an_invalidation_in_redis(cluster: bool) {
    let server = Deployment::start(cluster, None);
    let mut a = Worker::start(&server.url(), NS, &[]);
    let during = a.get("put_during_load 1 written by put");
    assert!(
        during.value.starts_with("slow 1 loaded by pid"),
        "the caller of the load gets what it loaded: {during:?}"
    );
    let mut b = Worker::start(&server.url(), NS, &[]);
    let answer = b.get("slow_get 1");
    assert_eq!(
        (answer.value.as_str(), answer.loads),
        ("written by put", 0),
        "Redis holds the put value, not the load that started before it"
    );
    assert_eq!(
        a.get("slow_get 1").value,
        "written by put",
        "and A's L1 too"
    );

    a.get("invalidate_during_load 2");
    let answer = b.get("slow_get 2");
    assert_eq!(
        (answer.l2_hits, answer.loads),
        (1, 1),
        "a load that started before the invalidation is not in Redis (B's one L2 hit is key 1)"
    );
    assert_eq!(a.get("slow_get 2").loads, 2, "nor in A's L1: A loads again");

    a.get("put_during_batch_load 3 written over a batch");
    let answer = b.get("slow_get 3");
    assert_eq!(
        answer.value, "written over a batch",
        "the batch's write-back skipped the key put meanwhile"
    );
    let written_back = eventually(Duration::from_secs(5), || {
        let mut c = Worker::start(&server.url(), NS, &[]);
        c.get("slow_get 4").loads == 0
    });
    assert!(written_back, "and wrote back the batch's other key");
}
