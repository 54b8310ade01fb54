use std::sync::Arc;

use stratacache::{cached, clear, invalidate};

#[derive(Clone)]
struct Repo {
    prefix: Arc<str>,
}

impl Repo {
    /// Docs and attributes stay on the function.
    #[cached(ttl = "5m", tags = ["users", "user:{name}"], skip(trace))]
    pub async fn find(&self, name: &str, ids: &[u32], trace: &mut Vec<String>) -> Result<String, std::io::Error> {
        trace.push(name.to_owned());
        Ok(format!("{}{name}{ids:?}", self.prefix))
    }

    #[cached(ttl = "5m", stale_while_revalidate = "1h")]
    async fn fresh(&self, name: &str, mut retries: u8) -> Option<String> {
        retries += 1;
        Some(format!("{}{name}{retries}", self.prefix))
    }

    #[cached(ttl = "5m")]
    async fn owned(self: Arc<Self>, id: u64) -> u64 {
        id + self.prefix.len() as u64
    }

    #[cached(local)]
    async fn associated(id: u64) -> u64 {
        id
    }
}

#[cached(local, name = "free")]
async fn free() -> Vec<u8> {
    vec![1, 2, 3]
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let repo = Repo { prefix: "p".into() };
    let mut trace = Vec::new();
    repo.find("ann", &[1, 2], &mut trace).await?;
    repo.fresh("ann", 0).await;
    Arc::new(repo.clone()).owned(1).await;
    Repo::associated(1).await;
    free().await;
    invalidate!(repo.find("ann", &[1, 2], &mut trace)).await?;
    invalidate!(Repo::associated(1)).await?;
    clear!(Repo::fresh).await?;
    clear!(free).await?;
    stratacache::invalidate_tag!("user:{}", "ann").await?;
    Ok(())
}

fn main() {
    let _ = run();
}
