//! stratacache in one file, in-process only (no Redis needed):
//! `cargo run --example quickstart`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use stratacache::{cached, invalidate_tag, peek, put, refresh, warm_up};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// Pretend database: every query takes 50 ms and is counted.
static QUERIES: AtomicU32 = AtomicU32::new(0);

async fn query_user(id: u64) -> Result<User, std::io::Error> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(User {
        id,
        name: format!("user {id}"),
    })
}

#[cached(ttl = "15m", tags = ["users", "user:{id}"], name = "users.get")]
async fn get_user(id: u64) -> Result<User, std::io::Error> {
    query_user(id).await
}

/// The same cache as `get_user` (same `name`, key and value types): one query for
/// all the ids that are not cached yet.
#[cached(ttl = "15m", tags = ["users", "user:{ids}"], name = "users.get", batch)]
async fn get_users(ids: &[u64]) -> Result<HashMap<u64, User>, std::io::Error> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("   one query for ids {ids:?}");
    Ok(ids
        .iter()
        .map(|&id| {
            (
                id,
                User {
                    id,
                    name: format!("user {id}"),
                },
            )
        })
        .collect())
}

static PRICE_VERSION: AtomicU32 = AtomicU32::new(1);

/// Fresh for 200 ms, then served stale for up to a minute while it refreshes.
#[cached(ttl = "200ms", stale_while_revalidate = "1m", name = "prices.get")]
async fn get_price(sku: &str) -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    format!(
        "{sku}: price list v{}",
        PRICE_VERSION.load(Ordering::SeqCst)
    )
}

static RATES_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Fail-safe: when the rates service fails, the last rate answers (for up to an hour
/// past its ttl), and the service is retried at most once a second.
#[cached(
    ttl = "200ms",
    stale_if_error = "1h",
    retry_after = "1s",
    name = "rates.get"
)]
async fn get_rate(currency: &str) -> Result<f64, String> {
    if RATES_DOWN.load(Ordering::SeqCst) {
        return Err(format!("rates service down ({currency})"));
    }
    Ok(1.08)
}

static HEADLINES: AtomicU32 = AtomicU32::new(0);

/// Refresh-ahead: after half of its 400 ms ttl, a read answers at once and refreshes
/// in the background.
#[cached(ttl = "400ms", refresh_ahead = 0.5, name = "news.headline")]
async fn get_headline() -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    format!("headline #{}", HEADLINES.fetch_add(1, Ordering::SeqCst) + 1)
}

async fn timed<T>(label: &str, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    println!(
        "  {label:<38} {:>9.3} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("1. A miss runs the body; hits return a clone of the cached value");
    timed("get_user(1)  miss", get_user(1)).await?;
    timed("get_user(1)  hit", get_user(1)).await?;
    timed("get_user(1)  hit", get_user(1)).await?;
    println!(
        "   database queries so far: {}",
        QUERIES.load(Ordering::SeqCst)
    );

    println!("\n2. 1,000 concurrent callers of one missing key share one load");
    let before = QUERIES.load(Ordering::SeqCst);
    let callers: Vec<_> = (0..1000).map(|_| tokio::spawn(get_user(2))).collect();
    for caller in callers {
        caller.await??;
    }
    println!(
        "   database queries for 1,000 calls: {}",
        QUERIES.load(Ordering::SeqCst) - before
    );

    println!("\n3. invalidate_tag!(\"user:{{}}\", 1) drops user 1 only");
    invalidate_tag!("user:{}", 1).await?;
    timed("get_user(1)  miss after invalidation", get_user(1)).await?;
    timed("get_user(2)  still a hit", get_user(2)).await?;

    println!("\n4. stale-while-revalidate: past the ttl, the stale value comes back at once");
    println!(
        "   {}",
        timed("get_price(\"tea\")  miss", get_price("tea")).await
    );
    PRICE_VERSION.store(2, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    println!(
        "   {}",
        timed(
            "get_price(\"tea\")  stale, refresh starts",
            get_price("tea")
        )
        .await
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    println!(
        "   {}",
        timed("get_price(\"tea\")  refreshed", get_price("tea")).await
    );

    println!("\n5. fail-safe: the rates service goes down; the last rate answers");
    println!(
        "   {:?}",
        timed("get_rate(\"EUR\")  miss", get_rate("EUR")).await
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    RATES_DOWN.store(true, Ordering::SeqCst);
    println!(
        "   {:?}",
        timed("get_rate(\"EUR\")  loader fails", get_rate("EUR")).await
    );
    println!(
        "   {:?}",
        timed("get_rate(\"EUR\")  back-off: no call", get_rate("EUR")).await
    );

    println!("\n6. refresh-ahead: past half the ttl, the value answers at once and refreshes");
    println!("   {}", timed("get_headline()  miss", get_headline()).await);
    tokio::time::sleep(Duration::from_millis(250)).await;
    println!(
        "   {}",
        timed("get_headline()  refresh starts", get_headline()).await
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    println!(
        "   {}",
        timed("get_headline()  refreshed", get_headline()).await
    );

    println!("\n7. A batch function: the cached ids are not queried again");
    let users = get_users(&[1, 2, 3, 4]).await?;
    println!("   get_users(&[1, 2, 3, 4]) -> {} users", users.len());
    let report = warm_up!(get_users(&(10..20).collect::<Vec<u64>>())).await;
    println!("   warm_up!(get_users(10..20)): {report}");
    let report = warm_up!([3, 4, 5], |id| get_user(id), concurrency = 2).await;
    println!("   warm_up!([3, 4, 5], |id| get_user(id)): {report}");

    println!("\n8. Write-through: store what was just written; refresh; peek");
    let renamed = User {
        id: 2,
        name: "Grace".into(),
    };
    put!(get_user(2), renamed).await?;
    println!("   after put!:     {:?}", get_user(2).await?);
    println!("   refresh!:       {:?}", refresh!(get_user(2)).await?);
    println!("   peek!(user 99): {:?}", peek!(get_user(99)).await);

    println!("\n9. Statistics");
    print!("{}", stratacache::stats());
    Ok(())
}
