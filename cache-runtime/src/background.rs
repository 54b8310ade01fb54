//! Work in the background: writes to Redis that run there (a batch call's
//! write-back, which its caller does not wait for), counted so that [`flush_writes`]
//! can wait for them; and the thread the Redis tier's own tasks run on.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};

use tokio::sync::Notify;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static SETTLED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Held by a background write while it runs (dropped when it ends or is cancelled).
pub(crate) struct Running(());

impl Running {
    pub(crate) fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if RUNNING.fetch_sub(1, Ordering::AcqRel) == 1 {
            SETTLED.notify_waiters();
        }
    }
}

/// Waits until every write to Redis that runs in the background has ended, written
/// or dropped: a batch call returns before its values reach Redis. For a graceful
/// shutdown (flush, then exit), and for tests that read Redis after a batch call.
///
/// Writes started while this waits are waited for too.
///
/// ```
/// # use stratacache_runtime as stratacache;
/// # async fn serve_until_shutdown() {}
/// # async fn main_loop() {
/// serve_until_shutdown().await;
/// // Batch calls answered before their values reached Redis: let those writes end.
/// stratacache::flush_writes().await;
/// # }
/// # stratacache::block_on(main_loop());
/// ```
pub async fn flush_writes() {
    loop {
        let settled = SETTLED.notified();
        let mut settled = std::pin::pin!(settled);
        // Registered before the count is read, so a write ending in between wakes it.
        settled.as_mut().enable();
        if RUNNING.load(Ordering::Acquire) == 0 {
            return;
        }
        settled.await;
    }
}

/// Starts a runtime on a thread of its own for the Redis tier's tasks (the backplane,
/// the outbox, the cluster's slot map, the unsynced guard) and returns its handle. On
/// the runtime `init` was called in they would end with it (a test's runtime, or one
/// made only to call `init`), and the process would go on serving L1 without hearing
/// of the other processes' invalidations.
pub(crate) fn tasks_runtime() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("stratacache".to_owned())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    let _ = TASKS.set(handle.clone());
    Ok(handle)
}

/// The runtime [`tasks_runtime`] started, once it has.
static TASKS: OnceLock<tokio::runtime::Handle> = OnceLock::new();

/// The Redis tier's runtime, once the tier started it.
pub(crate) fn tasks() -> Option<tokio::runtime::Handle> {
    TASKS.get().cloned()
}

/// The Redis tier's runtime, when the caller has none of its own (and the tier is on).
pub(crate) fn stand_in() -> Option<&'static tokio::runtime::Handle> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => None,
        Err(_) => TASKS.get(),
    }
}

/// The Redis tier's runtime's context, entered when the caller has no runtime: what
/// is spawned or opened meanwhile goes there.
pub(crate) fn runtime_context() -> Option<tokio::runtime::EnterGuard<'static>> {
    stand_in().map(tokio::runtime::Handle::enter)
}

/// The future `make` makes, made and polled in the context of `runtime` (the Redis
/// tier's, for a caller with none: sync code driving an entry macro's future with
/// `block_on`), whose thread then drives its connection and timer. Without it a Redis
/// call there panicked, and an invalidation was lost.
pub(crate) async fn on<F: Future>(
    runtime: &tokio::runtime::Handle,
    make: impl FnOnce() -> F,
) -> F::Output {
    let mut future = {
        let _context = runtime.enter();
        std::pin::pin!(make())
    };
    std::future::poll_fn(|cx| {
        let _context = runtime.enter();
        future.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flush_waits_for_the_writes_running_and_returns_at_once_without() {
        flush_writes().await;
        let running = Running::start();
        let flushed = tokio::spawn(flush_writes());
        tokio::task::yield_now().await;
        assert!(!flushed.is_finished(), "a write is still running");
        drop(running);
        tokio::time::timeout(std::time::Duration::from_secs(5), flushed)
            .await
            .expect("flushed once the write ended")
            .unwrap();
    }
}
