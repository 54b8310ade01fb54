use stratacache::cached;

#[cached(ttl = "1m")]
async fn get_name(id: u64) -> Result<String, std::io::Error> {
    Ok(format!("user {id}"))
}

async fn run() {
    // The cache holds the `Ok` value: a `String`, not the whole `Result`.
    let _ = stratacache::put!(get_name(7), Ok(String::new())).await;
}

fn main() {
    let _ = run();
}
