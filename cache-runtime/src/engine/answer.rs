//! What a cached call answers with: the value of a hit, ready at once, or the load
//! that will produce it. A hit builds no load future at all, so its cost is the
//! lookup and the clone, not the setup of a state machine sized for the miss path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of one cached call (what `get_or_load` returns).
#[must_use = "a cached call does nothing more unless awaited"]
pub enum Answer<O, L: ?Sized> {
    /// A hit: the output, taken by the first poll.
    Ready(Option<O>),
    /// A miss or a forced load. Boxed, so that the hit's future stays as small as
    /// its output: the miss path (Redis calls, the loader) is large.
    Load(Pin<Box<L>>),
}

// The output is moved out, never pinned in place, and the load is boxed.
impl<O, L: ?Sized> Unpin for Answer<O, L> {}

impl<O, L: ?Sized + Future<Output = O>> Future for Answer<O, L> {
    type Output = O;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.get_mut() {
            Self::Ready(output) => Poll::Ready(output.take().expect("polled after completion")),
            Self::Load(load) => load.as_mut().poll(cx),
        }
    }
}
