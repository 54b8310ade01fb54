//! How a payload is stored in Redis beyond its serialization: compressed (snappy) above a
//! threshold, encrypted when asked, and the envelope signed whenever this process
//! holds a secret. One type, [`Protection`], owns the process's settings; a cache
//! may override compression and encryption ([`PerCache`]).

use std::borrow::Cow;

use super::envelope::{Decoded, Flags};
use super::secrets::Secrets;

/// The process-wide settings, from `Config`.
#[derive(Debug, Default)]
pub(crate) struct Protection {
    pub(crate) secrets: Option<Secrets>,
    /// Encrypt every cache's payloads unless the cache says otherwise.
    pub(crate) encrypt: bool,
    /// Compress payloads of at least this many bytes; `None` never.
    pub(crate) compress_above: Option<usize>,
}

/// A cache's overrides (`#[cached(compress = .., encrypt = ..)]`); `None` follows
/// the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PerCache {
    pub(crate) compress: Option<bool>,
    pub(crate) encrypt: Option<bool>,
}

/// Below this many bytes compression costs more than it saves.
pub(crate) const DEFAULT_COMPRESS_ABOVE: usize = 1024;

/// Why a payload cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwritable {
    /// Encryption is asked for, and this process has no secret to encrypt with.
    NoSecretToEncrypt,
    /// The AEAD or the random source failed.
    EncryptionFailed,
}

/// Why a payload read from Redis is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// This process holds a secret and the envelope is unsigned or signed by none
    /// of its secrets (forged, tampered or foreign).
    NotAuthentic,
    /// Encrypted, and this process cannot decrypt it.
    CannotDecrypt,
    /// Compressed data that does not decompress, or would exceed `max_payload`.
    BadCompression,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::NotAuthentic => "not signed by any configured secret",
            Refused::CannotDecrypt => "encrypted, and no configured secret decrypts it",
            Refused::BadCompression => "compressed payload does not decompress within max_payload",
        })
    }
}

impl Protection {
    /// The secrets that sign what this process writes.
    pub(crate) fn signer(&self) -> Option<&Secrets> {
        self.secrets.as_ref()
    }

    fn compress_above(&self, cache: PerCache) -> Option<usize> {
        match cache.compress {
            Some(false) => None,
            Some(true) => Some(self.compress_above.unwrap_or(DEFAULT_COMPRESS_ABOVE)),
            None => self.compress_above,
        }
    }

    /// The payload as stored, and the flags that say how. `context` is the entry's
    /// key bytes, which an encrypted payload is bound to.
    pub(crate) fn protect(
        &self,
        payload: Vec<u8>,
        cache: PerCache,
        context: &[u8],
    ) -> Result<(Vec<u8>, Flags), Unwritable> {
        let mut flags = Flags::default();
        let mut stored = payload;
        if self
            .compress_above(cache)
            .is_some_and(|above| stored.len() >= above)
        {
            let compressed = compress(&stored);
            // Incompressible data (already compressed media, random tokens) is
            // stored as is rather than grown.
            if compressed.len() < stored.len() {
                stored = compressed;
                flags = flags.with(Flags::COMPRESSED);
            }
        }
        if cache.encrypt.unwrap_or(self.encrypt) {
            let secrets = self.secrets.as_ref().ok_or(Unwritable::NoSecretToEncrypt)?;
            stored = secrets
                .encrypt(&stored, context)
                .ok_or(Unwritable::EncryptionFailed)?;
            flags = flags.with(Flags::ENCRYPTED);
        }
        Ok((stored, flags))
    }

    /// Checks the envelope's signature: with secrets, it must be signed by one of
    /// them (which one is returned); without, anything passes (the checksum has
    /// already caught accidents).
    pub(crate) fn authenticate(&self, decoded: &Decoded<'_>) -> Result<Option<usize>, Refused> {
        match &self.secrets {
            None => Ok(None),
            Some(secrets) => decoded
                .signer(secrets)
                .map(Some)
                .ok_or(Refused::NotAuthentic),
        }
    }

    /// The serialized value inside an authenticated envelope: decrypted, then
    /// decompressed, never to more than `max_len` bytes.
    pub(crate) fn reveal<'a>(
        &self,
        decoded: &Decoded<'a>,
        signer: Option<usize>,
        max_len: usize,
    ) -> Result<Cow<'a, [u8]>, Refused> {
        let envelope = &decoded.envelope;
        let mut payload = Cow::Borrowed(envelope.payload);
        if envelope.flags.contains(Flags::ENCRYPTED) {
            let (Some(secrets), Some(signer)) = (&self.secrets, signer) else {
                return Err(Refused::CannotDecrypt);
            };
            payload = Cow::Owned(
                secrets
                    .decrypt(signer, &payload, envelope.key)
                    .ok_or(Refused::CannotDecrypt)?,
            );
        }
        if envelope.flags.contains(Flags::COMPRESSED) {
            payload = Cow::Owned(decompress(&payload, max_len)?);
        }
        Ok(payload)
    }
}

/// Snappy's raw format, chosen by measurement (`benches/protection.rs`): the fastest
/// of lz4_flex, snap and zstd at 1 KiB to 1 MiB, for about a tenth more bytes than
/// lz4. Its output starts with the uncompressed length.
fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_else(|_| raw.to_vec())
}

/// The stated size is checked before anything is allocated, so a hostile
/// "decompression bomb" costs nothing.
fn decompress(stored: &[u8], max_len: usize) -> Result<Vec<u8>, Refused> {
    let size = snap::raw::decompress_len(stored).map_err(|_| Refused::BadCompression)?;
    if size > max_len {
        return Err(Refused::BadCompression);
    }
    snap::raw::Decoder::new()
        .decompress_vec(stored)
        .map_err(|_| Refused::BadCompression)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::codec::PayloadFormat;
    use crate::l2::envelope::Envelope;

    fn stored(protection: &Protection, payload: &[u8], cache: PerCache) -> Vec<u8> {
        let (payload, flags) = protection.protect(payload.to_vec(), cache, b"key").unwrap();
        Envelope {
            format: PayloadFormat::Postcard,
            flags,
            fingerprint: 1,
            created_ms: 0,
            fresh_until_ms: 0,
            stale_until_ms: 0,
            keep_until_ms: 0,
            key: b"key",
            tags: Vec::new(),
            payload: &payload,
        }
        .encode(protection.signer())
    }

    fn read(protection: &Protection, bytes: &[u8]) -> Result<Vec<u8>, Refused> {
        let decoded = Envelope::decode(bytes).expect("sound");
        let signer = protection.authenticate(&decoded)?;
        Ok(protection.reveal(&decoded, signer, 1 << 20)?.into_owned())
    }

    fn with_secret(list: &str, encrypt: bool) -> Protection {
        Protection {
            secrets: Secrets::parse(list),
            encrypt,
            compress_above: Some(DEFAULT_COMPRESS_ABOVE),
        }
    }

    #[test]
    fn large_compressible_payloads_are_compressed_and_small_ones_are_not() {
        let protection = Protection {
            compress_above: Some(DEFAULT_COMPRESS_ABOVE),
            ..Protection::default()
        };
        let text = "alice@example.com private ".repeat(8_000).into_bytes();
        let big = stored(&protection, &text, PerCache::default());
        assert!(big.len() < text.len() / 5, "{} bytes", big.len());
        assert_eq!(read(&protection, &big).unwrap(), text);
        let off = PerCache {
            compress: Some(false),
            ..PerCache::default()
        };
        assert!(stored(&protection, &text, off).len() > text.len());
        let small = stored(&protection, b"short", PerCache::default());
        let decoded = Envelope::decode(&small).unwrap();
        assert!(!decoded.envelope.flags.contains(Flags::COMPRESSED));
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_allocating() {
        let zeros = compress(&vec![0u8; 1 << 20]);
        assert!(zeros.len() < 100_000, "{} bytes", zeros.len());
        assert_eq!(decompress(&zeros, 1 << 19), Err(Refused::BadCompression));
        assert_eq!(decompress(&zeros, 1 << 20).map(|d| d.len()), Ok(1 << 20));
        let cut = &zeros[..zeros.len() / 2];
        assert_eq!(decompress(cut, 1 << 20), Err(Refused::BadCompression));
        assert_eq!(
            decompress(&[0xff; 12], 1 << 20),
            Err(Refused::BadCompression)
        );
    }

    #[test]
    fn secrets_decide_what_is_read() {
        let k1 = with_secret("k1", false);
        let signed_k1 = stored(&k1, b"value", PerCache::default());
        let unsigned = stored(&Protection::default(), b"value", PerCache::default());
        let signed_k2 = stored(&with_secret("k2", false), b"value", PerCache::default());
        assert_eq!(read(&k1, &signed_k1).unwrap(), b"value");
        assert_eq!(read(&k1, &unsigned), Err(Refused::NotAuthentic));
        assert_eq!(read(&k1, &signed_k2), Err(Refused::NotAuthentic));
        assert_eq!(
            read(&with_secret("k2,k1", false), &signed_k1).unwrap(),
            b"value"
        );
        assert_eq!(
            read(&Protection::default(), &signed_k1).unwrap(),
            b"value",
            "a process without a secret cannot verify, and reads"
        );
    }

    #[test]
    fn encrypted_payloads_are_opaque_and_need_the_secret() {
        let encrypting = with_secret("k1", true);
        let text = "alice-3@example.com private ".repeat(100).into_bytes();
        let bytes = stored(&encrypting, &text, PerCache::default());
        assert!(!bytes.windows(13).any(|w| w == b"alice-3@examp"));
        assert_eq!(read(&encrypting, &bytes).unwrap(), text);
        assert_eq!(read(&with_secret("k2,k1", false), &bytes).unwrap(), text);
        assert_eq!(
            read(&Protection::default(), &bytes),
            Err(Refused::CannotDecrypt)
        );
        let plain = PerCache {
            encrypt: Some(false),
            ..PerCache::default()
        };
        assert!(stored(&encrypting, &text[..40], plain)
            .windows(13)
            .any(|w| w == b"alice-3@examp"));
        let no_secret = Protection::default();
        let asks = PerCache {
            encrypt: Some(true),
            ..PerCache::default()
        };
        assert_eq!(
            no_secret.protect(text, asks, b"key"),
            Err(Unwritable::NoSecretToEncrypt)
        );
    }
}
