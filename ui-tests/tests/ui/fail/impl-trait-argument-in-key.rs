use stratacache::cached;

#[cached(ttl = "1m")]
async fn get(id: u64, client: impl std::fmt::Debug) -> u64 {
    let _ = client;
    id
}

fn main() {
    let _ = get(1, ());
}
