//! Warm-up: load a list of entries before traffic arrives, with bounded concurrency,
//! and say what happened to each. Reached through the `warm_up!` macro.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::StreamExt;

use crate::warm_tally::{Tally, WarmUp};

enum Outcome {
    Loaded,
    Present,
    Failed,
}

/// Per-item warm-up: for each item, an entry already held counts as present;
/// otherwise the call is made (at most `concurrency` at once) and counts as loaded
/// unless its output means no value or it panicked. A sync function's calls block the
/// thread polling the warm-up, so they run one at a time.
pub async fn warm_up<I, E, EntryFn, CallFn, Fut>(
    items: I,
    concurrency: usize,
    entry: EntryFn,
    call: CallFn,
) -> WarmUp
where
    I: IntoIterator,
    I::Item: Clone,
    E: crate::entry_ref::EntryOps,
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
            // A sync function's call loads as it is made, here, on this thread.
            let Ok(call) = std::panic::catch_unwind(AssertUnwindSafe(|| call(item))) else {
                return Outcome::Failed;
            };
            match crate::engine::catch_unwind(call).await {
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

/// Batch warm-up: the one call of a batch function, counted per key. A panic in the
/// loader counts its keys as failed and is not propagated.
pub async fn warm_up_batch<F>(call: F) -> WarmUp
where
    F: Future,
    F::Output: crate::batch_output::BatchOutput,
{
    let tally = std::sync::Arc::new(Tally::default());
    let observed = crate::engine::observed(call, tally.clone());
    let _ = crate::engine::catch_unwind(observed).await;
    tally.report()
}
