use stratacache::cached;

#[cached(ttl = "1m", local)]
async fn price(amount: f64) -> u64 {
    amount as u64
}

fn main() {
    let _ = price(1.5);
}
