use stratacache::cached;

#[derive(Clone)]
struct User {
    name: String,
}

#[cached(ttl = "1m")]
async fn user(id: u64) -> Option<User> {
    Some(User { name: id.to_string() })
}

fn main() {
    let _ = user(1);
}
