//! What a batch function returns (a map from key to value, or a `Result` of one) and
//! what its cache holds per key: the value, or with `cache_none` also the knowledge
//! that the loader had nothing for a key.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use crate::values::CacheValue;

/// A map a batch function may return.
pub trait PlainMap {
    /// The map's key type.
    type MapKey;
    /// The map's value type.
    type MapValue;
    /// The map's entries, consumed.
    fn into_pairs(self) -> impl Iterator<Item = (Self::MapKey, Self::MapValue)>;
    /// A map of these entries.
    fn from_pairs(pairs: impl Iterator<Item = (Self::MapKey, Self::MapValue)>) -> Self;
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> PlainMap for HashMap<K, V, S> {
    type MapKey = K;
    type MapValue = V;
    fn into_pairs(self) -> impl Iterator<Item = (K, V)> {
        self.into_iter()
    }
    fn from_pairs(pairs: impl Iterator<Item = (K, V)>) -> Self {
        // Sized for every pair: the engine drops few (absent keys), and growing a map
        // of a hundred entries step by step rehashes it six times.
        let mut map = HashMap::with_capacity_and_hasher(upper_bound(&pairs), S::default());
        map.extend(pairs);
        map
    }
}

impl<K: Ord, V> PlainMap for BTreeMap<K, V> {
    type MapKey = K;
    type MapValue = V;
    fn into_pairs(self) -> impl Iterator<Item = (K, V)> {
        self.into_iter()
    }
    fn from_pairs(pairs: impl Iterator<Item = (K, V)>) -> Self {
        pairs.collect()
    }
}

impl<K, V> PlainMap for Vec<(K, V)> {
    type MapKey = K;
    type MapValue = V;
    fn into_pairs(self) -> impl Iterator<Item = (K, V)> {
        self.into_iter()
    }
    fn from_pairs(pairs: impl Iterator<Item = (K, V)>) -> Self {
        let mut list = Vec::with_capacity(upper_bound(&pairs));
        list.extend(pairs);
        list
    }
}

fn upper_bound(pairs: &impl Iterator) -> usize {
    let (low, high) = pairs.size_hint();
    high.unwrap_or(low)
}

/// The return type of a batch function.
#[diagnostic::on_unimplemented(
    message = "a `batch` function returns a map from key to value; `{Self}` is not one",
    label = "return `HashMap<K, V>`, `BTreeMap<K, V>` or `Vec<(K, V)>`, or a `Result` of one",
    note = "the loader is called with the keys still missing, and its map is split into one cache entry per key"
)]
pub trait BatchOutput: Sized {
    /// The key the batch function is called with.
    type Key;
    /// What the function returns for one key.
    type Item;
    /// The map type the function returns (inside a `Result`, or bare).
    type Map: PlainMap<MapKey = Self::Key, MapValue = Self::Item>;
    /// The map, or the output itself when it is an error (returned as is, not cached).
    fn into_map(self) -> Result<Self::Map, Self>;
    /// The output for a map of answers.
    fn from_map(map: Self::Map) -> Self;
}

impl<M: PlainMap> BatchOutput for M {
    type Key = M::MapKey;
    type Item = M::MapValue;
    type Map = M;
    fn into_map(self) -> Result<M, M> {
        Ok(self)
    }
    fn from_map(map: M) -> M {
        map
    }
}

impl<M: PlainMap, E> BatchOutput for Result<M, E> {
    type Key = M::MapKey;
    type Item = M::MapValue;
    type Map = M;
    fn into_map(self) -> Result<M, Self> {
        self.map_err(Err)
    }
    fn from_map(map: M) -> Self {
        Ok(map)
    }
}

/// What is cached per key of a batch function: [`SkipMissing`] caches values only
/// (a key the loader does not return is asked for again next time), [`CacheMissing`]
/// (`cache_none`) also caches that a key has no value.
pub trait Absence<Item>: 'static {
    /// What the cache stores for one item.
    type Value: CacheValue;
    /// The value to cache for a returned item.
    fn store(item: Item) -> Self::Value;
    /// What to cache for a key the loader did not return, if anything.
    fn absent() -> Option<Self::Value>;
    /// The map entry a cached value gives, if any.
    fn present(value: Self::Value) -> Option<Item>;
}

/// A key the loader did not return is not cached (the default).
pub struct SkipMissing;
/// A key the loader did not return is cached as absent (`cache_none`).
pub struct CacheMissing;

impl<Item: CacheValue> Absence<Item> for SkipMissing {
    type Value = Item;
    fn store(item: Item) -> Item {
        item
    }
    fn absent() -> Option<Item> {
        None
    }
    fn present(value: Item) -> Option<Item> {
        Some(value)
    }
}

impl<Item: CacheValue> Absence<Item> for CacheMissing {
    type Value = Option<Item>;
    fn store(item: Item) -> Option<Item> {
        Some(item)
    }
    fn absent() -> Option<Option<Item>> {
        Some(None)
    }
    fn present(value: Option<Item>) -> Option<Item> {
        value
    }
}
