use stratacache::cached;

#[cached(ttl = "1m")]
async fn get((a, b): (u64, u64)) -> u64 {
    a + b
}

fn main() {
    let _ = get((1, 2));
}
