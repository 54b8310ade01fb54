//! How a function's return value maps to what is cached: `Result` caches only `Ok`,
//! `Option` only `Some`, anything else (or `cache_err` / `cache_none`) the whole value.
//! The macro picks the shape from the return type; these traits do the rest, so type
//! aliases such as `io::Result<T>` work.

use std::marker::PhantomData;

use crate::shared_error::ShareableError;

/// What a finished load means for the cache.
pub enum Split<V, Out> {
    /// Cache this value.
    Store(V),
    /// Cache this value, but count the load as failed (`cache_err` on an `Err`).
    StoreFailed(V),
    /// Do not cache; the load failed.
    Error(Out),
    /// Do not cache; nothing to cache (`None`).
    Empty(Out),
}

/// The mapping between a function's output and its cached value.
pub trait Shape {
    /// The function's return type.
    type Out;
    /// What the cache stores. Unbounded, so that a value that cannot be cached is
    /// reported once, by the generated code's check, not by every use of its shape.
    type Value;
    /// What a finished load means for the cache.
    fn split(out: Self::Out) -> Split<Self::Value, Self::Out>;
    /// The output for a cached value.
    fn join(value: Self::Value) -> Self::Out;
    /// The output for a key that a batch load, sharing this cache, had no value for.
    fn absent() -> Option<Self::Out> {
        None
    }
    /// An output that means no value (an `Err`, a `None`): a warm-up counts it failed.
    fn failed(_out: &Self::Out) -> bool {
        false
    }
    /// The value an output would cache, borrowed (`validate = ..` checks it).
    fn value_ref(out: &Self::Out) -> Option<&Self::Value>;
}

/// `Result`-like outputs, so aliases such as `io::Result<T>` are recognised.
pub trait ResultLike {
    /// The `Ok` type.
    type Ok;
    /// The `Err` type.
    type Err;
    /// As a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// From a `Result`.
    fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
    /// True for an `Err`.
    fn is_err(&self) -> bool;
    /// The `Ok` value, borrowed.
    fn ok_ref(&self) -> Option<&Self::Ok>;
}

impl<T, E> ResultLike for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Self {
        self
    }
    fn from_result(result: Self) -> Self {
        result
    }
    fn is_err(&self) -> bool {
        Result::is_err(self)
    }
    fn ok_ref(&self) -> Option<&T> {
        self.as_ref().ok()
    }
}

/// `Option`, as the `Ok` of a `Result<Option<T>, E>`.
pub trait OptionLike {
    /// The `Some` type.
    type Some;
    /// As an `Option`.
    fn into_option(self) -> Option<Self::Some>;
    /// From an `Option`.
    fn from_option(option: Option<Self::Some>) -> Self;
    /// True for a `None`.
    fn is_none(&self) -> bool;
    /// The `Some` value, borrowed.
    fn some_ref(&self) -> Option<&Self::Some>;
}

impl<T> OptionLike for Option<T> {
    type Some = T;
    fn into_option(self) -> Self {
        self
    }
    fn from_option(option: Self) -> Self {
        option
    }
    fn is_none(&self) -> bool {
        Option::is_none(self)
    }
    fn some_ref(&self) -> Option<&T> {
        self.as_ref()
    }
}

/// Caches the whole output.
pub struct Whole<T>(PhantomData<fn() -> T>);
/// Caches the whole `Result`, counting `Err` as a failed load (`cache_err`).
pub struct WholeResult<R>(PhantomData<fn() -> R>);
/// Caches `Ok` values only.
pub struct OkOnly<R>(PhantomData<fn() -> R>);
/// Caches `Ok(Some(_))` only (`Result<Option<T>, E>`, sqlx's `fetch_optional`):
/// `Ok(None)` is a miss, as a bare `None` is.
pub struct OkSome<R>(PhantomData<fn() -> R>);
/// Caches `Some` values only.
pub struct SomeOnly<T>(PhantomData<fn() -> T>);

impl<T> Shape for Whole<T> {
    type Out = T;
    type Value = T;
    fn split(out: T) -> Split<T, T> {
        Split::Store(out)
    }
    fn join(value: T) -> T {
        value
    }
    fn value_ref(out: &T) -> Option<&T> {
        Some(out)
    }
}

impl<R: ResultLike> Shape for WholeResult<R> {
    type Out = R;
    type Value = R;
    fn split(out: R) -> Split<R, R> {
        let result = out.into_result();
        let failed = result.is_err();
        let out = R::from_result(result);
        if failed {
            Split::StoreFailed(out)
        } else {
            Split::Store(out)
        }
    }
    fn join(value: R) -> R {
        value
    }
    fn failed(out: &R) -> bool {
        out.is_err()
    }
    fn value_ref(out: &R) -> Option<&R> {
        Some(out)
    }
}

impl<R> Shape for OkOnly<R>
where
    R: ResultLike,
{
    type Out = R;
    type Value = R::Ok;
    fn split(out: R) -> Split<R::Ok, R> {
        match out.into_result() {
            Ok(value) => Split::Store(value),
            Err(error) => Split::Error(R::from_result(Err(error))),
        }
    }
    fn join(value: R::Ok) -> R {
        R::from_result(Ok(value))
    }
    fn failed(out: &R) -> bool {
        out.is_err()
    }
    fn value_ref(out: &R) -> Option<&R::Ok> {
        out.ok_ref()
    }
}

impl<R> Shape for OkSome<R>
where
    R: ResultLike,
    R::Ok: OptionLike,
{
    type Out = R;
    type Value = <R::Ok as OptionLike>::Some;
    fn split(out: R) -> Split<Self::Value, R> {
        match out.into_result() {
            Ok(ok) => match ok.into_option() {
                Some(value) => Split::Store(value),
                None => Split::Empty(R::from_result(Ok(R::Ok::from_option(None)))),
            },
            Err(error) => Split::Error(R::from_result(Err(error))),
        }
    }
    fn join(value: Self::Value) -> R {
        R::from_result(Ok(R::Ok::from_option(Some(value))))
    }
    fn absent() -> Option<R> {
        Some(R::from_result(Ok(R::Ok::from_option(None))))
    }
    fn failed(out: &R) -> bool {
        out.ok_ref().is_none_or(OptionLike::is_none)
    }
    fn value_ref(out: &R) -> Option<&Self::Value> {
        out.ok_ref().and_then(OptionLike::some_ref)
    }
}

impl<T> Shape for SomeOnly<T> {
    type Out = Option<T>;
    type Value = T;
    fn split(out: Option<T>) -> Split<T, Option<T>> {
        match out {
            Some(value) => Split::Store(value),
            None => Split::Empty(None),
        }
    }
    fn join(value: T) -> Option<T> {
        Some(value)
    }
    fn absent() -> Option<Option<T>> {
        Some(None)
    }
    fn failed(out: &Option<T>) -> bool {
        out.is_none()
    }
    fn value_ref(out: &Option<T>) -> Option<&T> {
        out.as_ref()
    }
}

/// How concurrent callers waiting on one load receive an outcome that is not cached
/// (an `Err`, a `None`): by clone when the output is `Clone`; for a `Result` whose
/// error is [`ShareableError`] (anyhow, boxed errors, `io::Error`), by a copy of the
/// error; else each retries the load in turn. Chosen at compile time by autoref
/// specialisation: the generated code calls `(&&&ShareProbe::<Out>::new()).share_fn()`.
pub struct ShareProbe<T>(PhantomData<fn() -> T>);

impl<T> ShareProbe<T> {
    /// The probe of the output type `T`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen for a `Clone` output: waiters get a clone.
pub trait ShareByClone<T> {
    /// How waiters receive an outcome that is not cached.
    fn share_fn(&self) -> Option<fn(&T) -> T>;
}
/// Chosen for a `Result` whose error is `ShareableError`: waiters get a copy.
pub trait ShareByError<T> {
    /// How waiters receive an outcome that is not cached.
    fn share_fn(&self) -> Option<fn(&T) -> T>;
}
/// The fallback: each waiter runs the load in turn.
pub trait ShareByRetry<T> {
    /// How waiters receive an outcome that is not cached (`None`: they retry).
    fn share_fn(&self) -> Option<fn(&T) -> T>;
}

impl<T: Clone> ShareByClone<T> for &&ShareProbe<T> {
    fn share_fn(&self) -> Option<fn(&T) -> T> {
        Some(T::clone)
    }
}
impl<T: Clone, E: ShareableError> ShareByError<Result<T, E>> for &ShareProbe<Result<T, E>> {
    fn share_fn(&self) -> Option<fn(&Result<T, E>) -> Result<T, E>> {
        Some(|out| match out {
            Ok(value) => Ok(value.clone()),
            Err(error) => Err(error.share()),
        })
    }
}
impl<T> ShareByRetry<T> for ShareProbe<T> {
    fn share_fn(&self) -> Option<fn(&T) -> T> {
        None
    }
}

#[cfg(test)]
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    struct NotClone;

    #[test]
    fn probe_picks_clone_only_for_clone_types() {
        assert!((&&&ShareProbe::<Result<u8, String>>::new())
            .share_fn()
            .is_some());
        assert!((&&&ShareProbe::<Result<u8, NotClone>>::new())
            .share_fn()
            .is_none());
        let shared = (&&&ShareProbe::<anyhow::Result<u8>>::new())
            .share_fn()
            .expect("anyhow errors are shared");
        let copy = shared(&Err(anyhow::anyhow!("down")));
        assert_eq!(copy.unwrap_err().to_string(), "down");
    }

    #[test]
    fn shapes_split_as_documented() {
        assert!(matches!(
            OkOnly::<Result<u8, ()>>::split(Ok(1)),
            Split::Store(1)
        ));
        assert!(matches!(
            OkOnly::<Result<u8, ()>>::split(Err(())),
            Split::Error(Err(()))
        ));
        assert!(matches!(SomeOnly::<u8>::split(None), Split::Empty(None)));
        assert!(matches!(
            WholeResult::<Result<u8, ()>>::split(Err(())),
            Split::StoreFailed(Err(()))
        ));
        assert!(matches!(Whole::<u8>::split(3), Split::Store(3)));
    }
}
