use stratacache::cached;

fn positive(value: &i64) -> bool {
    *value > 0
}

#[cached(ttl = "1m", local, validate = positive)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
