use stratacache::cached;

#[cached(ttl = "20m", sliding, refresh_ahead = 0.8)]
async fn get(id: u64) -> u64 {
    id
}

#[cached(sliding, local)]
async fn without_ttl(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
    let _ = without_ttl(1);
}
