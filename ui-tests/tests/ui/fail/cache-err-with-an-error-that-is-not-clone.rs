use stratacache::cached;

#[derive(Debug)]
struct DbError;

#[cached(ttl = "1m", local, cache_err)]
async fn user(id: u64) -> Result<String, DbError> {
    Ok(id.to_string())
}

fn main() {
    let _ = user(1);
}
