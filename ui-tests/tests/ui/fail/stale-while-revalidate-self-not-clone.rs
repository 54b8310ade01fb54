use stratacache::cached;

struct Repo;

impl Repo {
    #[cached(ttl = "1m", stale_while_revalidate, local)]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {
    let _ = Repo.get(1);
}
