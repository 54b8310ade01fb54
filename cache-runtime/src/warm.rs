//! Warm-up: load a list of entries before traffic arrives, with bounded concurrency,
//! and say what happened to each. Reached through the `warm_up!` macro.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;

/// What a warm-up did with its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmUp {
    /// Loaded now (by this warm-up or a call it joined).
    pub loaded: usize,
    /// Already held, in L1 or Redis: not loaded again.
    pub present: usize,
    /// The loader returned an error or no value, or panicked; nothing was cached.
    pub failed: usize,
}

impl std::fmt::Display for WarmUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} loaded, {} already present, {} failed",
            self.loaded, self.present, self.failed
        )
    }
}

enum Outcome {
    Loaded,
    Present,
    Failed,
}

/// Per-item warm-up: for each item, an entry already held counts as present;
/// otherwise the call is made (at most `concurrency` at once) and counts as loaded
/// unless its output means no value.
pub async fn warm_up<I, E, EntryFn, CallFn, Fut>(
    items: I,
    concurrency: usize,
    entry: EntryFn,
    call: CallFn,
) -> WarmUp
where
    I: IntoIterator,
    I::Item: Clone,
    E: crate::__private::EntryOps,
    EntryFn: Fn(I::Item) -> E,
    CallFn: Fn(I::Item) -> Fut,
    Fut: Future<Output = E::Out>,
{
    let one = |item: I::Item| {
        let present = entry(item.clone()).contains();
        let call = &call;
        async move {
            if present.await {
                return Outcome::Present;
            }
            match crate::engine::catch_unwind(call(item)).await {
                Ok(out) if !E::failed(&out) => Outcome::Loaded,
                _ => Outcome::Failed,
            }
        }
    };
    futures_util::stream::iter(items)
        .map(one)
        .buffer_unordered(concurrency.max(1))
        .fold(WarmUp::default(), |mut report, outcome| async move {
            match outcome {
                Outcome::Loaded => report.loaded += 1,
                Outcome::Present => report.present += 1,
                Outcome::Failed => report.failed += 1,
            }
            report
        })
        .await
}

/// What a batch call tells a warm-up about its keys.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) loaded: AtomicUsize,
    pub(crate) present: AtomicUsize,
    pub(crate) failed: AtomicUsize,
}

impl Tally {
    pub(crate) fn add(
        tally: &Option<std::sync::Arc<Tally>>,
        counter: fn(&Tally) -> &AtomicUsize,
        n: usize,
    ) {
        if let Some(tally) = tally {
            counter(tally).fetch_add(n, Ordering::Relaxed);
        }
    }

    fn report(&self) -> WarmUp {
        WarmUp {
            loaded: self.loaded.load(Ordering::Relaxed),
            present: self.present.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Batch warm-up: the one call of a batch function, counted per key. A panic in the
/// loader counts its keys as failed and is not propagated.
pub async fn warm_up_batch<F>(call: F) -> WarmUp
where
    F: Future,
    F::Output: crate::__private::BatchOutput,
{
    let tally = std::sync::Arc::new(Tally::default());
    let observed = crate::engine::observed(call, tally.clone());
    let _ = crate::engine::catch_unwind(observed).await;
    tally.report()
}
