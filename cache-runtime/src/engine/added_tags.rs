//! Tags a loader adds (`this_load::add_tag`): stamped when its value lands in L1,
//! checked again before the value is written to Redis.
//!
//! A call's own tags are stamped before its loader runs, so an invalidation that
//! races the load always wins. An added tag is only known once the loader returns,
//! and its Redis counter is read later still, by the write-back (which a batch runs
//! in the background). Written under the counter read then, a value loaded before an
//! invalidation of the tag would enter Redis under the version after it, and every
//! process would serve it until its ttl. So the write-back first checks the stamps
//! taken at landing: if an invalidation of an added tag has reached this process
//! since (its own are applied here before they reach Redis; others are seen in the
//! counters read now), the value is not written.

use super::{Cache, CacheKey, CacheValue};
use crate::l2::{keys, L2};
use crate::tags::{self, Stamps, TagStamp};

/// The tags one load's loader added, with the versions they had when its value
/// landed in L1.
#[derive(Default)]
pub(super) struct AddedTags {
    names: Vec<String>,
    stamps: Vec<TagStamp>,
}

impl AddedTags {
    /// Stamps `names` now, as the loaded value lands.
    pub(super) fn stamp(names: Vec<String>) -> Self {
        let stamps = names
            .iter()
            .map(|tag| TagStamp::new(tags::intern(tag)))
            .collect();
        Self { names, stamps }
    }

    /// `stamps` and a stamp for each added tag, to keep the value under in L1.
    pub(super) fn with(&self, stamps: &Stamps) -> Stamps {
        if self.stamps.is_empty() {
            return stamps.clone();
        }
        stamps.iter().chain(&self.stamps).cloned().collect()
    }
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// The counters and current versions of the added tags, to write the value under;
    /// `None` when it must not be written: Redis failed (counted), or an added tag was
    /// invalidated since the value landed.
    pub(super) async fn added_tag_versions(
        &self,
        l2: &L2,
        added: &AddedTags,
    ) -> Option<Vec<(String, u64)>> {
        if added.names.is_empty() {
            return Some(Vec::new());
        }
        let keys: Vec<String> = added
            .names
            .iter()
            .map(|tag| keys::tag(&l2.namespace, tag))
            .collect();
        let versions = match l2.settled_versions(&keys).await {
            Ok(versions) => versions,
            Err(fault) => {
                self.fault(&fault);
                return None;
            }
        };
        for (stamp, version) in added.stamps.iter().zip(&versions) {
            // A counter past the last version this process knew: an invalidation it
            // was not told of yet. This bumps the local epoch, failing the check below.
            stamp.cell().observe_remote(*version);
        }
        if !tags::all_current(&added.stamps) {
            tracing::debug!(cache = %self.name, "stratacache: a tag the loader added was invalidated after the load; its value is not written to Redis");
            return None;
        }
        Some(keys.into_iter().zip(versions).collect())
    }
}
