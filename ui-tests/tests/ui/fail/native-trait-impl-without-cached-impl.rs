// In a native trait impl, `#[cached]` cannot tell it is not in an inherent impl: rustc
// names the hidden functions it emits, which a trait impl cannot hold. The fix is
// `#[cached_impl]` on the impl block (README, "A repository trait").
use stratacache::cached;

trait UserRepo {
    async fn name(&self, id: u64) -> String;
}

struct PgRepo;

impl UserRepo for PgRepo {
    #[cached(ttl = "1m", local)]
    async fn name(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {}
