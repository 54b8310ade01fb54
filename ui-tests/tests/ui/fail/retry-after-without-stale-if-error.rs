use stratacache::cached;

#[cached(ttl = "1m", retry_after = "5s")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
