// Shared by `schema_v1.rs` and `schema_v2.rs` (through `include!`): two deploys of
// one service whose cached `Account` differs only in the order of two `u32` fields.
// Run with `REDIS_URL NAMESPACE`; prints the account and this process's counters.

static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[stratacache::cached(ttl = "60s", name = "schema.account")]
async fn account(id: u32) -> Account {
    LOADS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Account {
        id,
        balance: 100 * id,
    }
}

/// The same with entries that end in 100 ms, long before their keys leave Redis.
#[stratacache::cached(ttl = "100ms", name = "schema.brief")]
async fn brief_account(id: u32) -> Account {
    account(id).await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace] = args.as_slice() else {
        eprintln!("usage: schema_vN REDIS_URL NAMESPACE");
        std::process::exit(2);
    };
    let config = stratacache::Config::new().redis_url(url).namespace(namespace);
    stratacache::init(config).expect("init");
    let read = account(7).await;
    brief_account(7).await;
    let stats = stratacache::stats();
    let counters = stats.cache("schema.account").expect("used");
    let brief = stats.cache("schema.brief").expect("used");
    println!(
        "{}",
        serde_json::json!({
            "id": read.id,
            "balance": read.balance,
            "loads": LOADS.load(std::sync::atomic::Ordering::SeqCst),
            "l2_hits": counters.l2_hits,
            "schema_mismatches": counters.schema_mismatches,
            "brief_schema_mismatches": brief.schema_mismatches,
        })
    );
}
