//! The loads a thread is driving for its sync callers, so that a loader calling its
//! own function with the same key panics instead of waiting for itself forever: the
//! inner call would join the outer call's flight, whose loader is the very frame
//! below it on this thread, and park the thread that has to finish it.
//!
//! Only sync calls are kept here: a thread parked in `block_on` runs nothing else, so
//! a same-key call on it can only come from inside that load. An `async fn`'s load
//! shares its thread with other tasks, and is not tracked.

use std::any::Any;
use std::cell::RefCell;

use super::CacheKey;

thread_local! {
    /// `(cache, key)` of every sync load this thread is driving, innermost last.
    static DRIVING: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// This thread's sync load of `key` in the cache at `cache`, for as long as it lives
/// (`true`: registered in this thread's list).
pub(super) struct Driving(bool);

impl Driving {
    /// Registers the load; panics, naming the cache, if this thread is already
    /// driving a load of the same key in the same cache.
    /// (A call from a thread-local's destructor, once this list is gone, is not
    /// checked: it cannot have started a load this thread is driving.)
    pub(super) fn enter<K: CacheKey>(cache: usize, cache_name: &str, key: &K) -> Self {
        let reentered = DRIVING.try_with(|driving| {
            driving.borrow().iter().any(|load| {
                load.downcast_ref::<(usize, K)>()
                    .is_some_and(|(at, loading)| *at == cache && loading == key)
            })
        });
        if reentered == Ok(true) {
            panic!(
                "the loader of cache `{cache_name}` called its own function with the key it is \
                 loading: the call would wait for this load, which waits for the call"
            );
        }
        let registered = DRIVING.try_with(|driving| {
            driving.borrow_mut().push(Box::new((cache, key.clone())));
        });
        Self(registered.is_ok())
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        if self.0 {
            // Unwinding must not panic again, whatever the thread's state.
            let _ = DRIVING.try_with(|driving| driving.borrow_mut().pop());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_in_the_same_cache_is_refused_and_anything_else_nests() {
        let outer = Driving::enter(1, "a", &7u64);
        let other_key = Driving::enter(1, "a", &8u64);
        let other_cache = Driving::enter(2, "b", &7u64);
        let other_type = Driving::enter(1, "a", &7u32);
        let again = std::panic::catch_unwind(|| Driving::enter(1, "a", &7u64));
        assert!(again.is_err());
        drop((other_type, other_cache, other_key, outer));
        // Every registration is gone: the same key may be loaded again.
        drop(Driving::enter(1, "a", &7u64));
        assert_eq!(DRIVING.with_borrow(Vec::len), 0);
    }
}
