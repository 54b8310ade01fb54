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

/// Runs `poll` (one poll of a loader) with `overrides` as this load's: they are moved
/// in for the poll and back out after it. A loader is polled on one thread at a
/// time, so this is what a task-local would do, without a shared allocation per
/// load; a cached call nested in the loader moves its own in and out inside.
pub(crate) fn poll_in<R>(overrides: &mut Overrides, poll: impl FnOnce() -> R) -> R {
    let outer = CURRENT.with(|current| current.replace(Some(std::mem::take(overrides))));
    let _scope = Scope {
        load: overrides,
        outer,
    };
    poll()
}

/// Moves a load's overrides back out when its poll ends, even by a panic.
struct Scope<'a> {
    load: &'a mut Overrides,
    outer: Option<Overrides>,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let outer = self.outer.take();
        let polled = CURRENT.with(|current| current.replace(outer));
        *self.load = polled.unwrap_or_default();
    }
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
        let (mut outer, mut inner) = (Overrides::default(), Overrides::default());
        poll_in(&mut outer, || {
            assert!(set_ttl(Duration::from_secs(1)));
            poll_in(&mut inner, || assert!(add_tag("inner")));
            assert!(add_tag("outer"));
        });
        assert_eq!(
            (outer.ttl, outer.tags),
            (Some(Duration::from_secs(1)), vec!["outer".into()])
        );
        assert_eq!((inner.ttl, inner.tags), (None, vec!["inner".to_string()]));
        assert!(!skip_caching(), "outside a load, nothing to override");
    }

    #[test]
    fn a_poll_that_panics_hands_its_overrides_back() {
        let mut load = Overrides::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_in(&mut load, || {
                skip_caching();
                panic!("the loader failed");
            })
        }));
        assert!(panicked.is_err());
        assert!(load.skip);
        assert!(!skip_caching(), "the thread is outside any load again");
    }
}
