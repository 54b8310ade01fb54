use std::borrow::Cow;

use stratacache::cached;

#[cached(ttl = "1m")]
async fn greeting(name: Cow<'_, str>) -> String {
    format!("hello {name}")
}

#[cached(ttl = "1m")]
async fn nickname(name: Option<&str>) -> String {
    name.unwrap_or("friend").to_owned()
}

fn main() {}
