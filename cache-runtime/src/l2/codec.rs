//! Serialization of keys and values for the shared tier. Generated code builds a
//! [`Codec`] only for caches that are not `local`, where the key and value types are
//! checked to be `Serialize + DeserializeOwned`; the engine holds it type-erased.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// How a value's payload is encoded in Redis. Readers accept both, whatever this
/// process writes, so a fleet can change format one process at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// postcard: compact and fast (the default).
    #[default]
    Postcard,
    /// JSON: readable in `redis-cli`, larger and slower.
    Json,
}

impl PayloadFormat {
    pub(crate) fn marker(self) -> u8 {
        match self {
            PayloadFormat::Postcard => 0,
            PayloadFormat::Json => 1,
        }
    }

    pub(crate) fn from_marker(marker: u8) -> Option<Self> {
        match marker {
            0 => Some(PayloadFormat::Postcard),
            1 => Some(PayloadFormat::Json),
            _ => None,
        }
    }
}

/// A key's serialized bytes: kept inline up to [`KeyBytes::INLINE`] bytes (integers,
/// short strings and small tuples), so most keys cost no allocation per Redis read.
#[derive(Clone)]
pub(crate) enum KeyBytes {
    Inline {
        len: u8,
        bytes: [u8; KeyBytes::INLINE],
    },
    Heap(Vec<u8>),
}

impl KeyBytes {
    const INLINE: usize = 32;

    fn postcard<K: Serialize>(key: &K) -> Option<Self> {
        let mut bytes = [0u8; Self::INLINE];
        match postcard::to_slice(key, &mut bytes) {
            Ok(used) => {
                let len = used.len() as u8;
                Some(KeyBytes::Inline { len, bytes })
            }
            Err(postcard::Error::SerializeBufferFull) => {
                postcard::to_allocvec(key).ok().map(KeyBytes::Heap)
            }
            Err(_) => None,
        }
    }
}

impl std::ops::Deref for KeyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            KeyBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            KeyBytes::Heap(bytes) => bytes,
        }
    }
}

/// Key and value (de)serialization for one cache.
pub struct Codec<K, V> {
    pub(crate) encode_key: fn(&K) -> Option<KeyBytes>,
    pub(crate) decode_key: fn(&[u8]) -> Option<K>,
    /// The payload and the format it is in (see [`encode_readable`]).
    pub(crate) encode_value: fn(&V, PayloadFormat) -> Option<Payload>,
    pub(crate) decode_value: fn(&[u8], PayloadFormat) -> Option<V>,
    /// Of the value type's serde shape: see `fingerprint.rs`.
    pub(crate) fingerprint: u64,
}

/// A value's serialized bytes, and the format they are in.
pub(crate) type Payload = (Vec<u8>, PayloadFormat);

/// The codec of a cache whose key and value are serde types. Keys are postcard
/// whatever the payload format, since their bytes are hashed into the Redis key
/// (JSON only for a key postcard would not tell apart: `encode_key`).
pub fn serde_codec<K, V>() -> Codec<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    let (fingerprint, traced) = super::fingerprint::schema_fingerprint::<V>();
    if traced == super::fingerprint::Traced::NameOnly {
        tracing::debug!(
            value = std::any::type_name::<V>(),
            "stratacache: the value type's serde shape cannot be traced; its fingerprint is its name (bump `version` when its shape changes)"
        );
    }
    // `encode_readable` writes its payloads as JSON, as every payload postcard would
    // not read back; the tracer only knows it in advance.
    if traced.needs_self_describing_format() {
        tracing::debug!(
            value = std::any::type_name::<V>(),
            "stratacache: the value type asks its input what it holds (`deserialize_any`), which postcard cannot answer; its values are written as JSON"
        );
    }
    Codec {
        fingerprint,
        encode_key: encode_key::<K>,
        decode_key: decode_key::<K>,
        encode_value: encode_readable,
        decode_value: |bytes, format| match format {
            PayloadFormat::Postcard => postcard::from_bytes(bytes).ok(),
            PayloadFormat::Json => serde_json::from_slice(bytes).ok(),
        },
    }
}

/// The first byte of a key written as JSON (see [`encode_key`]).
const JSON_KEY: u8 = 0xff;

/// A key's bytes, hashed into its Redis key and echoed in its entry and in
/// invalidation messages: postcard, unless postcard would not read the key back as
/// these same bytes. A key whose `Serialize` leaves a field out
/// (`skip_serializing_if`) is one: `{a: Some(3), b: None}` and `{a: None, b: Some(3)}`
/// would both be `[1, 3]`, one Redis entry for two keys. Such a key is [`JSON_KEY`]
/// and its JSON, which names its fields; `None` if JSON does not read it back either.
fn encode_key<K: Serialize + DeserializeOwned>(key: &K) -> Option<KeyBytes> {
    if let Some(bytes) = KeyBytes::postcard(key).filter(|bytes| reads_back::<K>(bytes)) {
        return Some(bytes);
    }
    let mut json = vec![JSON_KEY];
    serde_json::to_writer(&mut json, key).ok()?;
    serde_json::from_slice::<K>(&json[1..])
        .ok()
        .map(|_| KeyBytes::Heap(json))
}

/// Whether `bytes` decode, in full, to a key that encodes to them again.
fn reads_back<K: Serialize + DeserializeOwned>(bytes: &[u8]) -> bool {
    match postcard::take_from_bytes::<K>(bytes) {
        Ok((key, rest)) => {
            rest.is_empty() && KeyBytes::postcard(&key).is_some_and(|again| *again == *bytes)
        }
        Err(_) => false,
    }
}

/// The key that [`encode_key`] wrote as `bytes`.
fn decode_key<K: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<K> {
    match bytes.split_first() {
        Some((&JSON_KEY, json)) if !reads_back::<K>(bytes) => serde_json::from_slice(json).ok(),
        _ => postcard::from_bytes(bytes).ok(),
    }
}

/// A value's payload in `format`, or in JSON when postcard would not read it back;
/// `None` when neither would. postcard reads a struct's fields by position, so a
/// field that `#[serde(skip_serializing_if = "Option::is_none")]` leaves out shifts
/// every one after it, and so does any `Serialize` that writes what the type's
/// `Deserialize` does not expect: which values do depends on the value, not the type,
/// so each payload is decoded once before it is written (a decode per load written
/// to Redis, never on a hit).
fn encode_readable<V>(value: &V, format: PayloadFormat) -> Option<Payload>
where
    V: Serialize + DeserializeOwned,
{
    if format == PayloadFormat::Postcard {
        // postcard also refuses to write a sequence or map of unknown length.
        if let Ok(bytes) = postcard::to_allocvec(value) {
            if matches!(postcard::take_from_bytes::<V>(&bytes), Ok((_, rest)) if rest.is_empty()) {
                return Some((bytes, PayloadFormat::Postcard));
            }
        }
    }
    let bytes = serde_json::to_vec(value).ok()?;
    serde_json::from_slice::<V>(&bytes)
        .is_ok()
        .then_some((bytes, PayloadFormat::Json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Plain {
        id: u64,
        name: Option<String>,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Skipping {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        rank: u32,
    }

    /// Skips a field that nothing reads back as absent.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Unreadable {
        #[serde(skip_serializing_if = "String::is_empty")]
        name: String,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Filter {
        #[serde(skip_serializing_if = "Option::is_none")]
        city: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        age: Option<u8>,
    }

    #[test]
    fn keys_that_skip_fields_stay_apart_and_read_back() {
        let by_city = Filter {
            city: Some(3),
            age: None,
        };
        let by_age = Filter {
            city: None,
            age: Some(3),
        };
        assert_eq!(
            postcard::to_allocvec(&by_city).unwrap(),
            postcard::to_allocvec(&by_age).unwrap(),
            "postcard alone gives both the same bytes"
        );
        let (city_bytes, age_bytes) = (encode_key(&by_city).unwrap(), encode_key(&by_age).unwrap());
        assert_ne!(*city_bytes, *age_bytes);
        assert_eq!(decode_key::<Filter>(&city_bytes), Some(by_city));
        assert_eq!(decode_key::<Filter>(&age_bytes), Some(by_age));

        let both = Filter {
            city: Some(1),
            age: Some(2),
        };
        let bytes = encode_key(&both).unwrap();
        assert_eq!(
            *bytes,
            *postcard::to_allocvec(&both).unwrap(),
            "nothing skipped: postcard"
        );
        assert_eq!(decode_key::<Filter>(&bytes), Some(both));
        let plain = encode_key(&(7u64, String::from("ann"))).unwrap();
        assert_eq!(*plain, *postcard::to_allocvec(&(7u64, "ann")).unwrap());
    }

    #[test]
    fn a_payload_is_in_the_first_format_that_reads_it_back() {
        let plain = Plain { id: 7, name: None };
        let (_, format) = encode_readable(&plain, PayloadFormat::Postcard).unwrap();
        assert_eq!(format, PayloadFormat::Postcard);

        let named = Skipping {
            id: 7,
            name: Some("ann".into()),
            rank: 2,
        };
        let (_, format) = encode_readable(&named, PayloadFormat::Postcard).unwrap();
        assert_eq!(format, PayloadFormat::Postcard, "nothing skipped");
        let unnamed = Skipping {
            id: 7,
            name: None,
            rank: 2,
        };
        let (bytes, format) = encode_readable(&unnamed, PayloadFormat::Postcard).unwrap();
        assert_eq!(format, PayloadFormat::Json, "a field skipped");
        assert_eq!(serde_json::from_slice::<Skipping>(&bytes).unwrap(), unnamed);

        let configured = encode_readable(&plain, PayloadFormat::Json).unwrap().1;
        assert_eq!(configured, PayloadFormat::Json);
        let unreadable = Unreadable {
            name: String::new(),
        };
        assert!(encode_readable(&unreadable, PayloadFormat::Postcard).is_none());

        let (bytes, format) =
            encode_readable(&Unsized(vec![1, 2]), PayloadFormat::Postcard).unwrap();
        assert_eq!(format, PayloadFormat::Json, "postcard cannot write it");
        assert_eq!(
            serde_json::from_slice::<Vec<u8>>(&bytes).unwrap(),
            vec![1, 2]
        );
    }

    /// Serializes as a sequence of unknown length.
    #[derive(serde::Deserialize)]
    struct Unsized(Vec<u8>);

    impl serde::Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = serializer.serialize_seq(None)?;
            for byte in &self.0 {
                seq.serialize_element(byte)?;
            }
            seq.end()
        }
    }
}
