//! Where one key of one cache lives in Redis: its entry key and the counters of its
//! tags, named once per cache.

use std::sync::Arc;

use super::Entries;
use crate::l2::codec::KeyBytes;
use crate::l2::{keys, Fault, L2};
use crate::tags::TagName;

/// Where one key of one cache lives in Redis.
pub(crate) struct Target {
    pub(crate) l2: &'static L2,
    pub(crate) entry_key: String,
    pub(crate) key_bytes: KeyBytes,
    /// Counters of the global tag, the cache tag and the call's tags, in the order of
    /// the load's stamps (shared by every key of a cache called without tags).
    pub(crate) tag_keys: Arc<[String]>,
}

/// The Redis names every key of one cache uses, computed once (after `init`).
pub(crate) struct RedisNames {
    entry_prefix: String,
    implicit_tags: Arc<[String]>,
}

impl<K, V> Entries<'_, K, V> {
    /// Where `key`, called with `tags`, lives; `None` before `init`, or when the key
    /// does not serialize (counted and logged).
    pub(crate) fn target(&self, key: &K, tags: &[TagName]) -> Option<Target> {
        let l2 = crate::l2::active()?;
        let Some(key_bytes) = (self.shared.codec.encode_key)(key) else {
            self.complain("the key does not serialize");
            return None;
        };
        let names = self.shared.names.get_or_init(|| RedisNames {
            entry_prefix: keys::entry_prefix(
                &l2.namespace,
                self.cache,
                self.shared.settings.version,
            ),
            implicit_tags: [
                keys::global_tag(&l2.namespace),
                keys::cache_tag(&l2.namespace, self.cache),
            ]
            .into(),
        });
        let tag_keys = if tags.is_empty() {
            names.implicit_tags.clone()
        } else {
            let named = tags.iter().map(|tag| keys::tag(&l2.namespace, tag));
            names.implicit_tags.iter().cloned().chain(named).collect()
        };
        let entry_key = keys::entry_with_prefix(&names.entry_prefix, &key_bytes);
        Some(Target {
            l2,
            entry_key,
            key_bytes,
            tag_keys,
        })
    }
}

impl Target {
    /// The current versions of this entry's tags (implicit ones first), for a value
    /// written without a load (`put!`).
    pub(crate) async fn tag_versions(&self) -> Result<Vec<u64>, Fault> {
        self.l2.settled_versions(&self.tag_keys).await
    }
}
