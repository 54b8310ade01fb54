//! The commands that change what the fleet serves: an entry, a tag, a cache,
//! everything. Each goes through the runtime itself (the counter, then the message,
//! as the macros do), and answers with the counter's version once Redis has taken it.
//!
//! Each reaches the servers first ([`nodes::servers`]), so that one that is not there
//! fails at once (the runtime would queue the invalidation and wait out the 5 s), and
//! to learn whether one node's URL names a cluster, which the runtime is told rather
//! than left to meet `MOVED` answers as a misdirected standalone server.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};
use stratacache_runtime::inspect;

use crate::nodes::{self, Node};
use crate::Options;

/// `invalidate CACHE KEY_JSON`: as `invalidate!` of the call with that key, once the
/// entry is found in Redis (`entry` finds it the same way).
pub(crate) fn entry(options: &Options, cache: &str, key_json: &str) -> Result<Value, String> {
    let (mut nodes, cluster) = nodes::servers(options)?;
    let found = crate::entry::locate(&mut nodes, options, cache, key_json)?;
    let counter = inspect::entry_changes_key(&options.namespace, cache);
    let redis_key = found.redis_key.clone();
    let version = through_runtime(options, (nodes, cluster), &counter, || {
        inspect::invalidate_entry(cache, found.key_bytes, found.redis_key)
    })?;
    Ok(json!({ "invalidated": cache, "redis_key": redis_key, "version": version }))
}

/// `invalidate-tag TAG`: as `invalidate_tag!`.
pub(crate) fn tag(options: &Options, tag: &str) -> Result<Value, String> {
    let counter = inspect::tag_key(&options.namespace, tag);
    let servers = nodes::servers(options)?;
    let version = through_runtime(options, servers, &counter, || {
        stratacache_runtime::invalidate_tag(tag)
    })?;
    Ok(json!({ "invalidated": tag, "version": version }))
}

/// `clear CACHE`: as `clear!` of the function whose cache is called `cache`.
pub(crate) fn cache(options: &Options, cache: &str) -> Result<Value, String> {
    let counter = inspect::cache_tag_key(&options.namespace, cache);
    let servers = nodes::servers(options)?;
    let version = through_runtime(options, servers, &counter, || inspect::clear_cache(cache))?;
    Ok(json!({ "cleared": cache, "version": version }))
}

/// `clear-all`: as `stratacache::clear_all()`.
pub(crate) fn all(options: &Options) -> Result<Value, String> {
    let counter = inspect::global_tag_key(&options.namespace);
    let servers = nodes::servers(options)?;
    let version = through_runtime(options, servers, &counter, stratacache_runtime::clear_all)?;
    Ok(json!({ "cleared": "everything", "version": version }))
}

/// Starts `invalidation` in a runtime set up as the options say (only then: it reaches
/// Redis as it starts, and before `init` there is none to reach), waits (up to 5 s)
/// until Redis took it, since one left in the outbox of a process about to exit
/// would be lost, and reads the counter it moved.
fn through_runtime<F>(
    options: &Options,
    (mut nodes, cluster): (Vec<Node>, bool),
    counter: &str,
    invalidation: impl FnOnce() -> F,
) -> Result<Option<u64>, String>
where
    F: Future<Output = Result<(), stratacache_runtime::Error>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut config = stratacache_runtime::Config::new()
            .redis_url(&options.redis)
            .namespace(&options.namespace);
        config.cluster = cluster;
        if let Some(secret) = &options.secret {
            config = config.secret(secret.clone());
        }
        if let Some(pem) = &options.root_cert {
            config = config.tls_root_cert(pem.clone());
        }
        stratacache_runtime::init(config).map_err(|e| e.to_string())?;
        invalidation().await.map_err(|e| e.to_string())?;
        let flushed = stratacache_runtime::flush_invalidations();
        if tokio::time::timeout(Duration::from_secs(5), flushed)
            .await
            .is_err()
        {
            return Err(format!(
                "Redis did not take the invalidation ({counter}) within 5 s"
            ));
        }
        nodes::get_anywhere(&mut nodes, counter)
    })
}
