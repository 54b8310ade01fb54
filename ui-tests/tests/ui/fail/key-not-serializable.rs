use stratacache::cached;

#[derive(Clone, Hash, PartialEq, Eq)]
struct UserId(u64);

#[cached(ttl = "1m")]
async fn user(id: UserId) -> String {
    id.0.to_string()
}

fn main() {
    let _ = user(UserId(1));
}
