// The key checks look only at what is in the key: an `f64` argument that is skipped,
// or left out by a key template, is fine, as is a value kept in-process only that
// has no serde.
use stratacache::cached;

#[derive(Clone)]
struct Quote {
    price: f64,
}

#[cached(ttl = "1m", skip(scale))]
async fn scaled(id: u64, scale: f64) -> u64 {
    (id as f64 * scale) as u64
}

#[cached(ttl = "1m", key = "{id}")]
async fn rounded(id: u64, precision: f64) -> u64 {
    (id as f64 / precision).round() as u64
}

#[cached(ttl = "1m", local)]
async fn quote(id: u64) -> Quote {
    Quote { price: id as f64 }
}

fn main() {
    let _ = scaled(1, 2.0);
    let _ = rounded(1, 0.5);
    let _ = async { quote(1).await.price };
}
