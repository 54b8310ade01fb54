//! The example service against the real PostgreSQL of this machine (DATABASE_URL, or
//! postgres://postgres@127.0.0.1:5432/test), and against a real redis-server for the
//! multi-process case.

#[path = "../src/http.rs"]
mod http;
#[path = "../src/launch.rs"]
mod launch;
#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use http::{sample, Connection};
use launch::Service;

/// The requests the tests make of a running service.
trait Calls {
    fn get(&self, path: &str) -> (u16, String);
    fn put_user(&self, id: i64, name: &str);
    fn metric(&self, name: &str) -> f64;
    fn queries(&self) -> f64;
}

fn start(redis: Option<(&str, &str)>) -> Service {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_user-service"));
    match redis {
        Some((url, namespace)) => Service::start(
            binary,
            &[
                ("STRATACACHE_REDIS_URL", url),
                ("STRATACACHE_NAMESPACE", namespace),
            ],
        ),
        None => Service::start(binary, &[]),
    }
}

impl Calls for Service {
    fn get(&self, path: &str) -> (u16, String) {
        Connection::open(&self.addr)
            .unwrap()
            .request("GET", path, None)
            .unwrap()
    }

    fn put_user(&self, id: i64, name: &str) {
        let body = format!(r#"{{"id":{id},"name":"{name}","email":"{name}@example.com"}}"#);
        let (status, reply) = Connection::open(&self.addr)
            .unwrap()
            .request("PUT", &format!("/users/{id}"), Some(&body))
            .unwrap();
        assert_eq!(status, 200, "{reply}");
    }

    fn metric(&self, name: &str) -> f64 {
        sample(&self.get("/metrics").1, name).unwrap_or_else(|| panic!("no {name} in /metrics"))
    }

    fn queries(&self) -> f64 {
        self.metric("app_db_queries_total")
    }
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test{}x{nanos}", std::process::id())
}

#[test]
fn reads_twice_with_one_query_then_sees_its_own_write() {
    let service = start(None);
    let before = service.queries();
    let (status, first) = service.get("/users/4242");
    assert_eq!(status, 200, "{first}");
    let (_, second) = service.get("/users/4242");
    assert_eq!(first, second);
    assert_eq!(service.queries() - before, 1.0, "two reads, one query");

    let name = unique_name();
    service.put_user(4242, &name);
    let (_, after) = service.get("/users/4242");
    assert!(
        after.contains(&name),
        "the read after the write is stale: {after}"
    );
    assert_eq!(
        service.queries() - before,
        3.0,
        "read, write, and one read after the invalidation"
    );

    let (status, _) = service.get("/users/987654321");
    assert_eq!(status, 404);
    let (status, many) = service.get("/users?ids=1,2,987654321");
    assert_eq!(status, 200);
    assert_eq!(many.matches("\"id\"").count(), 2, "{many}");
    let metrics = service.get("/metrics").1;
    assert!(
        metrics.contains("stratacache_hits_total{cache=\"users.get\",level=\"l1\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stratacache_load_duration_seconds_count{cache=\"users.get\"}"),
        "{metrics}"
    );
}

#[test]
fn two_processes_share_redis_and_see_each_others_writes() {
    let redis = support::RedisServer::start();
    let namespace = unique_name();
    let a = start(Some((&redis.url(), &namespace)));
    let b = start(Some((&redis.url(), &namespace)));
    let (a0, b0) = (a.queries(), b.queries());

    let (_, from_a) = a.get("/users/4343");
    let (_, from_b) = b.get("/users/4343");
    assert_eq!(from_a, from_b);
    assert_eq!(a.queries() - a0, 1.0);
    assert_eq!(b.queries() - b0, 0.0, "B must be answered by Redis");
    let metrics = b.get("/metrics").1;
    assert!(
        metrics.contains("stratacache_hits_total{cache=\"users.get\",level=\"l2\"} 1"),
        "{metrics}"
    );

    let name = unique_name();
    b.put_user(4343, &name);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, now) = a.get("/users/4343");
        if now.contains(&name) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A still serves the old user: {now}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs one statement with `psql`, outside every service process.
fn psql(sql: &str) -> String {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DATABASE.to_owned());
    let output = std::process::Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(output.status.success(), "psql {sql}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Polls `service` until user `id` shows `name`; how long that took.
fn until_seen(service: &Service, id: i64, name: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (_, now) = service.get(&format!("/users/{id}"));
        if now.contains(name) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still the old user after {limit:?}: {now}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_psql_update_reaches_every_process_within_a_second() {
    let redis = support::RedisServer::start();
    let namespace = unique_name();
    let a = start(Some((&redis.url(), &namespace)));
    let b = start(Some((&redis.url(), &namespace)));
    for service in [&a, &b] {
        assert_eq!(service.get("/users/4444").0, 200);
    }
    let (a0, b0) = (a.queries(), b.queries());
    assert_eq!(a.get("/users/4444"), b.get("/users/4444"));
    assert_eq!(
        (a.queries(), b.queries()),
        (a0, b0),
        "both serve it from cache"
    );

    let name = unique_name();
    psql(&format!("UPDATE users SET name = '{name}' WHERE id = 4444"));
    for service in [&a, &b] {
        let took = until_seen(service, 4444, &name, Duration::from_secs(1));
        eprintln!("seen after {took:?}");
    }
}

#[test]
fn the_listener_reconnects_and_drops_what_it_may_have_missed() {
    let service = start(None);
    assert_eq!(service.get("/users/4545").0, 200);
    let before = service.queries();
    service.get("/users/4545");
    assert_eq!(service.queries(), before, "cached");

    // The listener's connection dies; PostgreSQL would drop whatever it announced
    // until the listener is back.
    let listener = format!("stratacache listener {}", service.pid());
    let killed = psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{listener}'"
    ));
    assert_eq!(killed, "1", "the service's listener was connected");
    // Once back, it invalidates `users`: the next read queries again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while service.queries() == before {
        service.get("/users/4545");
        assert!(Instant::now() < deadline, "no reconnection within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    // And notifications flow again.
    let name = unique_name();
    psql(&format!("UPDATE users SET name = '{name}' WHERE id = 4545"));
    until_seen(&service, 4545, &name, Duration::from_secs(1));
}
