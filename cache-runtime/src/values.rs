//! What a cache's keys and values must be. A leaf, so that the types built on them
//! (batch outputs, the registry) need not reach into the engine.

use std::borrow::Borrow;
use std::hash::Hash;

pub use quick_cache::Equivalent;

/// What a cache holds: one value per key, cloned on every hit.
pub trait CacheValue: Clone + Send + Sync + 'static {}
impl<V: Clone + Send + Sync + 'static> CacheValue for V {}

/// What a cache key must be: compared and hashed in L1, cloned into flights and
/// entries, shared across tasks.
pub trait CacheKey: Hash + Eq + Clone + Send + Sync + 'static {}
impl<K: Hash + Eq + Clone + Send + Sync + 'static> CacheKey for K {}

/// A call's key as the generated code passes it: owned, or borrowed from the
/// function's one reference argument (a `&str`, a `&[T]`), so that a hit looks the
/// entry up without allocating an owned key. Only a miss makes one.
pub trait KeyArg<K>: Sized {
    /// What the store is searched with.
    type Lookup: ?Sized + Hash + Equivalent<K>;
    /// The key to search the store with.
    fn lookup(&self) -> &Self::Lookup;
    /// An owned key, leaving this one usable.
    fn to_key(&self) -> K;
    /// The owned key.
    fn into_key(self) -> K;
}

impl<K: CacheKey> KeyArg<K> for K {
    type Lookup = K;

    #[inline]
    fn lookup(&self) -> &K {
        self
    }

    fn to_key(&self) -> K {
        self.clone()
    }

    fn into_key(self) -> K {
        self
    }
}

/// A key borrowed from the call's arguments: `Borrowed(name)` for `name: &str`
/// stands for the key `name.to_owned()`.
pub struct Borrowed<'a, Q: ?Sized>(pub &'a Q);

impl<Q> KeyArg<Q::Owned> for Borrowed<'_, Q>
where
    Q: ?Sized + ToOwned + Hash + Eq,
    Q::Owned: CacheKey + Borrow<Q>,
{
    type Lookup = Q;

    #[inline]
    fn lookup(&self) -> &Q {
        self.0
    }

    fn to_key(&self) -> Q::Owned {
        self.0.to_owned()
    }

    fn into_key(self) -> Q::Owned {
        self.0.to_owned()
    }
}
