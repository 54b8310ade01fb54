use stratacache::cached;

#[cached(ttl = "1m", skip(pool))]
async fn get(id: u64, db: &str) -> u64 {
    let _ = db;
    id
}

fn main() {
    let _ = get(1, "db");
}
