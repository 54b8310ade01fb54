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

/// Drives `future` on this thread, parking while it waits.
///
/// A hit completes on its first poll, so that poll gets a no-op waker and happens in
/// the caller's frame, as `stratacache::block_on`'s does: no thread-local lookup and
/// no copy of the future into a frame of its own on a hit. Measured at 10^3 entries
/// (the scale bench), the version that reached the thread-local waker first and was
/// not inlined added 8 to 18 ns to each async subject's hit (13 to stratacache's).
#[inline(always)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(out) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return out;
    }
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

/// Medians of a paired run: see [`paired`].
pub struct Paired {
    pub first_us: f64,
    pub second_us: f64,
    /// The median of the per-pair ratios first / second.
    pub ratio: f64,
}

/// Runs `first` and `second` alternately, `pairs` times, and returns the median time
/// of each and the median of the per-pair ratios. Criterion measures its subjects one
/// after the other, so on a shared 2-core machine a run's ratio also carries how the
/// machine drifted in between; here both subjects of a pair see the same moment.
/// `settle` runs, unmeasured, between the two: to let work that `first` left in the
/// background finish rather than land on `second`'s time.
pub async fn paired(
    pairs: usize,
    mut first: impl AsyncFnMut(),
    mut settle: impl AsyncFnMut(),
    mut second: impl AsyncFnMut(),
) -> Paired {
    let micros = |started: std::time::Instant| started.elapsed().as_secs_f64() * 1e6;
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let started = std::time::Instant::now();
        first().await;
        let took_first = micros(started);
        settle().await;
        let started = std::time::Instant::now();
        second().await;
        let took_second = micros(started);
        a.push(took_first);
        b.push(took_second);
        ratios.push(took_first / took_second);
    }
    Paired {
        first_us: median(&mut a),
        second_us: median(&mut b),
        ratio: median(&mut ratios),
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
