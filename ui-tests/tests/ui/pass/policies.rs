use stratacache::cached;

#[derive(Clone)]
struct Repo;

impl Repo {
    #[cached(ttl = "5m", stale_if_error = "1h", retry_after = "10s", refresh_ahead = 0.8)]
    async fn get(&self, name: &str) -> Result<String, std::io::Error> {
        Ok(name.to_owned())
    }
}

#[cached(ttl = "5m", stale_while_revalidate = "1m", stale_if_error = "1h", timeout = "2s")]
async fn free(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {
    let _ = Repo.get("a");
    let _ = free(1);
}
