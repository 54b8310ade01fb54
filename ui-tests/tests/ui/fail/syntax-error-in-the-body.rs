use stratacache::cached;

// Only rustc's error shows: the attribute adds none of its own.
#[cached(ttl = "1m")]
async fn get(id: u64) -> u64 {
    let x = ;
    id
}

fn main() {}
