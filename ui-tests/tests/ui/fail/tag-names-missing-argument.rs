use stratacache::cached;

#[cached(ttl = "1m", tags = ["users", "user:{user_id}"])]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
