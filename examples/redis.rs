//! The Redis tier: two processes sharing one cache.
//!
//! ```sh
//! cargo run --example redis                       # uses redis://127.0.0.1:6379
//! STRATACACHE_REDIS_URL=redis://host:6379 cargo run --example redis
//! ```
//!
//! The program loads a user (a miss: the "database" is queried and the value is
//! written to Redis), then starts a copy of itself as a second process, which reads
//! the same user as an L2 hit, invalidates its tag, and exits; the first process then
//! sees the invalidation and reloads.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stratacache::{cached, invalidate, invalidate_tag, Config};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    loaded_by: u32,
}

static QUERIES: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = "10m", tags = ["user:{id}"], name = "example.users")]
async fn get_user(id: u64) -> Result<User, std::io::Error> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await; // the database
    Ok(User {
        id,
        name: format!("user {id}"),
        loaded_by: std::process::id(),
    })
}

fn say(role: &str, text: impl std::fmt::Display) {
    println!("[{role} pid {}] {text}", std::process::id());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::from_env().namespace("example");
    if config.redis_url.is_none() {
        config = config.redis_url("redis://127.0.0.1:6379");
    }
    let url = config.redis_url.clone().unwrap_or_default();
    stratacache::init(config)?;
    let second = std::env::args().nth(1).as_deref() == Some("second");
    let role = if second { "second" } else { "first " };
    if !second {
        // Redis outlives this program: start from a clean slate.
        invalidate!(get_user(7)).await?;
    }

    let user = get_user(7).await?;
    say(
        role,
        format_args!(
            "get_user(7) -> {user:?}, database queries: {}",
            QUERIES.load(Ordering::SeqCst)
        ),
    );

    if second {
        invalidate_tag!("user:{}", 7).await?;
        say(
            role,
            "invalidated tag user:7 (in Redis and in every process)",
        );
        return Ok(());
    }

    let status = Command::new(std::env::current_exe()?)
        .arg("second")
        .env("STRATACACHE_REDIS_URL", &url)
        .status()?;
    assert!(status.success(), "the second process failed");

    // The invalidation reaches this process over pub/sub; give it a moment.
    for _ in 0..50 {
        if stratacache::stats()
            .cache("example.users")
            .is_none_or(|c| c.entries == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let user = get_user(7).await?;
    say(
        role,
        format_args!(
            "after the invalidation: {user:?}, database queries: {}",
            QUERIES.load(Ordering::SeqCst)
        ),
    );
    print!("\n{}", stratacache::stats());
    Ok(())
}
