use stratacache::cached;

#[async_trait::async_trait]
trait UserRepo: Send + Sync {
    async fn name(&self, id: u64) -> String;
}

struct PgRepo;

// `#[cached_impl]` is missing above `#[async_trait]`.
#[async_trait::async_trait]
impl UserRepo for PgRepo {
    #[cached(ttl = "1m", local)]
    async fn name(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {}
