use stratacache::cached;

#[cached(ttl = "1m")]
async fn get_name(id: u64) -> String {
    format!("user {id}")
}

async fn run() {
    let _ = stratacache::put!(get_name(7)).await;
}

fn main() {
    let _ = run();
}
