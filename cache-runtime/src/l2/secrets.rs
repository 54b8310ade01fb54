//! The fleet's shared secrets: each signs (HMAC-SHA256) and encrypts
//! (XChaCha20-Poly1305) with its own pair of keys derived by HKDF-SHA256, so the
//! secret itself never keys a primitive and the two uses never share a key.
//!
//! The first secret of the list signs and encrypts; every secret verifies and
//! decrypts. Rotation is therefore three deploys: add the new secret second
//! (everyone can read it), move it first (everyone writes with it), drop the old.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) const MAC_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Fixed salt: the secrets are already high-entropy strings chosen by the operator;
/// the salt only separates stratacache's derivations from any other use of them.
const SALT: &[u8] = b"stratacache/secrets/v1";

struct Derived {
    mac: [u8; 32],
    cipher: XChaCha20Poly1305,
}

/// The parsed `Config::secret` list, in order.
pub(crate) struct Secrets {
    keys: Vec<Derived>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} keys, redacted)", self.keys.len())
    }
}

impl Secrets {
    /// A comma-separated list; blanks around the commas are ignored. `None` if it
    /// names no secret.
    pub(crate) fn parse(list: &str) -> Option<Self> {
        let keys: Vec<Derived> = list
            .split(',')
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .map(derive)
            .collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// The MAC of `parts`, concatenated, under the signing (first) secret.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        mac_of(&self.keys[0].mac, parts)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Which secret signed `parts` with `tag`, if any; compared in constant time.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Option<usize> {
        self.keys
            .iter()
            .position(|key| mac_of(&key.mac, parts).verify_slice(tag).is_ok())
    }

    /// `nonce | ciphertext and tag`, under the first secret, bound to `context`
    /// (the entry's key), so a ciphertext moved to another key does not open.
    pub(crate) fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).ok()?;
        let sealed = self.keys[0]
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Opens what [`Secrets::encrypt`] sealed, with the secret at `index`.
    pub(crate) fn decrypt(&self, index: usize, sealed: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.keys
            .get(index)?
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .ok()
    }
}

fn derive(secret: &str) -> Derived {
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), secret.as_bytes());
    let mut mac = [0u8; 32];
    let mut cipher = [0u8; 32];
    hkdf.expand(b"mac", &mut mac)
        .expect("32 bytes is a valid HKDF output");
    hkdf.expand(b"encryption", &mut cipher)
        .expect("32 bytes is a valid HKDF output");
    Derived {
        mac,
        cipher: XChaCha20Poly1305::new(&cipher.into()),
    }
}

fn mac_of(key: &[u8; 32], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_secret_signs_and_every_secret_verifies() {
        let old = Secrets::parse("k1").unwrap();
        let rotating = Secrets::parse(" k2 , k1 ").unwrap();
        let tag = old.sign(&[b"head", b"payload"]);
        assert_eq!(rotating.verify(&[b"head", b"payload"], &tag), Some(1));
        assert_eq!(rotating.verify(&[b"head", b"payloae"], &tag), None);
        assert_eq!(
            old.verify(&[b"headpayload"], &tag),
            Some(0),
            "parts concatenate"
        );
        let new_tag = rotating.sign(&[b"x"]);
        assert_eq!(
            old.verify(&[b"x"], &new_tag),
            None,
            "k2 is unknown to k1 alone"
        );
        assert!(Secrets::parse(" , ").is_none());
    }

    #[test]
    fn ciphertexts_open_only_under_their_secret_and_key() {
        let secrets = Secrets::parse("k2,k1").unwrap();
        let sealed = Secrets::parse("k1")
            .unwrap()
            .encrypt(b"alice", b"key:1")
            .unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        assert_eq!(
            secrets.decrypt(1, &sealed, b"key:1").as_deref(),
            Some(&b"alice"[..])
        );
        assert_eq!(secrets.decrypt(0, &sealed, b"key:1"), None);
        assert_eq!(
            secrets.decrypt(1, &sealed, b"key:2"),
            None,
            "bound to its key"
        );
        assert_eq!(secrets.decrypt(1, &sealed[..10], b"key:1"), None);
    }
}
