//! Invalidations Redis has not taken yet, by the names they change there: the
//! counter of a tag, of a cache or of the namespace, or an entry's key.
//!
//! While one waits in the outbox, Redis may still answer reads: it refuses writes
//! at `maxmemory` under its default policy (`noeviction`), or only the master of the
//! counter is down. It then still holds the entries the invalidation supersedes,
//! with the versions they were written under, and they read as current. This process
//! knows better: a read of such an entry here is a miss (the others learn of it when
//! the outbox delivers it).

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

/// The names, replaced whole each time the outbox changes.
static WAITING: RwLock<Vec<String>> = RwLock::new(Vec::new());
/// False while nothing waits: the common case costs a read of it.
static ANY: AtomicBool = AtomicBool::new(false);

/// Sets what waits for Redis (the outbox calls this under its lock, after each
/// change, so the two never disagree for long enough to matter: a read checks here
/// after Redis answered it).
pub(crate) fn set(names: Vec<String>) {
    let mut waiting = WAITING.write();
    ANY.store(!names.is_empty(), Ordering::Release);
    *waiting = names;
}

/// Whether an invalidation Redis has not taken covers the entry at `entry_key`,
/// written under the tag counters `counters`.
pub(crate) fn covers<'a>(entry_key: &str, counters: impl IntoIterator<Item = &'a str>) -> bool {
    if !ANY.load(Ordering::Acquire) {
        return false;
    }
    let waiting = WAITING.read();
    let named = |name: &str| waiting.iter().any(|waiting| waiting == name);
    named(entry_key) || counters.into_iter().any(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_covered_by_its_key_or_any_of_its_counters_while_they_wait() {
        let counters = ["ns:tag:*", "ns:cache:users", "ns:tag:user:1"];
        set(vec!["ns:tag:user:1".to_owned()]);
        assert!(covers("ns:users:v0:a", counters));
        assert!(!covers("ns:users:v0:a", ["ns:tag:*", "ns:tag:user:2"]));
        set(vec!["ns:users:v0:a".to_owned()]);
        assert!(covers("ns:users:v0:a", []));
        assert!(!covers("ns:users:v0:b", counters));
        set(Vec::new());
        assert!(!covers("ns:users:v0:a", counters));
    }
}
