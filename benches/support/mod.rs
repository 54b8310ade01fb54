#![allow(dead_code)] // each bench uses part of it
//! Shared by the benches.
//!
//! Every async subject is driven by `stratacache::block_on`, the same for all of
//! them: a hit completes on its first poll, made with a no-op waker in the caller's
//! frame, so no runtime overhead is added to it. (The benches had their own
//! `block_on` until 2026-12-06; it reached a thread-local waker first and was not
//! inlined, which added 8 to 18 ns to each async subject's hit at 10^3 entries.)

#[allow(unused_imports)] // as dead_code above: not every bench drives a future
pub use stratacache::block_on;

/// A 64-byte value, the size every peer comparison uses.
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
