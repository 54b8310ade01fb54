//! Runtime of [stratacache](https://docs.rs/stratacache): the registry of caches, the
//! cache-aside engine, tag versions and statistics. Use it through the `stratacache`
//! facade; the `#[cached]` attribute generates calls into [`__private`].

mod backplane;
mod clock;
mod config;
mod engine;
mod error;
mod export;
mod flight;
pub mod l1;
mod l2;
mod registry;
mod shape;
mod stats;
mod tags;
pub mod this_load;

use std::future::Future;

pub use config::{init, Config};
pub use error::{Error, TimedOut};
pub use export::prometheus;
pub use l2::codec::PayloadFormat;
pub use registry::stats;
pub use stats::{CacheStatsSnapshot, LoadHistogram, StatsSnapshot, LOAD_BUCKETS_MICROS};

/// Invalidates every entry, in every cache, that was stored with tag `tag`.
///
/// O(1) whatever the number of entries: the tag's version is bumped and entries that
/// recorded the old version are never served again. A load that was in flight when
/// this was called does not store a value that survives it. Prefer the
/// `invalidate_tag!` macro, which takes format arguments.
///
/// This process applies it at once. With the Redis tier on, the future also bumps the
/// tag's counter in Redis (entries there become invalid for every process) and tells
/// the other processes; it fails with [`Error::Redis`] if Redis did not take it.
pub fn invalidate_tag(tag: &str) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::bump_named(tag);
    let remote = l2::active().map(|l2| {
        // The cell records the version this produces, so that this process does not
        // apply its own invalidation a second time when it next reads the counter.
        let cell = tags::held(tag).unwrap_or_default();
        (
            l2,
            (l2::keys::tag(&l2.namespace, tag), cell),
            tag.to_owned(),
        )
    });
    async move {
        match remote {
            Some((l2, bump, tag)) => {
                let message = |version| backplane::Message::Tag { tag, version };
                engine::publish(l2, Some(bump), None, message).await
            }
            None => Ok(()),
        }
    }
}

/// Invalidates every entry of every cache, here, in Redis and in the other processes.
pub fn clear_all() -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::GLOBAL.bump();
    registry::clear_all_stores();
    let remote = l2::active().map(|l2| (l2, l2::keys::global_tag(&l2.namespace)));
    async move {
        match remote {
            Some((l2, counter)) => {
                let bump = Some((counter, tags::GLOBAL.clone()));
                engine::publish(l2, bump, None, |version| backplane::Message::All {
                    version,
                })
                .await
            }
            None => Ok(()),
        }
    }
}

#[doc(hidden)]
pub mod __private {
    //! Used by generated code only. Not a stable API.
    pub use crate::engine::{Cache, CacheOptions, Tags, TimedOutFn};
    pub use crate::error::TimedOut;
    pub use crate::l2::codec::{serde_codec, Codec};
    pub use crate::registry::{default_name, CacheSpec, Slot};
    pub use crate::shape::{
        OkOnly, ResultLike, Shape, ShareByClone, ShareByRetry, ShareProbe, SomeOnly, Whole,
        WholeResult,
    };
    pub use crate::Error;
    pub use std::time::Duration;

    use std::future::Future;

    use crate::engine::CacheKey;

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

    /// Checked on the key type of a cache that is not `local`.
    #[diagnostic::on_unimplemented(
        message = "the key of a shared cache must implement `Serialize` and `DeserializeOwned`: `{Self}` does not",
        label = "keys of a non-`local` cache are hashed into Redis keys and sent to other processes",
        note = "derive `serde::Serialize` and `serde::Deserialize` for the argument types, `skip` the argument, or mark the function `#[cached(local)]`"
    )]
    pub trait SharedKey {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned> SharedKey for T {}

    pub const fn assert_cacheable<T: CacheableValue + ?Sized>() {}
    pub const fn assert_shared<T: SharedValue + ?Sized>() {}
    pub const fn assert_shared_key<T: SharedKey + ?Sized>() {}

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
        K: CacheKey,
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
        K: CacheKey,
        S: Shape,
        S::Out: Send,
    {
        fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
            self.cache.invalidate(&self.key)
        }
    }

    /// What `clear!` does with a function's cache.
    pub trait CacheOps {
        fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    }

    impl<K, S> CacheOps for &'static Cache<K, S>
    where
        K: CacheKey,
        S: Shape,
        S::Out: Send,
    {
        fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
            Cache::clear(self)
        }
    }
}
