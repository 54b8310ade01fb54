use std::collections::HashMap;

use stratacache::cached;

#[cached(ttl = "5m", batch, stale_while_revalidate)]
async fn prices(ids: &[u64]) -> HashMap<u64, f64> {
    ids.iter().map(|id| (*id, 1.0)).collect()
}

fn main() {
    let _ = prices(&[1]);
}
