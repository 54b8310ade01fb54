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

use std::cell::RefCell;
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) ttl: Option<Duration>,
    pub(crate) tags: Vec<String>,
    pub(crate) skip: bool,
    /// `validate = ..` refused the value: skipped, and counted as `invalid`.
    pub(crate) invalid: bool,
}

thread_local! {
    /// The overrides of the loader being polled on this thread, if one is.
    static CURRENT: RefCell<Option<Overrides>> = const { RefCell::new(None) };
}

/// Runs `poll` (one poll of a loader) with `load`'s overrides as the thread's: they
/// are swapped in for the poll and back out after it. A loader is polled on one thread
/// at a time, so this is what a task-local would do, without a shared allocation per
/// load; a cached call nested in the loader swaps its own in and out inside.
///
/// Between polls `load` holds this load's overrides (none yet is the default ones).
/// During a poll it holds the thread's, an outer load's or none, so that this frame,
/// which a memoized recursion keeps on the stack at every level, holds only a pointer.
pub(crate) fn poll_in<R>(load: &mut Option<Overrides>, poll: impl FnOnce() -> R) -> R {
    load.get_or_insert_with(Overrides::default);
    swap_with_current(load);
    let _scope = Scope(load);
    poll()
}

/// Swaps a load's overrides back out when its poll ends, even by a panic.
struct Scope<'a>(&'a mut Option<Overrides>);

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        swap_with_current(self.0);
    }
}

fn swap_with_current(load: &mut Option<Overrides>) {
    CURRENT.with(|current| std::mem::swap(&mut *current.borrow_mut(), load));
}

fn with(f: impl FnOnce(&mut Overrides)) -> bool {
    CURRENT
        .try_with(|current| current.borrow_mut().as_mut().map(f).is_some())
        .unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_load_keeps_its_overrides_apart_from_the_outer_one() {
        let (mut outer, mut inner) = (None, None);
        poll_in(&mut outer, || {
            assert!(set_ttl(Duration::from_secs(1)));
            poll_in(&mut inner, || assert!(add_tag("inner")));
            assert!(add_tag("outer"));
        });
        let (outer, inner) = (outer.unwrap(), inner.unwrap());
        assert_eq!(
            (outer.ttl, outer.tags),
            (Some(Duration::from_secs(1)), vec!["outer".into()])
        );
        assert_eq!((inner.ttl, inner.tags), (None, vec!["inner".to_string()]));
        assert!(!skip_caching(), "outside a load, nothing to override");
    }

    #[test]
    fn a_poll_that_panics_hands_its_overrides_back() {
        let mut load = None;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_in(&mut load, || {
                skip_caching();
                panic!("the loader failed");
            })
        }));
        assert!(panicked.is_err());
        assert!(load.is_some_and(|load| load.skip));
        assert!(!skip_caching(), "the thread is outside any load again");
    }
}
