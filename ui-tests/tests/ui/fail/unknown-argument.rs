use stratacache::cached;

#[cached(ttll = "1m")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
