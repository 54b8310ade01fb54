use stratacache::cached;

#[cached(key = "{tenant}/{id}")]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
