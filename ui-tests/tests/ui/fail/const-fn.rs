use stratacache::cached;

#[cached(ttl = "1m")]
const fn doubled(id: u64) -> u64 {
    id * 2
}

fn main() {}
