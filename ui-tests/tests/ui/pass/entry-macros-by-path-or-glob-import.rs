// The entry macros reach a function of another module by its path, or by its own
// name once a glob has imported it with its hidden functions.
mod users {
    #[stratacache::cached(ttl = "1m", local)]
    pub async fn get_user(id: u64) -> String {
        id.to_string()
    }
}

mod by_path {
    use stratacache::{clear, contains, invalidate, peek, put};

    pub async fn run() {
        assert_eq!(crate::users::get_user(1).await, "1");
        assert!(contains!(crate::users::get_user(1)).await);
        put!(super::users::get_user(2), "two".to_owned()).await.unwrap();
        assert_eq!(peek!(super::users::get_user(2)).await.as_deref(), Some("two"));
        invalidate!(crate::users::get_user(2)).await.unwrap();
        assert_eq!(peek!(crate::users::get_user(2)).await, None);
        clear!(crate::users::get_user).await.unwrap();
        assert!(!contains!(crate::users::get_user(1)).await);
    }
}

mod by_glob {
    use crate::users::*;
    use stratacache::{clear, contains, invalidate};

    pub async fn run() {
        assert_eq!(get_user(3).await, "3");
        assert!(contains!(get_user(3)).await);
        invalidate!(get_user(3)).await.unwrap();
        assert!(!contains!(get_user(3)).await);
        clear!(get_user).await.unwrap();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    by_path::run().await;
    by_glob::run().await;
}
