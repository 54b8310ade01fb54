mod facade {
    pub use stratacache as cache;
}

use facade::cache::{clear, contains, invalidate, peek, put, refresh, warm_up};

#[stratacache::cached(ttl = "1m", crate = "crate::facade::cache")]
async fn get(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(get(1).await, 1);
    assert_eq!(peek!(get(1)).await, Some(1));
    assert!(contains!(get(1)).await);
    put!(get(2), 20).await.unwrap();
    assert_eq!(get(2).await, 20);
    assert_eq!(refresh!(get(2)).await, 2);
    invalidate!(get(1)).await.unwrap();
    assert_eq!(warm_up!([3, 4], |id| get(id)).await.loaded, 2);
    clear!(get).await.unwrap();
}
