use std::collections::HashMap;

use stratacache::cached;

fn positive(value: &u64) -> bool {
    *value > 0
}

#[cached(ttl = "1m", batch, validate = positive)]
async fn get_many(ids: &[u64]) -> HashMap<u64, u64> {
    ids.iter().map(|id| (*id, *id)).collect()
}

fn main() {
    let _ = get_many(&[1]);
}
