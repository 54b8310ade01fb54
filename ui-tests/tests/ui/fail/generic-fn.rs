use stratacache::cached;

#[cached(ttl = "1m")]
async fn get<T: Clone>(value: T) -> T {
    value
}

fn main() {
    let _ = get(1);
}
