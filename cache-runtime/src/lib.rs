//! Runtime of [stratacache](https://docs.rs/stratacache): the registry of caches, the
//! cache-aside engine, tag versions and statistics. Use it through the `stratacache`
//! facade; the `#[cached]` attribute generates calls into [`__private`].

mod clock;
mod engine;
mod error;
mod flight;
pub mod l1;
mod registry;
mod shape;
mod stats;
mod tags;

pub use error::Error;
pub use registry::stats;
pub use stats::{CacheStatsSnapshot, StatsSnapshot};

/// Invalidates every entry, in every cache, that was stored with tag `tag`.
///
/// O(1) whatever the number of entries: the tag's version is bumped and entries that
/// recorded the old version are never served again. A load that was in flight when
/// this was called does not store a value that survives it. Prefer the
/// `invalidate_tag!` macro, which takes format arguments.
///
/// Returns a future so the same code works when a Redis tier is enabled; in
/// in-process mode it is ready at once and never fails.
pub fn invalidate_tag(
    tag: &str,
) -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
    tags::bump_named(tag);
    std::future::ready(Ok(()))
}

/// Invalidates every entry of every cache.
pub fn clear_all() -> impl std::future::Future<Output = Result<(), Error>> + Send + 'static {
    tags::GLOBAL.bump();
    registry::clear_all_stores();
    std::future::ready(Ok(()))
}

#[doc(hidden)]
pub mod __private {
    //! Used by generated code only. Not a stable API.
    pub use crate::engine::{Cache, CacheOptions, Tags};
    pub use crate::registry::{default_name, Slot};
    pub use crate::shape::{
        OkOnly, ResultLike, Shape, ShareByClone, ShareByRetry, ShareProbe, SomeOnly, Whole,
        WholeResult,
    };
    pub use crate::Error;
    pub use std::time::Duration;

    use std::future::Future;
    use std::hash::Hash;

    /// Checked on every cached function's value type.
    #[diagnostic::on_unimplemented(
        message = "the value of a cached function must be `Clone + Send + Sync + 'static`: `{Self}` is not",
        label = "this value is returned by clone on every hit",
        note = "derive or implement `Clone` for it, or wrap it in `Arc`"
    )]
    pub trait CacheableValue {}
    impl<T: Clone + Send + Sync + 'static> CacheableValue for T {}

    /// Checked on the value type of a cache that is not `local`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` must implement `Serialize` and `DeserializeOwned` to be stored in a shared cache",
        label = "values of a non-`local` cache are serialized for Redis",
        note = "derive `serde::Serialize` and `serde::Deserialize` for it, or mark the function `#[cached(local)]` to keep it in-process only"
    )]
    pub trait SharedValue {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned> SharedValue for T {}

    pub const fn assert_cacheable<T: CacheableValue + ?Sized>() {}
    pub const fn assert_shared<T: SharedValue + ?Sized>() {}

    /// Fixes the loader's output type, so `?` in the function body converts errors
    /// into the function's own error type exactly as it did before the attribute.
    #[inline(always)]
    pub fn typed_loader<T, F: Future<Output = T>>(loader: F) -> F {
        loader
    }

    /// Checked on `Self` for a `&self` method whose refreshes run in the background.
    #[diagnostic::on_unimplemented(
        message = "`stale_while_revalidate` on a `&self` method needs `{Self}: Clone + Send + Sync + 'static`",
        label = "the background refresh runs on a clone of `self`",
        note = "derive `Clone` (keep shared state behind `Arc` so the clone is cheap), or take `self: Arc<Self>`"
    )]
    pub trait RefreshableReceiver {
        fn clone_for_refresh(&self) -> Self;
    }
    impl<T: Clone + Send + Sync + 'static> RefreshableReceiver for T {
        fn clone_for_refresh(&self) -> Self {
            self.clone()
        }
    }

    pub fn clone_receiver<T: RefreshableReceiver>(receiver: &T) -> T {
        receiver.clone_for_refresh()
    }

    /// One entry of a cached function, as named by `invalidate!(f(args))`.
    pub struct EntryRef<K: 'static, S: Shape> {
        cache: &'static Cache<K, S>,
        key: K,
    }

    impl<K, S> EntryRef<K, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        S: Shape,
        S::Out: Send,
    {
        pub fn new(cache: &'static Cache<K, S>, key: K) -> Self {
            Self { cache, key }
        }
    }

    /// What `invalidate!` and its siblings do with an entry.
    pub trait EntryOps {
        fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    }

    impl<K, S> EntryOps for EntryRef<K, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        S: Shape,
        S::Out: Send,
    {
        fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
            self.cache.invalidate(&self.key);
            std::future::ready(Ok(()))
        }
    }

    /// What `clear!` does with a function's cache.
    pub trait CacheOps {
        fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    }

    impl<K, S> CacheOps for &'static Cache<K, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        S: Shape,
        S::Out: Send,
    {
        fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
            Cache::clear(self);
            std::future::ready(Ok(()))
        }
    }
}
