use stratacache::cached;

struct Report(String);

#[cached(ttl = "1m", local)]
async fn report(id: u64) -> Report {
    Report(id.to_string())
}

fn main() {
    let _ = report(1);
}
