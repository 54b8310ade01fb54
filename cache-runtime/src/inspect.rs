//! For tools that look inside a Redis namespace (`stratacache-cli`): the key scheme
//! and a decoder of entries. Nothing here is on a cache's path.

use crate::l2::envelope::{Envelope, Flags};
use crate::l2::keys;
use crate::l2::protection::Protection;
use crate::l2::secrets::Secrets;

/// The Redis key of the entry whose key serializes (postcard) to `key_bytes`.
pub fn entry_key(namespace: &str, cache: &str, version: u32, key_bytes: &[u8]) -> String {
    keys::entry_with_prefix(&keys::entry_prefix(namespace, cache, version), key_bytes)
}

/// A client for one node URL, as the caches make theirs: `rediss://` (with the `tls`
/// feature) verified against `root_cert` when one is given (a private CA, the PEM of
/// `STRATACACHE_REDIS_CA_FILE`), else against the system's trust store.
pub fn client(url: &str, root_cert: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    crate::l2::connection::client(url, root_cert)
}

/// The counter key of the cache called `cache` (what `clear!` moves).
pub fn cache_tag_key(namespace: &str, cache: &str) -> String {
    keys::cache_tag(namespace, cache)
}

/// The counter of the changes of single entries of the cache called `cache` (what
/// `invalidate!`, `put!` and `refresh!` move).
pub fn entry_changes_key(namespace: &str, cache: &str) -> String {
    keys::entry_changes(namespace, cache)
}

/// The counter key of every cache of the namespace (what `clear_all` moves).
pub fn global_tag_key(namespace: &str) -> String {
    keys::global_tag(namespace)
}

/// Invalidates every entry of the cache called `name`, here, in Redis and in the
/// other processes, as `clear!` does, for a process that need not hold the cache
/// (`stratacache-cli clear`). Delivered or queued as
/// [`invalidate_tag`](crate::invalidate_tag) is.
pub fn clear_cache(
    name: &str,
) -> impl std::future::Future<Output = Result<(), crate::Error>> + Send + 'static {
    let cell = crate::registry::clear_named(name);
    crate::send(crate::outbox::Invalidation::cache(name, cell))
}

/// Invalidates one entry of the cache called `cache`, as `invalidate!` does, for a
/// process that need not hold the cache (`stratacache-cli invalidate`): a tombstone
/// at `entry_key`, the Redis key it is stored under, and every process drops its
/// copy of the key that serializes to `key_bytes`. Delivered or queued as
/// [`invalidate_tag`](crate::invalidate_tag) is.
pub fn invalidate_entry(
    cache: &str,
    key_bytes: Vec<u8>,
    entry_key: String,
) -> impl std::future::Future<Output = Result<(), crate::Error>> + Send + 'static {
    crate::registry::evict_encoded(cache, &key_bytes);
    crate::send(crate::outbox::Invalidation::entry(
        cache, key_bytes, entry_key, None,
    ))
}

/// The counter key of a user tag.
pub fn tag_key(namespace: &str, tag: &str) -> String {
    keys::tag(namespace, tag)
}

/// What a signature check of an entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signature {
    /// Not signed.
    Unsigned,
    /// Signed; no secret was given to check it.
    Unchecked,
    /// Signed by the secret at this position of the list given.
    Valid(usize),
    /// Signed, by none of the secrets given (or tampered with).
    Invalid,
}

/// A decoded entry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EntryView {
    /// `postcard` or `json`.
    pub format: &'static str,
    /// The payload is stored compressed (snappy).
    pub compressed: bool,
    /// The payload is stored encrypted.
    pub encrypted: bool,
    /// Whether it is signed, and by which secret.
    pub signature: Signature,
    /// Of the value type's serde shape.
    pub fingerprint: u64,
    /// When it was written, in unix milliseconds.
    pub created_ms: u64,
    /// Fresh until (unix ms).
    pub fresh_until_ms: u64,
    /// Servable stale until (unix ms; `stale_while_revalidate`).
    pub stale_until_ms: u64,
    /// Kept as a fail-safe fallback until (unix ms); past it a miss, its key kept
    /// in Redis until at least `Config::tombstone_ttl` after it was written.
    pub keep_until_ms: u64,
    /// The key's postcard bytes, as echoed in the entry.
    pub key: Vec<u8>,
    /// Tag counter keys and the versions recorded before the load.
    pub tags: Vec<(String, u64)>,
    /// The serialized value (decrypted and decompressed), or why it cannot be read.
    pub payload: Result<Vec<u8>, String>,
}

/// How many first bytes of an entry key's value [`held`] needs (`GETRANGE key 0
/// HEAD_LEN-1`).
pub const HEAD_LEN: usize = crate::l2::envelope::HEAD_LEN;

/// What an entry key holds, as told by its first [`HEAD_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Held {
    /// An entry that may still serve (fresh, stale, or as a fallback).
    Live,
    /// An entry past its end: a miss, its key kept in Redis until at least a
    /// tombstone's life after it was written (see `Config::tombstone_ttl`).
    Ended,
    /// What an `invalidate!` left: a miss.
    Tombstone,
    /// Not an entry of this format version.
    Unreadable,
}

/// What an entry key whose value starts with `head` holds at `now_ms` (unix ms).
pub fn held(head: &[u8], now_ms: u64) -> Held {
    if crate::l2::replace::is_tombstone(head) {
        return Held::Tombstone;
    }
    match crate::l2::envelope::keep_until_in_head(head) {
        Some(keep_until) if now_ms < keep_until => Held::Live,
        Some(_) => Held::Ended,
        None => Held::Unreadable,
    }
}

/// Decodes an entry's bytes. With `secrets` (the `Config::secret` list), checks
/// the signature and decrypts. `Err`: not a sound stratacache entry (the tombstone
/// of an invalidated entry says so).
pub fn decode_entry(bytes: &[u8], secrets: Option<&str>) -> Result<EntryView, String> {
    if crate::l2::replace::is_tombstone(bytes) {
        return Err("invalidated: a tombstone, read as a miss until a load writes over it".into());
    }
    let decoded = Envelope::decode(bytes).map_err(|unusable| format!("{unusable:?}"))?;
    let secrets = secrets.and_then(Secrets::parse);
    let signature = match (&secrets, decoded.mac) {
        (_, None) => Signature::Unsigned,
        (None, Some(_)) => Signature::Unchecked,
        (Some(secrets), Some(_)) => decoded
            .signer(secrets)
            .map_or(Signature::Invalid, Signature::Valid),
    };
    let signer = match signature {
        Signature::Valid(index) => Some(index),
        _ => None,
    };
    let protection = Protection {
        secrets,
        ..Protection::default()
    };
    let payload = protection
        .reveal(&decoded, signer, usize::MAX)
        .map(|payload| payload.into_owned())
        .map_err(|refused| refused.to_string());
    let envelope = decoded.envelope;
    Ok(EntryView {
        format: match envelope.format {
            crate::PayloadFormat::Json => "json",
            _ => "postcard",
        },
        compressed: envelope.flags.contains(Flags::COMPRESSED),
        encrypted: envelope.flags.contains(Flags::ENCRYPTED),
        signature,
        fingerprint: envelope.fingerprint,
        created_ms: envelope.created_ms,
        fresh_until_ms: envelope.fresh_until_ms,
        stale_until_ms: envelope.stale_until_ms,
        keep_until_ms: envelope.keep_until_ms,
        key: envelope.key.to_vec(),
        tags: envelope
            .tags
            .iter()
            .map(|(name, version)| (name.to_string(), *version))
            .collect(),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::codec::PayloadFormat;

    fn entry(keep_until_ms: u64) -> Vec<u8> {
        Envelope {
            format: PayloadFormat::Postcard,
            flags: Flags::default(),
            fingerprint: 7,
            created_ms: 1,
            fresh_until_ms: keep_until_ms,
            stale_until_ms: keep_until_ms,
            keep_until_ms,
            key: b"k",
            tags: vec![("t:tag:a", 3)],
            payload: b"value",
        }
        .encode(None)
    }

    #[test]
    fn an_entry_key_is_told_live_ended_or_a_tombstone_by_its_first_bytes() {
        let now = 1_000_000;
        let head = |bytes: &[u8]| bytes[..HEAD_LEN.min(bytes.len())].to_vec();
        assert_eq!(held(&head(&entry(now + 1)), now), Held::Live);
        assert_eq!(held(&head(&entry(now)), now), Held::Ended);
        let tombstone = crate::l2::replace::tombstone(3, 4);
        assert_eq!(held(&head(&tombstone), now), Held::Tombstone);
        assert_eq!(held(b"SC", now), Held::Unreadable);
        assert_eq!(held(b"{\"json\": true}", now), Held::Unreadable);
    }
}
