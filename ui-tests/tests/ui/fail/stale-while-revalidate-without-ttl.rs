use stratacache::cached;

#[cached(stale_while_revalidate)]
async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
