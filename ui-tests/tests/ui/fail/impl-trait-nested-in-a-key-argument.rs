use stratacache::cached;

// An `impl Trait` inside the argument's type is still no type the key can keep.
#[cached(ttl = "1m", local)]
async fn total(amounts: Vec<impl Into<u64>>) -> u64 {
    amounts.into_iter().map(Into::into).sum()
}

fn main() {}
