use stratacache::cached;

// The cache stores the value: its type must have a name, even inside an `Option`.
#[cached(ttl = "1m", local)]
async fn label(id: u64) -> Option<impl std::fmt::Display> {
    Some(id)
}

fn main() {}
