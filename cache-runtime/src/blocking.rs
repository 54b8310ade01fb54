//! Sync cached functions: their call runs the same pipeline as an async one. A hit
//! returns at once (`Cache::get_or_wait`); a miss is driven to completion on the caller's
//! thread. The loader is the function's body (it never
//! awaits) and the cache is in-process only, so the only wait is for another
//! thread's load of the same key: this thread parks until that load lands.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` on this thread until it completes, parking while it waits.
///
/// For sync code: a sync `#[cached]` function calls it, and its entry macros' futures
/// (`invalidate!`, `peek!`, ...) complete under it without an async runtime.
///
/// ```
/// # use stratacache_runtime as stratacache;
/// assert_eq!(stratacache::block_on(async { 7 }), 7);
/// ```
#[inline(always)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    // A hit completes on its first poll: no waker to allocate for it, and inlined
    // into the caller, no frame of its own. Always: with a plain `#[inline]` rustc
    // kept this out of line once the future's poll was inlined into it, and every
    // call then copied the future into this frame (8 ns of a 59 ns hit in
    // `examples/hit_count.rs`).
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    park_until_ready(future)
}

/// The rest of [`block_on`], out of line: a future that waits (a miss, or another
/// thread's load of the key).
#[inline(never)]
fn park_until_ready<F: Future>(mut future: Pin<&mut F>) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            // A spurious unpark only costs one more poll.
            Poll::Pending => thread::park(),
        }
    }
}
