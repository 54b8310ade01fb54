use stratacache::cached;

#[cached(ttl = "1m", stale_if_error = "1h", lock)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
