//! Reading an entry's envelope: is it this key's, sound, still valid under its tags,
//! and for how long may it serve; and writing one.

use super::read::{Read, SharedFallback};
use super::target::Target;
use super::write::WriteUnder;
use super::Entries;
use crate::l2::envelope::{Envelope, Unusable};
use crate::l2::protection::{Refused, Unwritable};
use crate::l2::replace;
use crate::l2::unix_ms;
use crate::superseded;
use crate::tags::Stamps;
use crate::times::{Lifetime, Times, NEVER};

/// A sound value decoded from Redis, what is left of its lifetime, and what it may
/// still serve as.
pub(crate) struct Found<V> {
    pub(crate) value: V,
    pub(crate) lifetime: Lifetime,
    pub(crate) serves_as: ServesAs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServesAs {
    Fresh,
    /// Past its ttl, inside the stale-while-revalidate window.
    Stale,
    /// Only inside the fail-safe window.
    Fallback,
}

impl<V> Found<V> {
    /// The read of a single call: `under` what a load's write-back goes under,
    /// `stamps` those to keep the value under.
    pub(crate) fn into_read(self, under: WriteUnder, stamps: Stamps) -> Read<V> {
        let Found {
            value,
            lifetime,
            serves_as,
        } = self;
        match serves_as {
            ServesAs::Fresh => Read::Hit {
                value,
                lifetime,
                under,
                stamps,
            },
            ServesAs::Stale => Read::Stale {
                value,
                lifetime,
                under,
                stamps,
            },
            ServesAs::Fallback => Read::Miss {
                under,
                fallback: Some(SharedFallback {
                    value,
                    lifetime,
                    stamps,
                }),
            },
        }
    }
}

/// Why a value in Redis could not be used.
pub(crate) enum Bad {
    Envelope(Unusable),
    OtherKey,
    Payload,
    TooLarge(usize),
    /// Written with another shape of the value type.
    SchemaMismatch,
    /// Refused by this process's secrets, or not readable without one.
    Refused(Refused),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Envelope(Unusable::NotOurs) => f.write_str("not a stratacache value"),
            Bad::Envelope(Unusable::UnknownVersion) => {
                f.write_str("written by an unknown envelope version")
            }
            Bad::Envelope(Unusable::Truncated) => f.write_str("truncated or malformed"),
            Bad::Envelope(Unusable::Corrupt) => {
                f.write_str("checksum mismatch: changed in Redis since it was written")
            }
            Bad::OtherKey => f.write_str("holds another key (hash collision or foreign writer)"),
            Bad::Payload => f.write_str(
                "payload does not decode as this value type; bump `version` when the type changes",
            ),
            Bad::TooLarge(len) => write!(
                f,
                "payload of {len} bytes is over the configured max_payload"
            ),
            Bad::SchemaMismatch => {
                f.write_str("written with another shape of the value type (another deploy)")
            }
            Bad::Refused(refused) => write!(f, "refused: {refused}"),
        }
    }
}

/// An entry's times as L1 keeps them, its refresh point counted from its creation.
fn times_of(envelope: &Envelope<'_>, refresh_after: u64) -> Times {
    Times {
        fresh_until: envelope.fresh_until_ms,
        stale_until: envelope.stale_until_ms,
        keep_until: envelope.keep_until_ms,
        refresh_at: if refresh_after == NEVER {
            NEVER
        } else {
            envelope.created_ms.saturating_add(refresh_after)
        },
    }
}

impl<K, V> Entries<'_, K, V> {
    /// `Ok(None)`: a sound value that is invalidated, or no longer fresh and not kept;
    /// an entry past its end, whatever it holds; or the tombstone of an invalidated
    /// entry.
    /// With the value, the tags its loader added (counter key, version recorded),
    /// whose versions the caller still has to check. `now` is unix time in ms, read
    /// once by a caller decoding many values.
    #[allow(clippy::type_complexity)]
    pub(crate) fn decode(
        &self,
        target: &Target,
        bytes: &[u8],
        versions: &[u64],
        now: u64,
    ) -> Result<Option<(Found<V>, Vec<(String, u64)>)>, Bad> {
        if replace::is_tombstone(bytes) {
            return Ok(None);
        }
        let decoded = Envelope::decode(bytes).map_err(Bad::Envelope)?;
        // Past its end it is a miss whatever it holds (its key outlives it, see
        // `replace::key_life_ms`): neither checked nor counted as a mismatch.
        if now >= decoded.envelope.keep_until_ms {
            return Ok(None);
        }
        let protection = &target.l2.protection;
        let signer = protection.authenticate(&decoded).map_err(Bad::Refused)?;
        let envelope = &decoded.envelope;
        let codec = &self.shared.codec;
        if envelope.key != &*target.key_bytes {
            return Err(Bad::OtherKey);
        }
        if envelope.fingerprint != codec.fingerprint {
            return Err(Bad::SchemaMismatch);
        }
        // Encryption adds its nonce and tag to a payload within `max_payload`.
        if envelope.payload.len() > target.l2.max_payload.saturating_add(64) {
            return Err(Bad::TooLarge(envelope.payload.len()));
        }
        if envelope.tags.len() < target.tag_keys.len() {
            return Ok(None);
        }
        let (recorded, added) = envelope.tags.split_at(target.tag_keys.len());
        let current = target
            .tag_keys
            .iter()
            .map(String::as_str)
            .zip(versions.iter().copied());
        if !recorded.iter().copied().eq(current) {
            return Ok(None);
        }
        let counters = envelope.tags.iter().map(|(counter, _)| *counter);
        if superseded::covers(&target.entry_key, counters) {
            return Ok(None);
        }
        let added: Vec<(String, u64)> = added
            .iter()
            .map(|(name, version)| (name.to_string(), *version))
            .collect();
        let fresh = now < envelope.fresh_until_ms;
        let servable_stale = self.shared.settings.serves_stale && now < envelope.stale_until_ms;
        let kept =
            servable_stale || (self.shared.settings.keeps_fallback && now < envelope.keep_until_ms);
        if !fresh && !kept {
            return Ok(None);
        }
        let payload = protection
            .reveal(&decoded, signer, target.l2.max_payload)
            .map_err(Bad::Refused)?;
        let value = (codec.decode_value)(&payload, envelope.format).ok_or(Bad::Payload)?;
        let times = times_of(envelope, self.shared.settings.refresh_after);
        let serves_as = if fresh {
            ServesAs::Fresh
        } else if servable_stale {
            ServesAs::Stale
        } else {
            ServesAs::Fallback
        };
        let found = Found {
            value,
            lifetime: times.remaining(now),
            serves_as,
        };
        Ok(Some((found, added)))
    }

    /// A value's envelope and Redis TTL; `None` if it cannot or may not be written.
    pub(crate) fn envelope(
        &self,
        target: &Target,
        value: &V,
        versions: Vec<u64>,
        lifetime: Lifetime,
        added: &[(String, u64)],
    ) -> Option<(Vec<u8>, Option<u64>)> {
        let codec = &self.shared.codec;
        let encoded = (codec.encode_value)(value, target.l2.format);
        let Some((payload, format)) = encoded else {
            self.complain("the value does not serialize into a payload that reads back");
            return None;
        };
        if payload.len() > target.l2.max_payload {
            self.too_large_to_share(payload.len(), target.l2.max_payload);
            return None;
        }
        let (stored, flags) = match target.l2.protection.protect(
            payload,
            self.shared.settings.protection,
            &target.key_bytes,
        ) {
            Ok(stored) => stored,
            Err(Unwritable::NoSecretToEncrypt) => {
                self.kept_in_process("`encrypt` is on for this cache and no secret is configured");
                return None;
            }
            Err(Unwritable::EncryptionFailed) => {
                self.complain("encryption failed");
                return None;
            }
        };
        let recorded = target.tag_keys.iter().map(String::as_str).zip(versions);
        let added = added
            .iter()
            .map(|(name, version)| (name.as_str(), *version));
        let tags: Vec<(&str, u64)> = recorded.chain(added).collect();
        let now = unix_ms();
        let times = lifetime.from(now);
        let envelope = Envelope {
            format,
            flags,
            fingerprint: codec.fingerprint,
            created_ms: now,
            fresh_until_ms: times.fresh_until,
            stale_until_ms: times.stale_until,
            keep_until_ms: times.keep_until,
            key: &target.key_bytes,
            tags,
            payload: &stored,
        };
        let ttl_ms = replace::key_life_ms(times.keep_until, now, target.l2.tombstone_ttl);
        Some((envelope.encode(target.l2.protection.signer()), ttl_ms))
    }
}
