use stratacache::cached;

#[cached(ttl = "soon", capacity = 0, tags = ["user:{who}"], cahce_none)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
