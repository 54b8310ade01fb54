//! The flights whose loaders this thread is polling, so that a loader calling its own
//! function with a key it is loading panics instead of waiting for itself forever:
//! the inner call would follow a flight that can land only when the loader, which is
//! waiting for the inner call, returns.
//!
//! A flight is listed only while its loader is being polled (pushed and popped around
//! each poll), so a follower found here is polled from inside that very loader: a
//! sync body's nested call, or a future the loader awaits. Another task that happens
//! to run on the same thread between polls never sees the list.

use std::cell::RefCell;

thread_local! {
    /// The flights (by address) whose loaders are being polled on this thread.
    static POLLING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A flight's identity in the list: the address of its shared state.
pub(super) fn flight_id<T>(flight: &std::sync::Arc<T>) -> usize {
    std::sync::Arc::as_ptr(flight) as *const () as usize
}

/// Runs one poll of the loader of `flights` with them listed.
pub(super) fn polling<R>(flights: &[usize], poll: impl FnOnce() -> R) -> R {
    // Unlisted on the way out, unwinding included.
    struct Unlist(Option<usize>);
    impl Drop for Unlist {
        fn drop(&mut self) {
            if let Some(before) = self.0 {
                unlist(before);
            }
        }
    }
    let _unlist = Unlist(list(flights));
    poll()
}

/// Lists `flights`, returning the list's length before them. Out of line, as is
/// [`unlist`]: this frame stays on the stack while the loader runs, through every
/// level of a memoized recursion, and the list's growth would enlarge it.
#[inline(never)]
fn list(flights: &[usize]) -> Option<usize> {
    POLLING
        .try_with(|polling| {
            let mut polling = polling.borrow_mut();
            let before = polling.len();
            polling.extend_from_slice(flights);
            before
        })
        .ok()
}

#[inline(never)]
fn unlist(before: usize) {
    let _ = POLLING.try_with(|polling| polling.borrow_mut().truncate(before));
}

/// Panics, naming the cache, if the flight a call is about to follow has its loader
/// being polled on this thread, below this call.
pub(super) fn refuse_own_flight(flight: usize, cache_name: &str) {
    let own = POLLING.try_with(|polling| polling.borrow().contains(&flight));
    if own == Ok(true) {
        panic!(
            "the loader of cache `{cache_name}` called its own function with the key it is \
             loading: the call would wait for this load, which waits for the call"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flight_is_refused_only_while_its_loader_is_polled() {
        refuse_own_flight(7, "a");
        polling(&[7, 8], || {
            assert!(std::panic::catch_unwind(|| refuse_own_flight(8, "a")).is_err());
            refuse_own_flight(9, "a");
            polling(&[9], || {
                assert!(std::panic::catch_unwind(|| refuse_own_flight(7, "a")).is_err());
            });
        });
        // A panicking poll unlists its flights too.
        let _ = std::panic::catch_unwind(|| polling(&[10], || panic!("the loader panicked")));
        refuse_own_flight(7, "a");
        refuse_own_flight(10, "a");
        assert_eq!(POLLING.with_borrow(Vec::len), 0);
    }
}
