//! A Redis Cluster as the shared tier: nothing but the URL changes.
//!
//! ```text
//! STRATACACHE_REDIS_URL=redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002 \
//!     cargo run --example cluster
//! ```
//!
//! Run it twice: the second process finds the first one's values in the cluster
//! (L2 hits, no loads). A three-master cluster on one machine, for trying it:
//!
//! ```text
//! for port in 7000 7001 7002; do
//!   redis-server --port $port --cluster-enabled yes --cluster-config-file nodes-$port.conf \
//!     --save "" --appendonly no --daemonize yes
//! done
//! redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002 --cluster-yes
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use stratacache::{cached, invalidate_tag, Config};

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "10m", tags = ["product:{id}"], name = "products.get")]
async fn product(id: u64) -> Option<String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Some(format!("product {id}"))
}

/// Shares `product`'s entries; the 100 keys live in slots all over the cluster.
#[cached(ttl = "10m", tags = ["product:{ids}"], name = "products.get", batch)]
async fn products(ids: &[u64]) -> HashMap<u64, String> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    ids.iter()
        .map(|id| (*id, format!("product {id}")))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), stratacache::Error> {
    let config = Config::from_env();
    if config.redis_url.is_none() {
        eprintln!("set STRATACACHE_REDIS_URL to the cluster's nodes, comma-separated");
        std::process::exit(2);
    }
    stratacache::init(config.namespace("cluster-example"))?;

    let ids: Vec<u64> = (1..=100).collect();
    let found = products(&ids).await;
    println!(
        "{} products, loader calls so far: {}",
        found.len(),
        LOADS.load(Ordering::SeqCst)
    );
    println!("product(42) = {:?}", product(42).await);

    invalidate_tag!("product:{}", 42).await?;
    println!(
        "after invalidate_tag!(\"product:42\"): {:?}",
        product(42).await
    );

    let stats = stratacache::stats();
    let counters = stats.cache("products.get").expect("used above");
    println!(
        "l1 hits {}, l2 hits {}, misses {}, loader calls {}, l2 errors {}",
        counters.l1_hits, counters.l2_hits, counters.misses, counters.loads, counters.l2_errors
    );
    Ok(())
}
