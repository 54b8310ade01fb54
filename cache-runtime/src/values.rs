//! What a cache's keys and values must be. A leaf, so that the types built on them
//! (batch outputs, the registry) need not reach into the engine.

use std::hash::Hash;

/// What a cache holds: one value per key, cloned on every hit.
pub trait CacheValue: Clone + Send + Sync + 'static {}
impl<V: Clone + Send + Sync + 'static> CacheValue for V {}

/// What a cache key must be: compared and hashed in L1, cloned into flights and
/// entries, shared across tasks.
pub trait CacheKey: Hash + Eq + Clone + Send + Sync + 'static {}
impl<K: Hash + Eq + Clone + Send + Sync + 'static> CacheKey for K {}
