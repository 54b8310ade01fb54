use stratacache::cached;

#[cached(ttl = 15)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
