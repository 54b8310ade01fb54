//! What a cached call answers with: the value of a hit, ready at once, or the load
//! that will produce it. A hit builds no load future at all, so its cost is the
//! lookup and the clone, not the setup of a state machine sized for the miss path.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The answer of one cached call (what `get_or_load` returns). Generated code takes a
/// hit's output out of it and awaits only the boxed load, so that the function's
/// future holds a pointer across its await, not the whole answer; anything else awaits
/// the answer itself.
#[must_use = "a cached call does nothing more unless awaited"]
pub enum Answer<O, L: ?Sized> {
    /// A hit: the output.
    Ready(O),
    /// A miss or a forced load. Boxed, so that a call's future holds a pointer to
    /// it: the miss path (Redis calls, the loader) is large.
    Load(Pin<Box<L>>),
}

impl<O, L: ?Sized + Future<Output = O>> IntoFuture for Answer<O, L> {
    type Output = O;
    type IntoFuture = Answering<O, L>;

    #[inline]
    fn into_future(self) -> Answering<O, L> {
        match self {
            Self::Ready(output) => Answering::Ready(Some(output)),
            Self::Load(load) => Answering::Load(load),
        }
    }
}

/// An [`Answer`] awaited: the hit's output, taken by the first poll, or the load.
#[must_use = "futures do nothing unless polled"]
pub enum Answering<O, L: ?Sized> {
    /// A hit's output, until the first poll takes it.
    Ready(Option<O>),
    /// The load.
    Load(Pin<Box<L>>),
}

// The output is moved out, never pinned in place, and the load is boxed.
impl<O, L: ?Sized> Unpin for Answering<O, L> {}

impl<O, L: ?Sized + Future<Output = O>> Future for Answering<O, L> {
    type Output = O;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.get_mut() {
            Self::Ready(output) => Poll::Ready(output.take().expect("polled after completion")),
            Self::Load(load) => load.as_mut().poll(cx),
        }
    }
}
