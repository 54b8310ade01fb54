use std::borrow::Cow;

use stratacache::cached;

#[cached(ttl = "1m", local)]
async fn by_static_cow(name: Cow<'static, str>) -> String {
    name.into_owned()
}

#[cached(ttl = "1m", local)]
async fn by_named_lifetime<'a>(name: &'a str, tags: &'a [u8]) -> usize {
    name.len() + tags.len()
}

#[cached(ttl = "1m", local, skip(scratch))]
async fn skipped_borrow(id: u64, scratch: Option<&str>) -> u64 {
    id + scratch.map_or(0, |s| s.len() as u64)
}

fn main() {
    let _ = by_static_cow(Cow::Borrowed("a"));
    let _ = by_named_lifetime("a", b"b");
    let _ = skipped_borrow(1, None);
}
