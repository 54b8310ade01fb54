//! The PostgreSQL listener (`stratacache::postgres::PgInvalidation`) when it cannot
//! hear the database: its connection goes through a TCP proxy in this test, which
//! is missing at first, or stops forwarding without closing anything (a network
//! partition). Whatever the database announced meanwhile is lost, so once the
//! listener listens again it must drop every value of its `on_reconnect_invalidate`
//! tags. The real PostgreSQL of this machine (DATABASE_URL, or
//! postgres://postgres@127.0.0.1:5432/test), real tokio.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stratacache::cached;
use stratacache::postgres::PgInvalidation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::Level;

#[path = "../../../tests/support/events.rs"]
mod events;

const DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DATABASE.to_owned())
}

/// What the "database" holds for a tag: the tests change it behind the cache's back.
static ROWS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

fn write_row(tag: &str, version: u64) {
    let mut rows = ROWS.lock().unwrap();
    rows.get_or_insert_with(HashMap::new)
        .insert(tag.to_owned(), version);
}

#[cached(ttl = "1h", tags = ["{tag}"], local)]
async fn row(tag: String) -> u64 {
    let rows = ROWS.lock().unwrap();
    rows.as_ref()
        .and_then(|rows| rows.get(&tag).copied())
        .unwrap_or(0)
}

/// Waits, bounded, until the cached read shows `version`.
async fn until_read(tag: &str, version: u64, limit: Duration) {
    let started = Instant::now();
    loop {
        let read = row(tag.to_owned()).await;
        if read == version {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{tag}: still {read} after {limit:?}, not {version}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `NOTIFY`, from a connection of its own.
async fn notify(channel: &str, tag: &str) {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    let driver = tokio::spawn(connection);
    let payload = format!(r#"{{"tags": ["{tag}"]}}"#);
    client
        .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
        .await
        .expect("notify");
    drop(client);
    let _ = driver.await;
}

/// A TCP proxy to PostgreSQL. `freeze` stalls the connections it holds (both
/// directions stop, nothing is closed); connections made later are forwarded.
struct Proxy {
    accepted: Arc<AtomicU64>,
    /// Connections accepted before this many are frozen.
    frozen_below: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the proxy");
        let upstream: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        let (accepted, frozen_below) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (counted, frozen) = (accepted.clone(), frozen_below.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let generation = counted.fetch_add(1, SeqCst);
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(forward(
                    client_read,
                    server_write,
                    generation,
                    frozen.clone(),
                ));
                tokio::spawn(forward(
                    server_read,
                    client_write,
                    generation,
                    frozen.clone(),
                ));
            }
        });
        Self {
            accepted,
            frozen_below,
        }
    }

    fn freeze(&self) {
        self.frozen_below.store(self.accepted.load(SeqCst), SeqCst);
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: u64,
    frozen_below: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if generation < frozen_below.load(SeqCst) {
            // Partitioned: hold both sockets open and pass nothing on.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}x{nanos}", std::process::id())
}

fn listener_through(addr: SocketAddr, channel: &str, tag: &str) -> PgInvalidation {
    let url = format!("postgres://postgres@{addr}/test");
    PgInvalidation::new(url)
        .channel(channel)
        .on_reconnect_invalidate([tag])
        .health_check(Duration::from_millis(200))
}

/// A database it cannot reach for a while is one warning, then quiet retries (they
/// were one warning every 5 s for as long as the database was down).
#[tokio::test]
async fn a_listener_that_cannot_connect_warns_once() {
    events::keep();
    let (addr, channel, tag) = (free_port(), unique("channel"), unique("tag"));
    let listening = listener_through(addr, &channel, &tag).spawn();
    let attempts = || {
        let logged = events::logged(Level::DEBUG, "::postgres");
        let ours = |(_, _, message): &events::Logged| message.contains(&channel);
        logged.into_iter().filter(ours).collect::<Vec<_>>()
    };
    // Attempts 100, 200 and 400 ms apart: the fourth within a second.
    events::until_found(4, attempts).await;
    let warnings: Vec<_> = attempts()
        .into_iter()
        .filter(|(level, _, _)| *level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    listening.abort();
}

/// The listener starts while PostgreSQL cannot be reached: values cached and
/// changed before it first listens must go once it does.
#[tokio::test]
async fn a_listener_that_could_not_connect_at_first_drops_what_it_missed() {
    let (addr, channel, tag) = (free_port(), unique("channel"), unique("tag"));
    write_row(&tag, 1);
    let listening = listener_through(addr, &channel, &tag).spawn();
    assert_eq!(row(tag.clone()).await, 1);

    // A write it could not hear of: its notification reaches no one.
    write_row(&tag, 2);
    notify(&channel, &tag).await;
    assert_eq!(
        row(tag.clone()).await,
        1,
        "cached, and nobody said otherwise"
    );

    let _proxy = Proxy::start(addr).await;
    until_read(&tag, 2, Duration::from_secs(10)).await;

    // And it hears what comes next.
    write_row(&tag, 3);
    notify(&channel, &tag).await;
    until_read(&tag, 3, Duration::from_secs(5)).await;
    listening.abort();
}

/// The listener's connection stops answering without being closed: the listener
/// notices within its health check, reconnects, and drops what it may have missed.
#[tokio::test]
async fn a_listener_whose_connection_dies_silently_reconnects_and_drops_what_it_missed() {
    let (addr, channel, tag) = (free_port(), unique("channel"), unique("tag"));
    let proxy = Proxy::start(addr).await;
    write_row(&tag, 1);
    let listening = listener_through(addr, &channel, &tag).spawn();
    assert_eq!(row(tag.clone()).await, 1);
    // Listening: a notification gets through.
    write_row(&tag, 2);
    let started = Instant::now();
    while row(tag.clone()).await != 2 {
        notify(&channel, &tag).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.freeze();
    write_row(&tag, 3);
    notify(&channel, &tag).await;
    until_read(&tag, 3, Duration::from_secs(10)).await;
    listening.abort();
}
