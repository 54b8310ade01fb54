//! The backplane's wire format: one invalidation per pub/sub message, naming the
//! sending process (so it can skip its own) and, for tags and caches, the version
//! the Redis counter reached (so each process applies one invalidation once).
//! Messages carry no values.
//!
//! A process holding a secret signs each message (`s`, the hex HMAC of the rest,
//! the separator, then the message) and ignores messages not signed by one of its
//! secrets, so whoever can publish on the channel cannot flush its L1. A replayed
//! signed message does nothing new: a versioned one applies once, an entry's
//! eviction only costs a reload.

use super::secrets::{Secrets, MAC_LEN};

const SEPARATOR: char = '\u{1f}';
const SIGNED: char = 's';

/// The message as published: signed under `secrets`' first secret, if any.
pub(crate) fn seal(message: String, secrets: Option<&Secrets>) -> String {
    let Some(secrets) = secrets else {
        return message;
    };
    let tag = secrets.sign(&[message.as_bytes()]);
    let mut sealed = String::with_capacity(2 + 2 * MAC_LEN + message.len());
    sealed.push(SIGNED);
    sealed.extend(tag.iter().map(|b| format!("{b:02x}")));
    sealed.push(SEPARATOR);
    sealed.push_str(&message);
    sealed
}

/// The message inside a published text. `Err` when this process holds secrets and
/// the text is not signed by one of them; without secrets, signed and unsigned
/// messages are both read.
pub(crate) fn open<'a>(text: &'a str, secrets: Option<&Secrets>) -> Result<&'a str, Unsigned> {
    let signed = text
        .strip_prefix(SIGNED)
        .and_then(|rest| rest.split_once(SEPARATOR));
    match (secrets, signed) {
        (None, None) => Ok(text),
        (None, Some((_, message))) => Ok(message),
        (Some(_), None) => Err(Unsigned),
        (Some(secrets), Some((hex, message))) => {
            let tag = decode_hex(hex).ok_or(Unsigned)?;
            secrets
                .verify(&[message.as_bytes()], &tag)
                .map(|_| message)
                .ok_or(Unsigned)
        }
    }
}

/// A message not signed by any of this process's secrets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsigned;

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// An invalidation, as published on the namespace's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A tag, with the version its Redis counter reached.
    Tag {
        tag: String,
        version: u64,
    },
    Cache {
        cache: String,
        version: u64,
    },
    All {
        version: u64,
    },
    /// An entry, with the version its cache's entry-change counter reached (0 from a
    /// process that predates the counter).
    Entry {
        cache: String,
        key: Vec<u8>,
        version: u64,
    },
}

impl Message {
    pub(crate) fn encode(&self, instance: u64) -> String {
        let s = SEPARATOR;
        match self {
            Message::Tag { tag, version } => format!("{instance:016x}{s}t{s}{version}{s}{tag}"),
            Message::Cache { cache, version } => {
                format!("{instance:016x}{s}c{s}{version}{s}{cache}")
            }
            Message::All { version } => format!("{instance:016x}{s}a{s}{version}"),
            Message::Entry {
                cache,
                key,
                version,
            } => {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                format!("{instance:016x}{s}E{s}{version}{s}{hex}{s}{cache}")
            }
        }
    }

    pub(crate) fn decode(text: &str) -> Option<(u64, Self)> {
        let mut parts = text.splitn(3, SEPARATOR);
        let instance = u64::from_str_radix(parts.next()?, 16).ok()?;
        let kind = parts.next()?;
        let rest = parts.next()?;
        let versioned = || {
            let (version, name) = rest.split_once(SEPARATOR)?;
            Some((version.parse::<u64>().ok()?, name.to_owned()))
        };
        let message = match kind {
            "t" => versioned().map(|(version, tag)| Message::Tag { tag, version })?,
            "c" => versioned().map(|(version, cache)| Message::Cache { cache, version })?,
            "a" => Message::All {
                version: rest.parse().ok()?,
            },
            "e" => {
                let (hex, cache) = rest.split_once(SEPARATOR)?;
                Message::Entry {
                    cache: cache.to_owned(),
                    key: decode_hex(hex)?,
                    version: 0,
                }
            }
            "E" => {
                let (version, rest) = rest.split_once(SEPARATOR)?;
                let (hex, cache) = rest.split_once(SEPARATOR)?;
                Message::Entry {
                    cache: cache.to_owned(),
                    key: decode_hex(hex)?,
                    version: version.parse().ok()?,
                }
            }
            _ => return None,
        };
        Some((instance, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Message::Tag {
                tag: "user:7|x".into(),
                version: 3,
            },
            Message::Cache {
                cache: "app::Repo::get".into(),
                version: 1,
            },
            Message::All { version: 9 },
            Message::Entry {
                cache: "users.get".into(),
                key: vec![0, 7, 255],
                version: 12,
            },
        ] {
            assert_eq!(Message::decode(&message.encode(42)), Some((42, message)));
        }
        assert_eq!(Message::decode("garbage"), None);
    }

    #[test]
    fn a_process_with_secrets_reads_only_messages_signed_by_one_of_them() {
        let k1 = Secrets::parse("k1").unwrap();
        let rotating = Secrets::parse("k2,k1").unwrap();
        let text = Message::All { version: 3 }.encode(5);
        let signed = seal(text.clone(), Some(&k1));
        assert_ne!(signed, text);
        assert_eq!(open(&signed, Some(&rotating)), Ok(text.as_str()));
        assert_eq!(open(&signed, None), Ok(text.as_str()), "no secret: read");
        assert_eq!(open(&text, None), Ok(text.as_str()));
        assert_eq!(open(&text, Some(&k1)), Err(Unsigned), "unsigned");
        let k2_only = Secrets::parse("k2").unwrap();
        assert_eq!(open(&signed, Some(&k2_only)), Err(Unsigned), "foreign");
        let tampered = signed.replace("\u{1f}a\u{1f}3", "\u{1f}a\u{1f}4");
        assert_ne!(tampered, signed);
        assert_eq!(open(&tampered, Some(&k1)), Err(Unsigned), "tampered");
        assert_eq!(open("s\u{1f}", Some(&k1)), Err(Unsigned));
    }

    /// Property: random and mutated messages never panic the parser; a mutated one
    /// either fails or parses to some message (they carry no values to corrupt).
    #[test]
    fn random_and_mutated_messages_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sound = Message::Entry {
            cache: "users.get".into(),
            key: vec![1, 2, 3],
            version: 4,
        }
        .encode(7);
        for _ in 0..20_000 {
            let mut bytes = sound.clone().into_bytes();
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
            bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize);
            let _ = Message::decode(&String::from_utf8_lossy(&bytes));
            let random: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = Message::decode(&String::from_utf8_lossy(&random));
        }
    }
}
