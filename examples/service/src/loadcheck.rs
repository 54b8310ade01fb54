//! Drives the user service with and without the cache and reports requests/s, p50 and
//! p99 latency, and the database queries the cache avoided.
//!
//! ```sh
//! cargo run --release -p stratacache-example-service --bin loadcheck
//! ```
//!
//! It starts `user-service` twice on free loopback ports (CACHE=on, CACHE=off) against
//! `DATABASE_URL`, then sends `REQUESTS` requests (default 20,000) from `CONCURRENCY`
//! connections (default 32): reads of user ids drawn from a Zipf distribution (s = 1.1
//! over 10,000 ids, like real traffic: a few hot users, a long tail), with
//! `WRITE_PERCENT` (default 2) of them writes that invalidate the user.

mod http;
mod launch;

use std::sync::Arc;
use std::time::Instant;

use http::{sample, Connection};
use launch::Service;

const USERS: usize = 10_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cumulative Zipf probabilities over ids 1..=USERS.
fn zipf(s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=USERS)
        .map(|rank| 1.0 / (rank as f64).powf(s))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            cumulative += w / total;
            cumulative
        })
        .collect()
}

/// xorshift64*: reproducible and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn start(cache: bool) -> Service {
    // Built next to this binary: cargo build --release -p stratacache-example-service.
    let binary = std::env::current_exe()
        .unwrap()
        .with_file_name("user-service");
    Service::start(&binary, &[("CACHE", if cache { "on" } else { "off" })])
}

struct Outcome {
    requests: usize,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    queries: f64,
}

/// The service's count of PostgreSQL queries, from its /metrics.
fn database_queries(service: &Service) -> f64 {
    let page = Connection::open(&service.addr)
        .unwrap()
        .request("GET", "/metrics", None)
        .unwrap()
        .1;
    sample(&page, "app_db_queries_total").expect("app_db_queries_total in /metrics")
}

fn drive(
    service: &Service,
    requests: usize,
    connections: usize,
    write_percent: usize,
    cdf: Arc<Vec<f64>>,
) -> Outcome {
    let queries_before = database_queries(service);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (addr, cdf) = (service.addr.clone(), cdf.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((worker as u64 + 1) * 0x1234_5678_9abc_def1));
                let mut connection = Connection::open(&addr).unwrap();
                let mut latencies = Vec::with_capacity(requests / connections);
                for i in 0..requests / connections {
                    let id = cdf.partition_point(|&p| p < rng.next()).min(USERS - 1) + 1;
                    let begun = Instant::now();
                    let (status, body) = if rng.next() * 100.0 < write_percent as f64 {
                        let json = format!(r#"{{"id":{id},"name":"load {worker}-{i}","email":"u{id}@example.com"}}"#);
                        connection.request("PUT", &format!("/users/{id}"), Some(&json)).unwrap()
                    } else {
                        connection.request("GET", &format!("/users/{id}"), None).unwrap()
                    };
                    assert_eq!(status, 200, "{body}");
                    latencies.push(begun.elapsed().as_micros() as u64);
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let queries_after = database_queries(service);
    Outcome {
        requests: latencies.len(),
        seconds,
        p50_us: at(0.5),
        p99_us: at(0.99),
        queries: queries_after - queries_before,
    }
}

fn main() {
    let requests = env("REQUESTS", 20_000);
    let connections = env("CONCURRENCY", 32);
    let write_percent = env("WRITE_PERCENT", 2);
    let cdf = Arc::new(zipf(1.1));
    println!("{requests} requests, {connections} connections, {write_percent}% writes, Zipf s=1.1 over {USERS} users\n");
    println!("| mode | requests/s | p50 | p99 | database queries |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut results = Vec::new();
    for cache in [false, true] {
        let service = start(cache);
        // A short warm-up on both, so connection set-up is not measured.
        drive(&service, connections * 20, connections, 0, cdf.clone());
        let outcome = drive(&service, requests, connections, write_percent, cdf.clone());
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} |",
            if cache {
                "with stratacache"
            } else {
                "without cache"
            },
            outcome.requests as f64 / outcome.seconds,
            outcome.p50_us as f64 / 1000.0,
            outcome.p99_us as f64 / 1000.0,
            outcome.queries
        );
        results.push(outcome);
    }
    let (without, with) = (&results[0], &results[1]);
    println!(
        "\nqueries avoided: {:.1}% ({:.0} of {:.0}); throughput {:.1}x",
        100.0 * (1.0 - with.queries / without.queries),
        without.queries - with.queries,
        without.queries,
        (with.requests as f64 / with.seconds) / (without.requests as f64 / without.seconds)
    );
}
