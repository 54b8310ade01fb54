//! Decisions a loader makes about its own result, from inside a cached function's
//! body: a ttl that depends on the value, tags known only once it is loaded, or not
//! caching it at all.
//!
//! See `stratacache::this_load` for an example.
//!
//! Outside a load (a function that is not cached, or a spawned task) these do nothing
//! and return `false`.
//!
//! A tag added here is read when the load ends, not before it starts like the
//! attribute's tags: an invalidation of it that lands while the load runs may be
//! missed. Put tags in the attribute when the arguments name them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) ttl: Option<Duration>,
    pub(crate) tags: Vec<String>,
    pub(crate) skip: bool,
    /// `validate = ..` refused the value: skipped, and counted as `invalid`.
    pub(crate) invalid: bool,
}

pub(crate) type Shared = Arc<Mutex<Overrides>>;

tokio::task_local! {
    static CURRENT: Shared;
}

/// Runs `poll` (one poll of a loader) with `overrides` as this load's.
pub(crate) fn poll_in<R>(overrides: &Shared, poll: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(overrides.clone(), poll)
}

/// What the loader decided, once it has finished.
pub(crate) fn take(overrides: &Shared) -> Overrides {
    std::mem::take(&mut *overrides.lock().unwrap_or_else(|e| e.into_inner()))
}

fn with(f: impl FnOnce(&mut Overrides)) -> bool {
    CURRENT
        .try_with(|shared| f(&mut shared.lock().unwrap_or_else(|e| e.into_inner())))
        .is_ok()
}

/// Caches this load's value for `ttl` instead of the attribute's ttl.
pub fn set_ttl(ttl: Duration) -> bool {
    with(|o| o.ttl = Some(ttl))
}

/// Adds a tag to this load's entry.
pub fn add_tag(tag: impl Into<String>) -> bool {
    let tag = tag.into();
    with(|o| o.tags.push(tag))
}

/// Returns this load's value to its callers without caching it.
pub fn skip_caching() -> bool {
    with(|o| o.skip = true)
}

/// `#[cached(validate = ..)]` refused this load's value: not cached, and counted.
pub(crate) fn refuse_invalid() -> bool {
    with(|o| {
        o.skip = true;
        o.invalid = true;
    })
}
