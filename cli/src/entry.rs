//! `entry CACHE KEY_JSON`: one entry, decoded. Which Redis keys a command-line key
//! may stand for is `key.rs`'s; the entry is found among the cache's keys in one
//! `SCAN`, whatever the number of candidates.

use std::collections::HashMap;

use serde_json::{json, Value};
use stratacache_runtime::inspect::{self, Signature};

use crate::key::Json;
use crate::nodes::{get_anywhere, nodes, Node};
use crate::scan::entry_parts;
use crate::Options;

pub(crate) fn show(options: &Options, cache: &str, key_json: &str) -> Result<Value, String> {
    let mut nodes = nodes(options)?;
    let found = locate(&mut nodes, options, cache, key_json)?;
    describe(&mut nodes, &found.redis_key, &found.stored, options)
}

/// An entry found in Redis, and the key bytes (of the candidates) it is stored under.
pub(crate) struct Found {
    pub(crate) redis_key: String,
    pub(crate) key_bytes: Vec<u8>,
    stored: Vec<u8>,
}

pub(crate) fn locate(
    nodes: &mut [Node],
    options: &Options,
    cache: &str,
    key_json: &str,
) -> Result<Found, String> {
    let key = Json::parse(key_json)?;
    let ns = &options.namespace;
    let hash_of = |bytes: &[u8]| {
        let hashed = inspect::entry_key(ns, cache, 0, bytes);
        hashed.rsplit_once(':').map_or("", |(_, h)| h).to_owned()
    };
    let candidates: HashMap<String, Vec<u8>> = key
        .candidates()
        .into_iter()
        .map(|bytes| (hash_of(&bytes), bytes))
        .collect();
    for node in nodes.iter_mut() {
        if let Some((redis_key, stored, hash)) = find(node, ns, cache, &candidates)? {
            let key_bytes = candidates[&hash].clone();
            return Ok(Found {
                redis_key,
                key_bytes,
                stored,
            });
        }
    }
    Err(format!(
        "no entry of {cache} for key {key_json} in namespace {ns}"
    ))
}

/// The entry of `cache` on `node` whose key's hash is one of `candidates`', in one
/// `SCAN`: its Redis key, what it holds, and the hash.
fn find(
    node: &mut Node,
    ns: &str,
    cache: &str,
    candidates: &HashMap<String, Vec<u8>>,
) -> Result<Option<(String, Vec<u8>, String)>, String> {
    let connection = &mut node.connection;
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{ns}:{cache}:v*:*"))
            .arg("COUNT")
            .arg(1_000)
            .query(connection)
            .map_err(|e| e.to_string())?;
        for redis_key in batch {
            let hash = redis_key.rsplit_once(':').map_or("", |(_, h)| h);
            let ours = entry_parts(ns, &redis_key).is_some_and(|(c, _)| c == cache);
            if !ours || !candidates.contains_key(hash) {
                continue;
            }
            let stored: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&redis_key)
                .query(connection)
                .map_err(|e| e.to_string())?;
            if let Some(stored) = stored {
                let hash = hash.to_owned();
                return Ok(Some((redis_key, stored, hash)));
            }
        }
        if next == 0 {
            return Ok(None);
        }
        cursor = next;
    }
}

fn describe(
    nodes: &mut [Node],
    redis_key: &str,
    stored: &[u8],
    options: &Options,
) -> Result<Value, String> {
    let view = inspect::decode_entry(stored, options.secret.as_deref())?;
    let now = crate::unix_ms_now();
    let time = |ms: u64| {
        if ms == u64::MAX {
            return json!("never");
        }
        json!({ "unix_ms": ms, "from_now_ms": ms as i64 - now as i64 })
    };
    let mut tags = Vec::new();
    for (counter, recorded) in &view.tags {
        let current: Option<u64> = get_anywhere(nodes, counter)?;
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
