//! The versioned binary envelope around a value in Redis:
//!
//! ```text
//! "SC" | format version (4) | payload format | flags | schema fingerprint (u64 LE)
//!      | created, fresh-until, stale-until, keep-until (u64 LE, unix ms)
//!      | key length (u32) | key bytes | tag count (u16) | per tag: name length (u16), name, version (u64)
//!      | payload length (u32) | payload | [HMAC-SHA256 of everything before it, if signed]
//!      | xxh3-64 of everything before it (u64 LE)
//! ```
//!
//! The checksum makes a value corrupted in Redis (a flipped byte, a partial write)
//! a counted miss instead of a wrong answer: postcard would decode most mutated
//! payloads into some other value without complaint. It protects against accidents
//! only; the MAC, under a secret the writer of Redis may not know, against forgery.
//!
//! The flags say how the payload is stored: compressed (snappy raw format), then
//! encrypted (nonce and AEAD ciphertext). The fingerprint is that of the value
//! type's serde shape (see `codec.rs`): a reader with another shape does not decode.
//!
//! The key is echoed so a hash collision or a foreign value under our key is caught;
//! the tags are recorded with the versions read before the load, so an invalidation
//! that raced the load makes the entry invalid to every reader.

use xxhash_rust::xxh3::xxh3_64;

use super::codec::PayloadFormat;
use super::secrets::{Secrets, MAC_LEN};

const MAGIC: &[u8; 2] = b"SC";
/// 2 added keep-until (the fail-safe window), 3 the checksum, 4 the flags, the
/// fingerprint and the MAC. Other versions are counted misses that a load overwrites.
const FORMAT_VERSION: u8 = 4;
const CHECKSUM_LEN: usize = 8;

/// How the payload is stored. Unknown bits make the envelope unusable, so a later
/// version can add kinds that older readers skip instead of misreading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(u8);

impl Flags {
    pub(crate) const COMPRESSED: Flags = Flags(1);
    pub(crate) const ENCRYPTED: Flags = Flags(2);
    /// Set by `encode` when it signs; a MAC sits between payload and checksum.
    const SIGNED: Flags = Flags(4);
    const KNOWN: u8 = 7;

    pub(crate) fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub(crate) fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// An envelope borrowing its parts: from the bytes Redis returned when read (reading
/// one allocates only its tag list), from the value's own parts when written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) format: PayloadFormat,
    pub(crate) flags: Flags,
    pub(crate) fingerprint: u64,
    pub(crate) created_ms: u64,
    pub(crate) fresh_until_ms: u64,
    pub(crate) stale_until_ms: u64,
    pub(crate) keep_until_ms: u64,
    pub(crate) key: &'a [u8],
    /// Tag counter keys (the implicit tags, the call's, then any its loader added) and
    /// the versions seen before the load.
    pub(crate) tags: Vec<(&'a str, u64)>,
    pub(crate) payload: &'a [u8],
}

/// A decoded envelope with what its MAC, if any, covers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub(crate) envelope: Envelope<'a>,
    pub(crate) mac: Option<&'a [u8]>,
    /// The bytes the MAC covers: everything before it.
    pub(crate) signed: &'a [u8],
}

impl Decoded<'_> {
    /// Which of `secrets` signed this envelope; `None` if unsigned or forged.
    pub(crate) fn signer(&self, secrets: &Secrets) -> Option<usize> {
        secrets.verify(&[self.signed], self.mac?)
    }
}

/// Why a value in Redis was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    NotOurs,
    UnknownVersion,
    Truncated,
    /// The checksum does not match: changed since it was written.
    Corrupt,
}

/// How many first bytes of an envelope hold its times: magic, format version,
/// payload format, flags, fingerprint, then the four times.
pub(crate) const HEAD_LEN: usize = 2 + 1 + 1 + 1 + 8 + 4 * 8;

/// The end of an entry's use (its keep-until, unix ms) read from its first
/// [`HEAD_LEN`] bytes, for tools counting what a namespace holds without reading
/// every value; `None` if they are not an envelope's of this format version.
pub(crate) fn keep_until_in_head(head: &[u8]) -> Option<u64> {
    if head.len() < HEAD_LEN || &head[..2] != MAGIC || head[2] != FORMAT_VERSION {
        return None;
    }
    let keep_until = head[HEAD_LEN - 8..HEAD_LEN].try_into().ok()?;
    Some(u64::from_le_bytes(keep_until))
}

impl<'a> Envelope<'a> {
    /// The envelope's bytes, with a MAC under `signer`'s first secret when given.
    pub(crate) fn encode(&self, signer: Option<&Secrets>) -> Vec<u8> {
        let tags_len: usize = self.tags.iter().map(|(name, _)| 10 + name.len()).sum();
        let mut out =
            Vec::with_capacity(96 + self.key.len() + tags_len + self.payload.len() + MAC_LEN);
        let flags = match signer {
            Some(_) => self.flags.with(Flags::SIGNED),
            None => Flags(self.flags.0 & !Flags::SIGNED.0),
        };
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.format.marker());
        out.push(flags.0);
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        for time in [
            self.created_ms,
            self.fresh_until_ms,
            self.stale_until_ms,
            self.keep_until_ms,
        ] {
            out.extend_from_slice(&time.to_le_bytes());
        }
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(self.key);
        out.extend_from_slice(&(self.tags.len() as u16).to_le_bytes());
        for (name, version) in &self.tags {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&version.to_le_bytes());
        }
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(self.payload);
        if let Some(secrets) = signer {
            let mac = secrets.sign(&[&out]);
            out.extend_from_slice(&mac);
        }
        let checksum = xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Decoded<'a>, Unusable> {
        let mut reader = Reader(bytes);
        if reader.take(2)? != MAGIC {
            return Err(Unusable::NotOurs);
        }
        if reader.u8()? != FORMAT_VERSION {
            return Err(Unusable::UnknownVersion);
        }
        let body_len = bytes
            .len()
            .checked_sub(CHECKSUM_LEN)
            .ok_or(Unusable::Truncated)?;
        let (body, checksum) = bytes.split_at(body_len);
        if xxh3_64(body).to_le_bytes() != checksum {
            return Err(Unusable::Corrupt);
        }
        let mut reader = Reader(&body[3..]);
        let format = PayloadFormat::from_marker(reader.u8()?).ok_or(Unusable::UnknownVersion)?;
        let flags = reader.u8()?;
        if flags & !Flags::KNOWN != 0 {
            return Err(Unusable::UnknownVersion);
        }
        let flags = Flags(flags);
        let fingerprint = reader.u64()?;
        let (created_ms, fresh_until_ms) = (reader.u64()?, reader.u64()?);
        let (stale_until_ms, keep_until_ms) = (reader.u64()?, reader.u64()?);
        let key_len = reader.u32()? as usize;
        let key = reader.take(key_len)?;
        let tag_count = reader.u16()?;
        let mut tags = Vec::with_capacity(usize::from(tag_count).min(16));
        for _ in 0..tag_count {
            let name_len = reader.u16()?.into();
            let name =
                std::str::from_utf8(reader.take(name_len)?).map_err(|_| Unusable::Truncated)?;
            tags.push((name, reader.u64()?));
        }
        let payload_len = reader.u32()? as usize;
        let payload = reader.take(payload_len)?;
        let mac = if flags.contains(Flags::SIGNED) {
            Some(reader.take(MAC_LEN)?)
        } else {
            None
        };
        if !reader.0.is_empty() {
            return Err(Unusable::Truncated);
        }
        let signed = &body[..body.len() - mac.map_or(0, <[u8]>::len)];
        let envelope = Envelope {
            format,
            flags: Flags(flags.0 & !Flags::SIGNED.0),
            fingerprint,
            created_ms,
            fresh_until_ms,
            stale_until_ms,
            keep_until_ms,
            key,
            tags,
            payload,
        };
        Ok(Decoded {
            envelope,
            mac,
            signed,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unusable> {
        if self.0.len() < n {
            return Err(Unusable::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Unusable> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, Unusable> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, Unusable> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, Unusable> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope<'static> {
        Envelope {
            format: PayloadFormat::Json,
            flags: Flags::COMPRESSED,
            fingerprint: 0xfeed,
            created_ms: 1,
            fresh_until_ms: 2,
            stale_until_ms: 3,
            keep_until_ms: 4,
            key: &[7, 8],
            tags: vec![("user:7", 4), ("", 0)],
            payload: b"{\"a\":1}",
        }
    }

    #[test]
    fn round_trips() {
        let bytes = sample().encode(None);
        let decoded = Envelope::decode(&bytes).unwrap();
        assert_eq!((decoded.envelope, decoded.mac), (sample(), None));
    }

    #[test]
    fn a_signed_envelope_verifies_under_its_secret_only() {
        let secrets = Secrets::parse("k2,k1").unwrap();
        let bytes = sample().encode(Some(&Secrets::parse("k1").unwrap()));
        let decoded = Envelope::decode(&bytes).unwrap();
        assert_eq!(decoded.envelope, sample());
        assert_eq!(decoded.signer(&secrets), Some(1));
        assert_eq!(decoded.signer(&Secrets::parse("k2").unwrap()), None);
        let unsigned = sample().encode(None);
        assert_eq!(Envelope::decode(&unsigned).unwrap().signer(&secrets), None);
        // A forger who knows no secret can rewrite the payload and fix the checksum,
        // but not the MAC.
        let mut forged = bytes.clone();
        let at = forged.windows(7).position(|w| w == b"{\"a\":1}").unwrap() + 5;
        forged[at] = b'2';
        let body = forged.len() - CHECKSUM_LEN;
        let checksum = xxh3_64(&forged[..body]).to_le_bytes();
        forged[body..].copy_from_slice(&checksum);
        let decoded = Envelope::decode(&forged).expect("structurally sound");
        assert_eq!(decoded.envelope.payload, b"{\"a\":2}");
        assert_eq!(decoded.signer(&secrets), None);
    }

    #[test]
    fn every_truncation_and_foreign_value_is_rejected() {
        let bytes = sample().encode(None);
        for len in 0..bytes.len() {
            assert!(
                Envelope::decode(&bytes[..len]).is_err(),
                "accepted a value cut at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Envelope::decode(&longer), Err(Unusable::Corrupt));
        assert_eq!(
            Envelope::decode(b"{\"name\":\"not ours\"}"),
            Err(Unusable::NotOurs)
        );
        let mut future = bytes.clone();
        future[2] = 99;
        assert_eq!(Envelope::decode(&future), Err(Unusable::UnknownVersion));
        let mut unknown_flag = bytes;
        unknown_flag[4] |= 0x80;
        let body = unknown_flag.len() - CHECKSUM_LEN;
        let checksum = xxh3_64(&unknown_flag[..body]).to_le_bytes();
        unknown_flag[body..].copy_from_slice(&checksum);
        assert_eq!(
            Envelope::decode(&unknown_flag),
            Err(Unusable::UnknownVersion)
        );
    }

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Property: any mutation of a sound envelope (bytes flipped, inserted, removed,
    /// cut) and any random bytes decode to an error, never to a value, never a panic.
    #[test]
    fn mutated_and_random_envelopes_are_rejected() {
        let mut rng = Rng(0x5eed_cafe);
        let sound = sample().encode(None);
        for round in 0..20_000 {
            let mut bytes = sound.clone();
            for _ in 0..1 + rng.below(3) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes.insert(at, rng.next() as u8),
                    2 if bytes.len() > 1 => drop(bytes.remove(at)),
                    _ => bytes.truncate(at),
                }
            }
            if bytes != sound {
                assert!(
                    Envelope::decode(&bytes).is_err(),
                    "round {round}: a mutated envelope decoded: {bytes:?}"
                );
            }
            let random: Vec<u8> = (0..rng.below(120)).map(|_| rng.next() as u8).collect();
            let mut ours = b"SC\x04".to_vec();
            ours.extend_from_slice(&random);
            for candidate in [&random, &ours] {
                assert!(Envelope::decode(candidate).is_err(), "random bytes decoded");
            }
        }
    }
}
