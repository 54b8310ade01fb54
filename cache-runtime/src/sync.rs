//! The synchronisation primitives of the flights and the tag versions: loom's under
//! `cfg(stratacache_loom)`, so the model checker explores every interleaving of them (see
//! `loom_tests.rs`); parking_lot's and std's otherwise.

#[cfg(not(stratacache_loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(not(stratacache_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(not(stratacache_loom))]
pub(crate) use tokio::sync::Notify;

#[cfg(stratacache_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};
#[cfg(stratacache_loom)]
pub(crate) use loom_mutex::{Mutex, MutexGuard};
#[cfg(stratacache_loom)]
pub(crate) use loom_notify::Notify;

/// loom's mutex with parking_lot's API: `lock` returns the guard (no poisoning).
#[cfg(stratacache_loom)]
mod loom_mutex {
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// tokio's `Notify::notify_waiters` semantics on loom's mutex, so that loom sees (and
/// interleaves) every step of a wake-up: a `Notified` hears of every
/// `notify_waiters` that starts after it was created, polled or not.
#[cfg(stratacache_loom)]
mod loom_notify {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::Mutex;

    #[derive(Debug, Default)]
    pub(crate) struct Notify {
        /// How many `notify_waiters` calls so far, and who waits for the next.
        state: Mutex<(u64, Vec<Waker>)>,
    }

    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        created_at: u64,
    }

    impl Notify {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            let created_at = self.state.lock().0;
            Notified {
                notify: self,
                created_at,
            }
        }

        pub(crate) fn notify_waiters(&self) {
            let wakers = {
                let mut state = self.state.lock();
                state.0 += 1;
                std::mem::take(&mut state.1)
            };
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    impl Notified<'_> {
        /// Registration happens at creation here; kept for tokio's API.
        pub(crate) fn enable(self: Pin<&mut Self>) -> bool {
            false
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = self.notify.state.lock();
            if state.0 != self.created_at {
                return Poll::Ready(());
            }
            state.1.push(cx.waker().clone());
            Poll::Pending
        }
    }
}
