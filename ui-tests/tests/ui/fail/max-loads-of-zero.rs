use stratacache::cached;

#[cached(ttl = "1m", max_loads = 0)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
