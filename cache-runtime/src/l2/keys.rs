//! The Redis key scheme. Entry keys are
//! `{namespace}:{cache}:v{version}:{hash}` where `hash` is the 128-bit xxh3 of the
//! serialized key (postcard, or JSON where postcard would not tell keys apart: see
//! `codec::encode_key`): stable across processes, builds and Rust versions (never
//! std's `Hasher`, whose output may change). Tag counters live beside them.

use xxhash_rust::xxh3::xxh3_128;

/// What every entry key of one cache starts with, computed once per cache.
pub(crate) fn entry_prefix(namespace: &str, cache: &str, version: u32) -> String {
    format!("{namespace}:{cache}:v{version}:")
}

/// `prefix` and the 32 lower-case hex digits of the key's hash (`{:032x}`, without
/// the formatting machinery: this runs for every key of every Redis read).
pub(crate) fn entry_with_prefix(prefix: &str, key_bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = xxh3_128(key_bytes).to_be_bytes();
    let mut digits = [0u8; 32];
    for (pair, byte) in digits.chunks_exact_mut(2).zip(hash) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    let mut key = String::with_capacity(prefix.len() + 32);
    key.push_str(prefix);
    key.push_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"));
    key
}

/// The counter of a user tag.
pub(crate) fn tag(namespace: &str, tag: &str) -> String {
    format!("{namespace}:tag:{tag}")
}

/// The tag whose counter is `counter` (see [`tag`]), if it is a user tag's.
pub(crate) fn tag_name<'a>(namespace: &str, counter: &'a str) -> Option<&'a str> {
    counter.strip_prefix(namespace)?.strip_prefix(":tag:")
}

/// The counter of a cache's implicit tag ("clear this function").
pub(crate) fn cache_tag(namespace: &str, cache: &str) -> String {
    format!("{namespace}:cache-tag:{cache}")
}

/// The counter of the changes made to single entries of `cache` (see
/// `entry_changes.rs`).
pub(crate) fn entry_changes(namespace: &str, cache: &str) -> String {
    format!("{namespace}:entry-changes:{cache}")
}

/// Claimed by the one process that makes `cache`'s entry-level invalidations again
/// after the Redis server `run` came up with data from before (see
/// `backplane::restarts`).
pub(crate) fn made_again(namespace: &str, cache: &str, run: &str) -> String {
    format!("{namespace}:made-again:{cache}:{run}")
}

/// Whether `counter` is a cache's entry-change counter (see [`entry_changes`]).
pub(crate) fn counts_entry_changes(namespace: &str, counter: &str) -> bool {
    counter
        .strip_prefix(namespace)
        .is_some_and(|rest| rest.starts_with(":entry-changes:"))
}

/// How many bumps of named tags' counters the namespace has seen (see
/// `L2::bump_command`). On a cluster the namespace is the key's hash tag, so that
/// this count and the list of [`bumped`] share a slot, which one script needs; on a
/// standalone server the name is the one earlier releases used.
pub(crate) fn bumps(namespace: &str, cluster: bool) -> String {
    format!("{}:bumps", bump_log_prefix(namespace, cluster))
}

/// The latest bumps of named tags' counters, oldest first, each
/// `"{count} {count before} {counter}"` (the counts of [`bumps`]; see
/// `L2::bumped_since`).
pub(crate) fn bumped(namespace: &str, cluster: bool) -> String {
    format!("{}:bumped", bump_log_prefix(namespace, cluster))
}

fn bump_log_prefix(namespace: &str, cluster: bool) -> std::borrow::Cow<'_, str> {
    if cluster {
        format!("{{{namespace}}}").into()
    } else {
        namespace.into()
    }
}

/// The counter of the global implicit tag ("clear everything").
pub(crate) fn global_tag(namespace: &str) -> String {
    format!("{namespace}:global-tag")
}

/// The pub/sub channel of invalidations.
pub(crate) fn channel(namespace: &str) -> String {
    format!("{namespace}:invalidations")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(namespace: &str, cache: &str, version: u32, key_bytes: &[u8]) -> String {
        entry_with_prefix(&entry_prefix(namespace, cache, version), key_bytes)
    }

    #[test]
    fn a_user_tag_is_read_back_from_its_counter() {
        assert_eq!(tag_name("a:b", &tag("a:b", "user:7")), Some("user:7"));
        assert_eq!(tag_name("ns", &cache_tag("ns", "users.get")), None);
        assert_eq!(tag_name("ns", &global_tag("ns")), None);
        assert_eq!(tag_name("other", &tag("ns", "user:7")), None);
    }

    #[test]
    fn the_log_of_bumps_shares_a_slot_on_a_cluster_and_keeps_its_names_elsewhere() {
        // Pinned: processes of an earlier release bump the standalone count.
        assert_eq!(bumps("ns", false), "ns:bumps");
        assert_eq!(bumped("ns", false), "ns:bumped");
        // The hash tag `{ns}`: the one script that moves both reaches them.
        assert_eq!(bumps("ns", true), "{ns}:bumps");
        assert_eq!(bumped("ns", true), "{ns}:bumped");
    }

    #[test]
    fn entry_keys_are_stable_and_distinct() {
        let key = postcard::to_allocvec(&(7u64, "ann")).unwrap();
        // Pinned: a change here orphans every entry already in Redis.
        assert_eq!(
            entry("ns", "users.get", 1, &key),
            format!("ns:users.get:v1:{:032x}", xxh3_128(&key))
        );
        assert_eq!(
            entry("ns", "users.get", 1, &key),
            entry("ns", "users.get", 1, &key)
        );
        assert_ne!(
            entry("ns", "users.get", 1, &key),
            entry("ns", "users.get", 2, &key)
        );
        let other = postcard::to_allocvec(&(8u64, "ann")).unwrap();
        assert_ne!(
            entry("ns", "users.get", 1, &key),
            entry("ns", "users.get", 1, &other)
        );
        // Pinned bytes of one key: a change here orphans every entry already in Redis.
        assert_eq!(
            entry("ns", "c", 0, b"stratacache"),
            "ns:c:v0:441d64605cd3b54327ea935d5ba3246a"
        );
    }
}
