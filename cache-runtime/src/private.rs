//! Used by generated code only. Not a stable API.
pub use crate::batch_output::{Absence, BatchOutput, CacheMissing, PlainMap, SkipMissing};
pub use crate::engine::{refresh, Cache, CacheOptions, Tags, TimedOutFn};
pub use crate::error::TimedOut;
pub use crate::l2::codec::{serde_codec, Codec};
pub use crate::registry::{default_name, CacheSpec, Slot};
pub use crate::shape::{
    OkOnly, ResultLike, Shape, ShareByClone, ShareByError, ShareByRetry, ShareProbe, SomeOnly,
    Whole, WholeResult,
};
pub use crate::warm::{warm_up, warm_up_batch};
pub use crate::Error;
pub use std::time::Duration;

use std::future::Future;

use crate::engine::{CacheKey, CacheValue};

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

/// Checked on the return type of a `batch` function.
pub const fn assert_batch_output<T: BatchOutput>() {}

/// An element of a batch function's key list, owned: `K` itself or `&K`.
#[inline]
pub fn owned_key<K: Clone, Q: std::borrow::Borrow<K>>(key: Q) -> K {
    key.borrow().clone()
}

/// Checked on the other arguments of a `batch` function, cloned into each loader run.
#[diagnostic::on_unimplemented(
    message = "the arguments of a `batch` function besides its keys must be `Clone`: `{Self}` is not",
    label = "cloned into each run of the loader (a call may run it more than once)",
    note = "pass a reference or an `Arc`, or derive `Clone`"
)]
pub trait BatchArg: Clone {}
impl<T: Clone> BatchArg for T {}

#[inline]
pub fn batch_arg<T: BatchArg>(arg: &T) -> T {
    arg.clone()
}

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

/// One entry of a cached function, as named by `invalidate!(f(args))` and the other
/// entry macros: its key, and its tags (they name the Redis counters that guard it).
pub struct EntryRef<K: 'static, V: 'static, S> {
    cache: &'static Cache<K, V>,
    key: K,
    tags: Tags,
    shape: std::marker::PhantomData<fn() -> S>,
}

// No bounds here: a type error in the function (a value that is not `Clone`, say) is
// reported once, where the function uses its cache, not again for this sibling.
impl<K, V, S> EntryRef<K, V, S> {
    pub fn new(cache: &'static Cache<K, V>, key: K, tags: Tags) -> Self {
        Self {
            cache,
            key,
            tags,
            shape: std::marker::PhantomData,
        }
    }
}

/// What `invalidate!`, `put!`, `peek!` and `contains!` do with an entry.
pub trait EntryOps {
    /// What the cache stores: `T` for a function returning `Result<T, E>` or
    /// `Option<T>` (unless it caches errors or `None`), else the return type.
    type Value;
    /// The function's return type.
    type Out;
    /// An output that means no value (an `Err`, a `None`).
    fn failed(out: &Self::Out) -> bool;
    fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    fn put(self, value: Self::Value) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    fn peek(self) -> impl Future<Output = Option<Self::Value>> + Send + 'static;
    fn contains(self) -> impl Future<Output = bool> + Send + 'static;
}

impl<K, V, S> EntryOps for EntryRef<K, V, S>
where
    K: CacheKey,
    V: CacheValue,
    S: Shape<Value = V>,
{
    type Value = V;
    type Out = S::Out;

    fn failed(out: &S::Out) -> bool {
        S::failed(out)
    }

    fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.cache.invalidate(&self.key)
    }

    fn put(self, value: V) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.cache.put(self.key, self.tags, value)
    }

    fn peek(self) -> impl Future<Output = Option<V>> + Send + 'static {
        self.cache.peek(self.key, self.tags)
    }

    fn contains(self) -> impl Future<Output = bool> + Send + 'static {
        let peek = self.cache.peek(self.key, self.tags);
        async move { peek.await.is_some() }
    }
}

/// What `clear!` does with a function's cache.
pub trait CacheOps {
    fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
}

impl<K, V> CacheOps for &'static Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    fn clear(self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        Cache::clear(self)
    }
}
