// `use users::get_user` imports the function alone, not the hidden functions the
// entry macros call: name it by its path, or import with a glob (README, "Invalidation").
mod users {
    #[stratacache::cached(ttl = "1m", local)]
    pub async fn get_user(id: u64) -> String {
        id.to_string()
    }
}

use users::get_user;

async fn run() {
    let _ = get_user(7).await;
    let _ = stratacache::invalidate!(get_user(7)).await;
}

fn main() {
    let _ = run();
}
