use stratacache::cached;

#[derive(Debug)]
struct Failure;

impl From<stratacache::TimedOut> for Failure {
    fn from(_: stratacache::TimedOut) -> Self {
        Failure
    }
}

#[cached(ttl = "1m", hard_timeout)]
async fn get(id: u64) -> Result<u64, Failure> {
    Ok(id)
}

fn main() {
    let _ = get(1);
}
