use stratacache::cached;

#[cached(ttl = "5m", batch)]
async fn prices(ids: &[u64]) -> Vec<f64> {
    ids.iter().map(|_| 1.0).collect()
}

fn main() {
    let _ = prices(&[1]);
}
