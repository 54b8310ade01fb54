//! `entry CACHE KEY_JSON`: one entry, decoded.
//!
//! The Redis key is the xxh3 of the key's postcard bytes, and postcard needs the
//! key's type, which a command line does not have. The JSON key is encoded as
//! postcard encodes the natural types: a non-negative number as an unsigned varint
//! (any of `u8`..`u64`: postcard encodes them alike) and, failing that, as a zigzag
//! signed one (`i32`, `i64`); a string as `String`; a bool; `null` as `None`; an
//! array as a tuple of its elements (multi-argument functions). Candidates are
//! tried in turn.

use serde_json::{json, Value};
use stratacache_runtime::inspect::{self, Signature};

use crate::scan::{entry_parts, scan};
use crate::{connect, Options};

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Every postcard encoding the JSON key may stand for, most likely first.
fn candidates(key: &Value) -> Vec<Vec<u8>> {
    match key {
        Value::Bool(b) => vec![vec![u8::from(*b)]],
        Value::Null => vec![vec![0]],
        Value::String(s) => {
            let mut out = Vec::new();
            varint(s.len() as u64, &mut out);
            out.extend_from_slice(s.as_bytes());
            vec![out]
        }
        Value::Number(n) => {
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
        Value::Array(parts) => parts.iter().fold(vec![Vec::new()], |prefixes, part| {
            prefixes
                .iter()
                .flat_map(|prefix| {
                    candidates(part)
                        .into_iter()
                        .map(move |c| [prefix.clone(), c].concat())
                })
                .collect()
        }),
        Value::Object(_) => Vec::new(),
    }
}

pub(crate) fn show(options: &Options, cache: &str, key_json: &str) -> Result<Value, String> {
    let key: Value =
        serde_json::from_str(key_json).map_err(|e| format!("KEY_JSON is not JSON: {e}"))?;
    let mut connection = connect(options)?;
    let ns = &options.namespace;
    for bytes in candidates(&key) {
        let hashed = inspect::entry_key(ns, cache, 0, &bytes);
        let hash = hashed.rsplit_once(':').map_or("", |(_, h)| h).to_owned();
        for redis_key in scan(&mut connection, &format!("{ns}:{cache}:v*:{hash}"))? {
            if entry_parts(ns, &redis_key).is_none_or(|(c, _)| c != cache) {
                continue;
            }
            let stored: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&redis_key)
                .query(&mut connection)
                .map_err(|e| e.to_string())?;
            let Some(stored) = stored else { continue };
            return describe(&mut connection, &redis_key, &stored, options);
        }
    }
    Err(format!(
        "no entry of {cache} for key {key_json} in namespace {ns}"
    ))
}

fn describe(
    connection: &mut redis::Connection,
    redis_key: &str,
    stored: &[u8],
    options: &Options,
) -> Result<Value, String> {
    let view = inspect::decode_entry(stored, options.secret.as_deref())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let time = |ms: u64| {
        if ms == u64::MAX {
            return json!("never");
        }
        json!({ "unix_ms": ms, "from_now_ms": ms as i64 - now as i64 })
    };
    let mut tags = Vec::new();
    for (counter, recorded) in &view.tags {
        let current: Option<u64> = redis::cmd("GET")
            .arg(counter)
            .query(connection)
            .map_err(|e| e.to_string())?;
        let current = current.unwrap_or(0);
        tags.push(json!({ "counter": counter, "recorded": recorded, "current": current, "valid": *recorded == current }));
    }
    let payload = match &view.payload {
        Err(why) => json!({ "unreadable": why }),
        Ok(bytes) if view.format == "json" => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| json!({ "json_bytes": String::from_utf8_lossy(bytes) })),
        Ok(bytes) => json!({
            "postcard_bytes": bytes.len(),
            "text": String::from_utf8_lossy(bytes).chars().filter(|c| !c.is_control()).collect::<String>(),
        }),
    };
    let signature = match view.signature {
        Signature::Unsigned => json!("unsigned"),
        Signature::Unchecked => json!("signed; give --secret to check it"),
        Signature::Valid(index) => json!(format!("valid (secret #{})", index + 1)),
        Signature::Invalid => json!("INVALID: not signed by any secret given"),
        _ => json!("unknown"),
    };
    Ok(json!({
        "redis_key": redis_key,
        "bytes": stored.len(),
        "format": view.format,
        "compressed": view.compressed,
        "encrypted": view.encrypted,
        "signature": signature,
        "fingerprint": format!("{:016x}", view.fingerprint),
        "created": time(view.created_ms),
        "fresh_until": time(view.fresh_until_ms),
        "stale_until": time(view.stale_until_ms),
        "keep_until": time(view.keep_until_ms),
        "tags": tags,
        "payload": payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_encode_as_postcard_does() {
        assert_eq!(candidates(&json!(7)), vec![vec![7], vec![14]]);
        assert_eq!(
            candidates(&json!(300)),
            vec![vec![0xac, 0x02], vec![0xd8, 0x04]]
        );
        assert_eq!(candidates(&json!(-1)), vec![vec![1]]);
        assert_eq!(candidates(&json!("ab")), vec![vec![2, b'a', b'b']]);
        assert_eq!(
            candidates(&json!([1, "a"])),
            vec![vec![1, 1, b'a'], vec![2, 1, b'a']]
        );
    }
}
