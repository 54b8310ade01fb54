//! One entry of a cached function, as the entry macros name it, and what they do
//! with it; and what `clear!` does with a function's cache. Generated code reaches
//! these through `__private`.

use std::future::Future;

use crate::engine::{Cache, CacheKey, CacheValue, Tags};
use crate::shape::Shape;
use crate::Error;

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
    /// The entry of `cache` for `key`, guarded by `tags`.
    pub fn new(cache: &'static Cache<K, V>, key: K, tags: Tags) -> Self {
        Self {
            cache,
            key,
            tags,
            shape: std::marker::PhantomData,
        }
    }
}

/// The entry type of a function of shape `S` and key `K`: what its entry sibling
/// returns.
pub type EntryOf<K, S> = EntryRef<K, <S as Shape>::Value, S>;

/// What `invalidate!`, `put!`, `peek!` and `contains!` do with an entry.
pub trait EntryOps {
    /// What the cache stores: `T` for a function returning `Result<T, E>` or
    /// `Option<T>` (unless it caches errors or `None`), else the return type.
    type Value;
    /// The function's return type.
    type Out;
    /// An output that means no value (an `Err`, a `None`).
    fn failed(out: &Self::Out) -> bool;
    /// `invalidate!`: drops the entry here, in Redis and in the other processes.
    fn invalidate(self) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    /// `put!`: stores `value` as the entry, here and in Redis.
    fn put(self, value: Self::Value) -> impl Future<Output = Result<(), Error>> + Send + 'static;
    /// `peek!`: the fresh value, from L1 or Redis, without loading.
    fn peek(self) -> impl Future<Output = Option<Self::Value>> + Send + 'static;
    /// `contains!`: whether a fresh value is held, without loading.
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
    /// `clear!`: drops every entry of the cache, everywhere.
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
