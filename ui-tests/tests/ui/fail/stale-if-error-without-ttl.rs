use stratacache::cached;

#[cached(stale_if_error = "1h")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
