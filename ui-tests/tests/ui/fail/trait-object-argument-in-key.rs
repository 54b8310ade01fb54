use stratacache::cached;

#[cached(ttl = "1m")]
async fn label(value: &dyn std::fmt::Display) -> String {
    value.to_string()
}

#[cached(ttl = "1m", skip(value))]
async fn skipped(value: &dyn std::fmt::Display, id: u64) -> String {
    format!("{id} {value}")
}

fn main() {}
