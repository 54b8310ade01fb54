use stratacache::cached;

type Maybe<T> = Option<T>;

// Spelled `Maybe`, the attribute cannot see the `Option`: its `None` would be cached.
#[cached(ttl = "1m", local)]
fn find(id: u64) -> Maybe<u64> {
    Some(id)
}

fn main() {}
