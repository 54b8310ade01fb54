//! What Redis holds that this process knows to be superseded: by invalidations Redis
//! has not taken yet, by the names they change there (the counter of a tag, of a
//! cache or of the namespace, or an entry's key), and by the `put!`s and `refresh!`es
//! on their way there, by entry key.
//!
//! While an invalidation waits in the outbox, Redis may still answer reads: only the
//! cluster master of the tag's counter is down, or the invalidation's script is
//! refused (an ACL). It then still holds the entries the invalidation supersedes,
//! with the versions they were written under, and they read as current. While a
//! `put!` or a `refresh!` is on its way, Redis holds what it replaces, which L1 here
//! already does not.
//! This process knows better: a read of such an entry here is a miss (the others
//! learn of it when the outbox delivers it, or the put is announced).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::LazyLock;

use parking_lot::{Mutex, RwLock};

/// The names; the outbox changes them with its queue, under its own lock.
static WAITING: LazyLock<RwLock<HashSet<String>>> = LazyLock::new(RwLock::default);
/// False while nothing waits: the common case costs a read of it.
static ANY: AtomicBool = AtomicBool::new(false);

fn change(edit: impl FnOnce(&mut HashSet<String>)) {
    let mut waiting = WAITING.write();
    edit(&mut waiting);
    ANY.store(!waiting.is_empty(), Ordering::Release);
}

/// An invalidation that changes `name` in Redis waits for it.
pub(crate) fn add(name: String) {
    change(|waiting| {
        waiting.insert(name);
    });
}

/// Redis took the invalidation that changes `name`.
pub(crate) fn remove(name: &str) {
    change(|waiting| {
        waiting.remove(name);
    });
}

/// Nothing waits any more (the outbox folded its queue into one invalidation).
pub(crate) fn clear() {
    change(HashSet::clear);
}

/// Entries this process's `put!`s and `refresh!`es are writing, with how many write
/// each.
static WRITING: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Mutex::default);
/// The writes on their way: the common case, none, costs a read of it.
static WRITES: AtomicUsize = AtomicUsize::new(0);

/// A `put!` of the entry at a key, from before it changes L1 until Redis took it
/// (or, if it did not, until the deletion that replaces it is in the outbox, which
/// covers the entry from then on); or a `refresh!`, from its landing in L1 to its
/// write-back.
pub(crate) struct Writing(String);

impl Writing {
    pub(crate) fn new(entry_key: &str) -> Self {
        *WRITING.lock().entry(entry_key.to_owned()).or_default() += 1;
        WRITES.fetch_add(1, Ordering::AcqRel);
        Self(entry_key.to_owned())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut writing = WRITING.lock();
        if let Some(count) = writing.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                writing.remove(&self.0);
            }
        }
        WRITES.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an invalidation Redis has not taken, or a write on its way there, covers
/// the entry at `entry_key`, written under the tag counters `counters`.
pub(crate) fn covers<'a>(entry_key: &str, counters: impl IntoIterator<Item = &'a str>) -> bool {
    if WRITES.load(Ordering::Acquire) > 0 && WRITING.lock().contains_key(entry_key) {
        return true;
    }
    if !ANY.load(Ordering::Acquire) {
        return false;
    }
    let waiting = WAITING.read();
    waiting.contains(entry_key) || counters.into_iter().any(|name| waiting.contains(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_covered_while_a_put_of_it_is_on_its_way() {
        let first = Writing::new("ns:put:v0:a");
        let second = Writing::new("ns:put:v0:a");
        assert!(covers("ns:put:v0:a", []));
        assert!(!covers("ns:put:v0:b", []));
        drop(first);
        assert!(
            covers("ns:put:v0:a", []),
            "the second put is still on its way"
        );
        drop(second);
        assert!(!covers("ns:put:v0:a", []));
    }

    #[test]
    fn an_entry_is_covered_by_its_key_or_any_of_its_counters_while_they_wait() {
        let counters = ["ns:tag:*", "ns:cache:users", "ns:tag:user:1"];
        add("ns:tag:user:1".to_owned());
        assert!(covers("ns:users:v0:a", counters));
        assert!(!covers("ns:users:v0:a", ["ns:tag:*", "ns:tag:user:2"]));
        add("ns:users:v0:a".to_owned());
        remove("ns:tag:user:1");
        assert!(covers("ns:users:v0:a", []));
        assert!(!covers("ns:users:v0:b", counters));
        clear();
        assert!(!covers("ns:users:v0:a", counters));
    }
}
