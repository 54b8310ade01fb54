//! Used by generated code only. Not a stable API.
pub use crate::as_future::AsFuture;
pub use crate::batch_output::{Absence, BatchOutput, CacheMissing, PlainMap, SkipMissing};
pub use crate::blocking::block_on;
pub use crate::checks::{
    BatchProbe, CacheableKey, CacheableValue, Checked, KeyNotCacheable, KeyNotShared, KeyProbe,
    LocalCache, Passes, SharedCache, SharedKey, SharedValue, ValueNotCacheable, ValueNotShared,
    ValueProbe,
};
pub use crate::engine::{
    reloading, Answer, Borrowed, Cache, CacheOptions, ReloadRequest, Tags, TimedOutFn,
};
pub use crate::entry_ref::{CacheOps, EntryOf, EntryOps, EntryRef};
pub use crate::error::TimedOut;
pub use crate::l2::codec::{serde_codec, Codec};
pub use crate::registry::{named, CacheSpec, Instantiation, Slot};
pub use crate::shape::{
    OkOnly, OkSome, OptionLike, ResultLike, Shape, ShareByClone, ShareByError, ShareByRetry,
    ShareProbe, SomeOnly, Whole, WholeResult,
};
pub use crate::spelled::SpelledProbe;
pub use crate::warm::{warm_up, warm_up_batch};
pub use crate::Error;

use crate::tags::TagName;

pub use std::time::Duration;

/// The traits whose methods generated code calls (the probes' levels, the share
/// functions'), for one `use probes::*`: each is imported as `_`, in scope for
/// method calls while naming nothing the function's body could see.
pub mod probes {
    pub use crate::as_future::{FutureCall as _, ValueCall as _};
    pub use crate::checks::{
        BatchPasses as _, KeyNotCacheable as _, KeyNotShared as _, NotABatchOutput as _,
        Passes as _, ValueNotCacheable as _, ValueNotShared as _,
    };
    pub use crate::shape::{ShareByClone as _, ShareByError as _, ShareByRetry as _};
    pub use crate::spelled::{
        NeitherResultNorOption as _, UnspelledOption as _, UnspelledResult as _,
    };
}

use std::future::Future;

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

/// Fixes the loader's output type, so `?` in the function body converts errors
/// into the function's own error type exactly as it did before the attribute.
#[inline(always)]
pub fn typed_loader<T, F: Future<Output = T>>(loader: F) -> F {
    loader
}

/// `#[cached(validate = check)]`: the loader, then `check` on the value it would
/// cache; a refused value is returned to the callers but not cached.
pub async fn validated<S: crate::shape::Shape, F: Future<Output = S::Out>>(
    loader: F,
    check: fn(&S::Value) -> bool,
) -> S::Out {
    let out = loader.await;
    if S::value_ref(&out).is_some_and(|value| !check(value)) {
        crate::this_load::refuse_invalid();
    }
    out
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

/// A call's tags, from their templates: `format_args!` rather than `format!`, so a
/// constant tag is borrowed, neither formatted nor copied, and a formatted one is
/// written in place (see `TagName`).
pub fn tags<const N: usize>(tags: [std::fmt::Arguments<'_>; N]) -> Tags {
    tags.into_iter().map(TagName::from_template).collect()
}

/// The spec of a shared cache: its name, options and the serde codec.
pub fn shared_spec<K, V>(name: String, options: CacheOptions) -> CacheSpec<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned,
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    (name, options, Some(serde_codec()))
}

/// The spec of a `local` cache: no codec, never in Redis.
pub fn local_spec<K, V>(name: String, options: CacheOptions) -> CacheSpec<K, V> {
    (name, options, None)
}

/// A function's default cache name, from the path of `marker`, a closure in its body
/// (see `registry::default_name`).
pub fn default_name<M>(_marker: M, fn_name: &str) -> String {
    crate::registry::default_name(std::any::type_name::<M>(), fn_name)
}

#[cfg(test)]
mod tests {
    use super::TagName;

    #[test]
    fn a_constant_tag_is_borrowed_and_a_template_formatted_in_place() {
        let id = 7;
        let tags = super::tags([format_args!("users"), format_args!("user:{id}")]);
        assert!(!tags.spilled(), "two tags are held in the call's own space");
        assert!(matches!(tags[0], TagName::Constant("users")));
        assert!(matches!(tags[1], TagName::Inline { .. }));
        assert_eq!(&*tags[1], "user:7");
    }
}
