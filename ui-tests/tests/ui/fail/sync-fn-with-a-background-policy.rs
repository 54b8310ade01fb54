use stratacache::cached;

// A sync function's cache is in-process and loads on the caller's thread: nothing
// that needs a runtime or Redis applies.
#[cached(ttl = "1m", stale_while_revalidate, lock)]
fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}
