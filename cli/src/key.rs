//! The Redis keys a command-line key may stand for.
//!
//! The Redis key is the xxh3 of the key's bytes: its postcard encoding, or, for a key
//! whose postcard bytes would not read back as themselves (a field left out by
//! `skip_serializing_if`), `0xff` and its JSON. Postcard needs the key's type, which a
//! command line does not have, so the JSON key is encoded as postcard encodes the
//! natural types: a non-negative number as an unsigned varint (any of `u8`..`u64`:
//! postcard encodes them alike) or a zigzag signed one (`i32`, `i64`); a string as
//! `String`; a bool; `null` as `None`; any value but `null` also as `Some` of it; an
//! array as a tuple of its elements (multi-argument functions) and an object as a
//! struct of its fields, in the order written. Every combination is a candidate.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value with its objects' fields in the order written: a struct key's
/// postcard encoding is its fields' in declaration order.
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// More combinations than this (a key of many numbers) are not tried.
const MOST_CANDIDATES: usize = 4_096;

impl Json {
    /// `text` parsed, or why not.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("KEY_JSON is not JSON: {e}"))
    }

    /// Every byte string the key may have been hashed from, most likely first.
    pub(crate) fn candidates(&self) -> Vec<Vec<u8>> {
        let mut found = self.postcard();
        found.truncate(MOST_CANDIDATES);
        found.push([&[0xff][..], self.compact().as_bytes()].concat());
        found
    }

    fn postcard(&self) -> Vec<Vec<u8>> {
        let bare = match self {
            Self::Null => return vec![vec![0]],
            Self::Bool(b) => vec![vec![u8::from(*b)]],
            Self::String(s) => {
                let mut out = Vec::new();
                varint(s.len() as u64, &mut out);
                out.extend_from_slice(s.as_bytes());
                vec![out]
            }
            Self::Number(n) => numbers(n),
            Self::Array(parts) => sequence(parts.iter()),
            Self::Object(fields) => sequence(fields.iter().map(|(_, value)| value)),
        };
        let some = bare.iter().map(|bytes| [&[1][..], bytes].concat());
        let mut all = bare.clone();
        all.extend(some);
        all
    }

    /// The key as `serde_json::to_vec` writes it: no whitespace, fields in order.
    fn compact(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => b.to_string(),
            Self::Number(n) => n.to_string(),
            Self::String(s) => serde_json::to_string(s).expect("a string"),
            Self::Array(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| p.compact()).collect();
                format!("[{}]", parts.join(","))
            }
            Self::Object(fields) => {
                let fields: Vec<String> = (fields.iter())
                    .map(|(name, value)| {
                        let name = serde_json::to_string(name).expect("a string");
                        format!("{name}:{}", value.compact())
                    })
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
        }
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn numbers(n: &serde_json::Number) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    if let Some(unsigned) = n.as_u64() {
        let mut out = Vec::new();
        varint(unsigned, &mut out);
        found.push(out);
    }
    if let Some(signed) = n.as_i64() {
        let mut out = Vec::new();
        varint(((signed << 1) ^ (signed >> 63)) as u64, &mut out);
        found.push(out);
    }
    found
}

/// A tuple's or a struct's encodings: its parts' concatenated, every combination.
fn sequence<'a>(parts: impl Iterator<Item = &'a Json>) -> Vec<Vec<u8>> {
    parts.fold(vec![Vec::new()], |prefixes, part| {
        let endings = part.postcard();
        let combined = prefixes.iter().flat_map(|prefix| {
            endings
                .iter()
                .map(move |ending| [prefix.as_slice(), ending].concat())
        });
        combined.take(MOST_CANDIDATES).collect()
    })
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut parts = Vec::new();
        while let Some(part) = seq.next_element()? {
            parts.push(part);
        }
        Ok(Json::Array(parts))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some(field) = map.next_entry()? {
            fields.push(field);
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::Json;

    fn candidates(key_json: &str) -> Vec<Vec<u8>> {
        Json::parse(key_json).expect("JSON").candidates()
    }

    #[derive(Serialize)]
    struct Region {
        name: String,
        zone: Option<u32>,
        shard: i64,
    }

    #[derive(Serialize)]
    struct Filter {
        #[serde(skip_serializing_if = "Option::is_none")]
        city: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        age: Option<u64>,
    }

    #[test]
    fn a_struct_key_is_its_fields_in_the_order_written() {
        let region = Region {
            name: "eu".into(),
            zone: Some(3),
            shard: -2,
        };
        let bytes = postcard::to_allocvec(&region).unwrap();
        let written = r#"{"name": "eu", "zone": 3, "shard": -2}"#;
        assert!(candidates(written).contains(&bytes));
        let reordered = r#"{"zone": 3, "name": "eu", "shard": -2}"#;
        assert!(!candidates(reordered).contains(&bytes));
    }

    #[test]
    fn a_key_written_as_json_is_found_by_its_json() {
        let filter = Filter {
            city: Some(3),
            age: None,
        };
        let bytes = [&[0xff][..], &serde_json::to_vec(&filter).unwrap()].concat();
        assert!(candidates(r#"{ "city" : 3 }"#).contains(&bytes));
    }

    #[test]
    fn numbers_strings_and_tuples_as_before() {
        for (json, bytes) in [
            ("7", postcard::to_allocvec(&7u64).unwrap()),
            ("-7", postcard::to_allocvec(&-7i64).unwrap()),
            ("7", postcard::to_allocvec(&Some(7u32)).unwrap()),
            (r#""ab""#, postcard::to_allocvec("ab").unwrap()),
            (
                r#"[1, "x", null]"#,
                postcard::to_allocvec(&(1u8, "x", None::<u8>)).unwrap(),
            ),
        ] {
            assert!(candidates(json).contains(&bytes), "{json}");
        }
    }
}
