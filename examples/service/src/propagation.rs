//! How long a write made outside every service process takes to reach a cached
//! read: the README's "Writes from anywhere" figure.
//!
//! ```sh
//! cargo build --release -p stratacache-example-service
//! cargo run --release -p stratacache-example-service --bin propagation
//! ```
//!
//! It starts `user-service` on a free loopback port against `DATABASE_URL`, then
//! `ROUNDS` times (default 200): reads a user twice (so it is cached), `UPDATE`s its
//! name from this process's own PostgreSQL connection, and reads it back until the
//! new name shows. Reported: the time from the `UPDATE`'s commit to the first read
//! that sees it (trigger, `NOTIFY`, the service's listener, the invalidation, the
//! reload), p50, p99 and max.

#[allow(dead_code)] // shared with the load check and the tests
mod http;
#[allow(dead_code)]
mod launch;

use std::time::{Duration, Instant};

use http::Connection;
use launch::Service;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // Built next to this binary: cargo build --release -p stratacache-example-service.
    let binary = std::env::current_exe()?.with_file_name("user-service");
    let service = Service::start(&binary, &[("CACHE", "on")]);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let get = |id: i64| -> String {
        Connection::open(&service.addr)
            .and_then(|mut c| c.request("GET", &format!("/users/{id}"), None))
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    let mut took = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let id = 6_000 + (round % 50) as i64;
        get(id);
        get(id);
        let name = format!("propagation {round} {}", std::process::id());
        client
            .execute("UPDATE users SET name = $1 WHERE id = $2", &[&name, &id])
            .await?;
        let committed = Instant::now();
        while !get(id).contains(&name) {
            if committed.elapsed() > Duration::from_secs(5) {
                return Err(format!("round {round}: not seen within 5 s").into());
            }
        }
        took.push(committed.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "{rounds} updates: commit to first fresh read p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}
