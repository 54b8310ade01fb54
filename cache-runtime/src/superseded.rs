//! Invalidations Redis has not taken yet, by the names they change there: the
//! counter of a tag, of a cache or of the namespace, or an entry's key.
//!
//! While one waits in the outbox, Redis may still answer reads: only the cluster
//! master of the tag's counter is down, or the invalidation's script is refused (an
//! ACL). It then still holds the entries the invalidation supersedes,
//! with the versions they were written under, and they read as current. This process
//! knows better: a read of such an entry here is a miss (the others learn of it when
//! the outbox delivers it).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use parking_lot::RwLock;

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

/// Whether an invalidation Redis has not taken covers the entry at `entry_key`,
/// written under the tag counters `counters`.
pub(crate) fn covers<'a>(entry_key: &str, counters: impl IntoIterator<Item = &'a str>) -> bool {
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
