//! The namespace as a whole: `inspect` and `tags`.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use stratacache_runtime::inspect::{held, Held, HEAD_LEN};

use crate::nodes::{get_anywhere, nodes};
use crate::Options;

/// Every key matching `pattern`, by `SCAN` (never `KEYS`: it blocks the server).
pub(crate) fn scan(
    connection: &mut redis::Connection,
    pattern: &str,
) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query(connection)
            .map_err(|e| e.to_string())?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// `{ns}:{cache}:v{version}:{32 hex}`, parsed from the right: cache names may hold
/// colons (`app::Repo::get`).
pub(crate) fn entry_parts<'a>(namespace: &str, key: &'a str) -> Option<(&'a str, u32)> {
    let rest = key.strip_prefix(namespace)?.strip_prefix(':')?;
    let (rest, hash) = rest.rsplit_once(':')?;
    let (cache, version) = rest.rsplit_once(':')?;
    let version = version.strip_prefix('v')?.parse().ok()?;
    (hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some((cache, version))
}

/// Each cache's entry keys: how many, their bytes, and what they hold.
#[derive(Default)]
struct Totals {
    keys: u64,
    bytes: u64,
    live: u64,
    ended: u64,
    tombstones: u64,
}

impl Totals {
    fn count(&mut self, bytes: u64, held: Held) {
        self.keys += 1;
        self.bytes += bytes;
        match held {
            Held::Live => self.live += 1,
            Held::Ended => self.ended += 1,
            Held::Tombstone => self.tombstones += 1,
            _ => {}
        }
    }
}

pub(crate) fn inspect(options: &Options) -> Result<Value, String> {
    let ns = &options.namespace;
    let now = crate::unix_ms_now();
    let mut caches: BTreeMap<(String, u32), Totals> = BTreeMap::new();
    let (mut other, mut tag_counters) = (0, 0);
    for mut node in nodes(options)? {
        let connection = &mut node.connection;
        for key in scan(connection, &format!("{ns}:*"))? {
            if key.starts_with(&format!("{ns}:tag:")) {
                tag_counters += 1;
                continue;
            }
            if key.starts_with(&format!("{ns}:cache-tag:")) {
                continue;
            }
            let Some((cache, version)) = entry_parts(ns, &key) else {
                other += 1;
                continue;
            };
            let (bytes, head): (Option<u64>, Vec<u8>) = redis::pipe()
                .cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .cmd("GETRANGE")
                .arg(&key)
                .arg(0)
                .arg(HEAD_LEN - 1)
                .query(connection)
                .map_err(|e| e.to_string())?;
            caches
                .entry((cache.to_owned(), version))
                .or_default()
                .count(bytes.unwrap_or(0), held(&head, now));
        }
    }
    let caches: Vec<Value> = caches
        .into_iter()
        .map(|((cache, version), totals)| {
            json!({
                "cache": cache,
                "version": version,
                "entries": totals.keys,
                "live": totals.live,
                "ended": totals.ended,
                "tombstones": totals.tombstones,
                "bytes": totals.bytes,
            })
        })
        .collect();
    Ok(json!({
        "namespace": ns,
        "caches": caches,
        "tag_counters": tag_counters,
        "other_keys": other,
    }))
}

pub(crate) fn tags(options: &Options, pattern: &str) -> Result<Value, String> {
    let prefix = format!("{}:tag:", options.namespace);
    let mut nodes = nodes(options)?;
    let mut found = BTreeMap::new();
    for index in 0..nodes.len() {
        for key in scan(&mut nodes[index].connection, &format!("{prefix}{pattern}"))? {
            let version: Option<u64> = get_anywhere(&mut nodes[index..=index], &key)?;
            found.insert(key[prefix.len()..].to_owned(), version);
        }
    }
    Ok(json!({ "tags": found }))
}

#[cfg(test)]
mod tests {
    use super::entry_parts;

    #[test]
    fn entry_keys_parse_from_the_right() {
        let hash = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            entry_parts("ns", &format!("ns:users.get:v0:{hash}")),
            Some(("users.get", 0))
        );
        assert_eq!(
            entry_parts("ns", &format!("ns:app::Repo::get:v12:{hash}")),
            Some(("app::Repo::get", 12))
        );
        assert_eq!(entry_parts("ns", "ns:tag:user:7"), None);
        assert_eq!(
            entry_parts("ns", &format!("other:users.get:v0:{hash}")),
            None
        );
    }
}
