#![allow(dead_code)] // each bench uses part of it
//! Shared by the benches: a minimal `block_on`, so that every async subject is driven
//! the same way and no runtime overhead is added to a hit.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}

pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(out) => return out,
                Poll::Pending => std::thread::park(),
            }
        }
    })
}

/// A 64-byte value, as in DESIGN.md's peer baseline.
pub fn value(key: u64) -> String {
    format!("{key:064}")
}

/// The set-up of the Redis benches: a current-thread runtime with stratacache's Redis
/// tier on `url` (namespace `bench`), and a raw `ConnectionManager` to the same server
/// for the peer subjects.
pub fn redis_runtime(url: &str) -> (tokio::runtime::Runtime, redis::aio::ConnectionManager) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw = rt.block_on(async {
        let config = stratacache::Config::new().redis_url(url).namespace("bench");
        stratacache::init(config).unwrap();
        let client = redis::Client::open(url).unwrap();
        redis::aio::ConnectionManager::new(client).await.unwrap()
    });
    (rt, raw)
}
