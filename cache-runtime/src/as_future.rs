//! A call of a cached function as a future, whether the function is an `async fn`
//! (the call made a future) or a sync `fn` (the call already returned its value), for
//! the entry macros that make the call themselves: `refresh!` and `warm_up!`.
//!
//! The two are told apart by method resolution, which tries `AsFuture<T>` before
//! `&AsFuture<T>`: [`FutureCall`] applies to the first when `T` is a future,
//! [`ValueCall`] to the second always. Generated code brings both into scope with
//! `use __private::probes::*`.

use std::cell::Cell;
use std::future::{Future, Ready};

/// The output of a call, before it is known to be a future or a value.
pub struct AsFuture<T>(Cell<Option<T>>);

impl<T> AsFuture<T> {
    /// Wraps what the call returned.
    pub fn new(output: T) -> Self {
        Self(Cell::new(Some(output)))
    }

    fn take(&self) -> T {
        self.0.take().expect("a call's output is taken once")
    }
}

/// An `async fn`'s call: its future as it is.
pub trait FutureCall {
    /// The call's future.
    type Future;
    /// See `as_future.rs`.
    fn into_future_call(self) -> Self::Future;
}

impl<F: Future> FutureCall for AsFuture<F> {
    type Future = F;

    fn into_future_call(self) -> F {
        self.take()
    }
}

/// A sync function's call: its value, ready.
pub trait ValueCall {
    /// A future ready with the value.
    type Future;
    /// See `as_future.rs`.
    fn into_future_call(self) -> Self::Future;
}

impl<T> ValueCall for &AsFuture<T> {
    type Future = Ready<T>;

    fn into_future_call(self) -> Ready<T> {
        std::future::ready(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn seven() -> u64 {
        7
    }

    #[test]
    fn a_future_stays_a_future_and_a_value_becomes_ready() {
        let from_future = AsFuture::new(seven()).into_future_call();
        let from_value: Ready<u64> = AsFuture::new(8_u64).into_future_call();
        assert_eq!(crate::blocking::block_on(from_future), 7);
        assert_eq!(crate::blocking::block_on(from_value), 8);
    }
}
