mod facade {
    pub use stratacache as cache;
}

#[stratacache::cached(ttl = "1m", crate = "crate::facade::cache")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
