use stratacache::cached;

#[cached(ttl = "1m", refresh_ahead = 1.5)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
