//! The attribute reads `Result` and `Option` from the signature: it caches only `Ok`
//! of a `Result`, only `Some` of an `Option`. A return type it could not read as
//! either (any other name) is cached whole, so generated code asks a [`SpelledProbe`]
//! whether that type is in fact a `Result` or an `Option` behind another name
//! (`type AppResult<T> = Result<T, AppError>`): its `Err` or `None` would then be
//! cached like a value. That is a compile error at the return type, naming the type
//! to write instead.
//!
//! The probe works as the key and value probes do (see `checks.rs`): by autoref
//! specialisation, `(&&&SpelledProbe::<R>::new()).spelled()` picks the `Result` or
//! `Option` level, whose method has an unmet bound, or else the level that passes.

use std::marker::PhantomData;

/// Asks whether a return type the attribute could not read is a `Result` or an
/// `Option`.
pub struct SpelledProbe<R>(PhantomData<fn() -> R>);

impl<R> SpelledProbe<R> {
    /// The probe of return type `R`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

/// Never implemented: the bound that fails for a `Result` behind another name.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` must see that this function returns a `Result`: write `{Self}` here",
    label = "a `Result` behind another name: its `Err` would be cached like a value",
    note = "the attribute reads `Result` from the signature, to cache only `Ok`; a type alias hides it (add `cache_err` to the spelled-out `Result` to cache errors too)"
)]
pub trait SpelledResult {}

/// Never implemented: the bound that fails for an `Option` behind another name.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` must see that this function returns an `Option`: write `{Self}` here",
    label = "an `Option` behind another name: its `None` would be cached like a value",
    note = "the attribute reads `Option` from the signature, to cache only `Some`; a type alias hides it (add `cache_none` to the spelled-out `Option` to cache `None` too)"
)]
pub trait SpelledOption {}

/// The level of a `Result`.
pub trait UnspelledResult<R> {
    /// Never returns: it only exists to fail to compile.
    fn spelled(&self)
    where
        R: SpelledResult,
    {
        unreachable!("an unspelled `Result` does not compile")
    }
}
impl<T, E> UnspelledResult<Result<T, E>> for &&SpelledProbe<Result<T, E>> {}

/// The level of an `Option`.
pub trait UnspelledOption<R> {
    /// Never returns: it only exists to fail to compile.
    fn spelled(&self)
    where
        R: SpelledOption,
    {
        unreachable!("an unspelled `Option` does not compile")
    }
}
impl<T> UnspelledOption<Option<T>> for &&SpelledProbe<Option<T>> {}

/// The level of every other type: cached whole, as it should be.
pub trait NeitherResultNorOption {
    /// Passes.
    #[inline(always)]
    fn spelled(&self) {}
}
impl<R> NeitherResultNorOption for &SpelledProbe<R> {}

#[cfg(test)]
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    /// The only level that compiles, called for types that are neither.
    #[test]
    fn other_types_pass() {
        (&&&SpelledProbe::<String>::new()).spelled();
        (&&&SpelledProbe::<Vec<Result<u8, ()>>>::new()).spelled();
        (&&&SpelledProbe::<(Option<u8>,)>::new()).spelled();
    }
}
