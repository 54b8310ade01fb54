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
    /// Kept as a fail-safe fallback until (unix ms); Redis drops it then.
    pub keep_until_ms: u64,
    /// The key's postcard bytes, as echoed in the entry.
    pub key: Vec<u8>,
    /// Tag counter keys and the versions recorded before the load.
    pub tags: Vec<(String, u64)>,
    /// The serialized value (decrypted and decompressed), or why it cannot be read.
    pub payload: Result<Vec<u8>, String>,
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
