use stratacache::cached;

type AppResult<T> = Result<T, String>;

// Spelled `AppResult`, the attribute cannot see the `Result`: its `Err` would be cached.
#[cached(ttl = "1m")]
async fn load(id: u64) -> AppResult<u64> {
    Ok(id)
}

fn main() {}
