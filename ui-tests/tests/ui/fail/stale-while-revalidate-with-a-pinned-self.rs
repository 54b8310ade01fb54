use std::pin::Pin;

use stratacache::cached;

struct Feed(u64);

impl Feed {
    // The refresh outlives the call: it cannot hold a borrowed `self`.
    #[cached(ttl = "1m", stale_while_revalidate, local)]
    async fn latest(self: Pin<&mut Self>, id: u64) -> u64 {
        self.0 + id
    }
}

fn main() {}
