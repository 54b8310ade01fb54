use std::collections::HashMap;

use stratacache::cached;

#[cached(ttl = "5m", batch)]
async fn prices(ids: &[u64], currency: &str) -> HashMap<u64, f64> {
    ids.iter().map(|id| (*id, currency.len() as f64)).collect()
}

fn main() {
    let _ = prices(&[1], "EUR");
}
