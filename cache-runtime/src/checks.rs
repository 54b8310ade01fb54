//! What a cached function's key and value types must be, checked so that each mistake
//! is one compile error on the user's token.
//!
//! The generated code does not name its cache's types directly. It asks a probe:
//! `(&&&&KeyProbe::<K, SharedCache>::new()).checked()`, and the same of the value. By
//! autoref specialisation the call picks the first level whose bounds hold:
//! - every bound holds: a [`KeyChecked`] / [`ValueChecked`], which [`Checked`] joins,
//!   and only that proof opens the cache;
//! - else a level whose method has one unmet `where` bound, the mistake. rustc reports
//!   it with the message of that bound's trait, at the probe's span (the key argument,
//!   the return type). The method returns a free type, so everything the generated code
//!   does with it is left unresolved, and rustc, which has seen the error, says
//!   nothing more.
//!
//! The levels, first to last: everything holds ([`Passes`], on `&&&Probe`); the type
//! is usable but has no serde in a shared cache (`KeyNotShared` / `ValueNotShared`, on
//! `&&Probe`); it cannot be cached at all (`KeyNotCacheable` / `ValueNotCacheable`, on
//! `&Probe`). The methods take `&self`, so the call is written with one `&` more than
//! the first level.
//!
//! A `batch` function first asks a [`BatchProbe`] whether it returns a map; if so,
//! the map's key and item go through the same probes.
//!
//! The function and its two siblings each ask, with the same spans: rustc prints the
//! identical error once. The blanket impls of the checked traits are
//! `#[diagnostic::do_not_recommend]`, so that rustc reports the trait, with its message,
//! rather than each bound it is missing (an `f64` lacks both `Hash` and `Eq`).

use std::hash::Hash;
use std::marker::PhantomData;

use crate::batch_output::{Absence, BatchOutput};
use crate::engine::Cache;
use crate::registry::{named, CacheSpec, Instantiation, Slot};
use crate::shape::{Shape, Whole};
use crate::values::{CacheKey, CacheValue};

/// Checked on every cached function's value type.
///
/// The parameter is `Self`, so that no reference passes: rustc then does not suggest
/// borrowing the return type, a suggestion it makes in some of the generated bodies and
/// not in others, which would print the error twice.
#[diagnostic::on_unimplemented(
    message = "the value of a cached function must be `Clone + Send + Sync + 'static`: `{Self}` is not",
    label = "this value is returned by clone on every hit",
    note = "derive or implement `Clone` for it (with `cache_err`, for its error type too), or wrap it in `Arc`"
)]
pub trait CacheableValue<Owned: ?Sized = Self> {}
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> CacheableValue<T> for T {}

/// Checked on the value type of a cache that is not `local`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must implement `Serialize` and `DeserializeOwned` to be stored in a shared cache",
    label = "values of a non-`local` cache are serialized for Redis",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or mark the function `#[cached(local)]` to keep it in-process only"
)]
pub trait SharedValue {}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SharedValue for T {}

/// Checked on every cached function's key type (its parameter as for
/// [`CacheableValue`]).
#[diagnostic::on_unimplemented(
    message = "the key of a cached function must be `Hash + Eq + Clone + Send + Sync + 'static`: `{Self}` is not",
    label = "the key is made of this",
    note = "`skip` an argument that is not `Hash + Eq` (an `f64` is not; pass `f64::to_bits` of it), or name the key with `key = \"..\"`"
)]
pub trait CacheableKey<Owned: ?Sized = Self> {}
#[diagnostic::do_not_recommend]
impl<T: Hash + Eq + Clone + Send + Sync + 'static> CacheableKey<T> for T {}

/// Checked on the key type of a cache that is not `local`.
#[diagnostic::on_unimplemented(
    message = "the key of a shared cache must implement `Serialize` and `DeserializeOwned`: `{Self}` does not",
    label = "keys of a non-`local` cache are hashed into Redis keys and sent to other processes",
    note = "derive `serde::Serialize` and `serde::Deserialize` for the argument types, `skip` the argument, or mark the function `#[cached(local)]`"
)]
pub trait SharedKey {}
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + serde::de::DeserializeOwned> SharedKey for T {}

/// The probe's mode: a cache that is not `local` also needs serde.
pub struct SharedCache;
/// The probe's mode: a `local` cache.
pub struct LocalCache;

/// Asks whether `K` can be the key of a cache of mode `M`.
pub struct KeyProbe<K, M>(PhantomData<fn() -> (K, M)>);
/// Asks whether what shape `S` caches can be the value of a cache of mode `M`.
pub struct ValueProbe<S, M>(Marker<(S, M)>);

/// A type parameter held without owning one: probes and proofs are zero-sized.
type Marker<T> = PhantomData<fn() -> T>;

impl<K, M> KeyProbe<K, M> {
    /// The probe of key type `K`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<S, M> ValueProbe<S, M> {
    /// The probe of shape `S`'s value.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Proof that `K` passed its checks.
pub struct KeyChecked<K>(PhantomData<fn() -> K>);
/// Proof that what `S` caches passed its checks.
pub struct ValueChecked<S>(PhantomData<fn() -> S>);
/// Proof that both passed: what opens the function's cache.
pub struct Checked<K, S>(PhantomData<fn() -> (K, S)>);

/// The level where every bound holds.
pub trait Passes {
    /// The proof.
    type Proof;
    /// The proof.
    fn checked(&self) -> Self::Proof;
}

impl<K: CacheKey + SharedKey> Passes for &&&KeyProbe<K, SharedCache> {
    type Proof = KeyChecked<K>;
    fn checked(&self) -> KeyChecked<K> {
        KeyChecked(PhantomData)
    }
}
impl<K: CacheKey> Passes for &&&KeyProbe<K, LocalCache> {
    type Proof = KeyChecked<K>;
    fn checked(&self) -> KeyChecked<K> {
        KeyChecked(PhantomData)
    }
}
impl<S: Shape<Value = V>, V: CacheValue + SharedValue> Passes for &&&ValueProbe<S, SharedCache> {
    type Proof = ValueChecked<S>;
    fn checked(&self) -> ValueChecked<S> {
        ValueChecked(PhantomData)
    }
}
impl<S: Shape<Value = V>, V: CacheValue> Passes for &&&ValueProbe<S, LocalCache> {
    type Proof = ValueChecked<S>;
    fn checked(&self) -> ValueChecked<S> {
        ValueChecked(PhantomData)
    }
}

/// A usable key without serde, in a shared cache.
pub trait KeyNotShared<K> {
    /// Never returns: it only exists to fail to compile.
    fn checked<Unresolved>(&self) -> Unresolved
    where
        K: SharedKey,
    {
        unreachable!("a key without serde does not compile")
    }
}
impl<K: CacheKey, M> KeyNotShared<K> for &&KeyProbe<K, M> {}

/// A key that cannot key a cache.
pub trait KeyNotCacheable<K> {
    /// Never returns: it only exists to fail to compile.
    fn checked<Unresolved>(&self) -> Unresolved
    where
        K: CacheableKey<K>,
    {
        unreachable!("an unusable key does not compile")
    }
}
impl<K, M> KeyNotCacheable<K> for &KeyProbe<K, M> {}

/// A usable value without serde, in a shared cache.
pub trait ValueNotShared<V> {
    /// Never returns: it only exists to fail to compile.
    fn checked<Unresolved>(&self) -> Unresolved
    where
        V: SharedValue,
    {
        unreachable!("a value without serde does not compile")
    }
}
impl<S: Shape<Value = V>, V: CacheValue, M> ValueNotShared<V> for &&ValueProbe<S, M> {}

/// A value that cannot be cached.
pub trait ValueNotCacheable<V> {
    /// Never returns: it only exists to fail to compile.
    fn checked<Unresolved>(&self) -> Unresolved
    where
        V: CacheableValue<V>,
    {
        unreachable!("an unusable value does not compile")
    }
}
impl<S: Shape<Value = V>, V, M> ValueNotCacheable<V> for &ValueProbe<S, M> {}

impl<K> KeyChecked<K> {
    /// Both proofs. Generic over the value's proof rather than taking a
    /// `ValueChecked<S>`: when the value failed its check, the result stays unresolved
    /// too, instead of a `Checked<K, _>` whose uses would report the value again.
    #[inline]
    pub fn with<V: JoinKey<K>>(self, value: V) -> V::Checked {
        value.join()
    }
}

/// A value's proof, joined to a key's.
pub trait JoinKey<K> {
    /// Both proofs.
    type Checked;
    /// Both proofs.
    fn join(self) -> Self::Checked;
}

impl<K, S> JoinKey<K> for ValueChecked<S> {
    type Checked = Checked<K, S>;
    #[inline]
    fn join(self) -> Checked<K, S> {
        Checked(PhantomData)
    }
}

impl<K: CacheKey, S: Shape> Checked<K, S>
where
    S::Value: CacheValue,
{
    /// The function's cache, held by its `static` slot.
    #[inline]
    pub fn cache(
        self,
        slot: &Slot,
        caller: Instantiation,
        spec: fn() -> CacheSpec<K, S::Value>,
    ) -> &'static Cache<K, S::Value> {
        slot.get(caller, spec)
    }

    /// The function's cache, found by name (what its siblings use).
    pub fn named(self, spec: fn() -> CacheSpec<K, S::Value>) -> &'static Cache<K, S::Value> {
        named(spec)
    }
}

/// Asks whether `O` can be what a `batch` function returns, its absent keys handled
/// by `A`. The first of the batch checks: once `O` is a map, its key and item go
/// through the key and value probes, as a single-key function's do.
pub struct BatchProbe<O, A>(Marker<(O, A)>);

impl<O, A> BatchProbe<O, A> {
    /// The probe of output `O`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Proof that `O` is a map: its key and item, to be probed next.
pub struct BatchTypes<O, A>(Marker<(O, A)>);

/// The batch level where `O` is a map.
pub trait BatchPasses {
    /// The proof.
    type Types;
    /// The proof.
    fn types(&self) -> Self::Types;
}

impl<O: BatchOutput, A> BatchPasses for &&BatchProbe<O, A> {
    type Types = BatchTypes<O, A>;
    fn types(&self) -> BatchTypes<O, A> {
        BatchTypes(PhantomData)
    }
}

/// An output that is not a map.
pub trait NotABatchOutput<O> {
    /// Never returns: it only exists to fail to compile.
    fn types<Unresolved>(&self) -> Unresolved
    where
        O: BatchOutput,
    {
        unreachable!("a batch function that returns no map does not compile")
    }
}
impl<O, A> NotABatchOutput<O> for &BatchProbe<O, A> {}

impl<O: BatchOutput, A> BatchTypes<O, A> {
    /// The probe of the map's key.
    pub fn key_probe<M>(&self) -> KeyProbe<O::Key, M> {
        KeyProbe::new()
    }

    /// The probe of what the map holds for one key.
    pub fn item_probe<M>(&self) -> ValueProbe<Whole<O::Item>, M> {
        ValueProbe::new()
    }

    /// The proof of the cached value (the item, or its `Option` with `cache_none`),
    /// from the item's. Generic over the item's proof, as [`KeyChecked::with`] is, so
    /// that a failed item check leaves it unresolved rather than reported again.
    pub fn value<P: BatchItem<O, A>>(&self, item: P) -> P::Value {
        item.value()
    }
}

/// An item's proof, turned into the cached value's.
pub trait BatchItem<O, A> {
    /// The cached value's proof.
    type Value;
    /// The cached value's proof.
    fn value(self) -> Self::Value;
}

impl<O: BatchOutput, A: Absence<O::Item>> BatchItem<O, A> for ValueChecked<Whole<O::Item>> {
    type Value = ValueChecked<Whole<A::Value>>;
    fn value(self) -> Self::Value {
        ValueChecked(PhantomData)
    }
}

#[cfg(test)]
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;
    use crate::shape::OkOnly;

    #[derive(Clone)]
    struct InProcessOnly;

    #[test]
    fn types_that_fit_get_the_proof_that_opens_the_cache() {
        let shared: Checked<u64, OkOnly<Result<String, std::io::Error>>> =
            (&&&&KeyProbe::<u64, SharedCache>::new()).checked().with(
                (&&&&ValueProbe::<OkOnly<Result<String, std::io::Error>>, SharedCache>::new())
                    .checked(),
            );
        let local: Checked<(String, u8), Whole<InProcessOnly>> =
            (&&&&KeyProbe::<(String, u8), LocalCache>::new())
                .checked()
                .with((&&&&ValueProbe::<Whole<InProcessOnly>, LocalCache>::new()).checked());
        // A batch function's map: its key, and its item (kept as an `Option` of it
        // with `cache_none`).
        let types = (&&&BatchProbe::<
            Result<std::collections::HashMap<u64, String>, String>,
            crate::batch_output::CacheMissing,
        >::new())
            .types();
        let batch: Checked<u64, Whole<Option<String>>> = (&&&&types.key_probe::<SharedCache>())
            .checked()
            .with(types.value((&&&&types.item_probe::<SharedCache>()).checked()));
        assert_eq!(std::mem::size_of_val(&batch), 0);
        // Proofs are zero-sized: the checks cost nothing at run time.
        assert_eq!(std::mem::size_of_val(&shared), 0);
        assert_eq!(std::mem::size_of_val(&local), 0);
    }
}
