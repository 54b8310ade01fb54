//! Writing entries to Redis: one value, or a batch's values (one command each, sent
//! together); and the tags a loader added (`this_load::add_tag`), stamped when its
//! value lands in L1, checked again before the value is written.
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

use std::time::Instant;

use super::target::Target;
use super::Entries;
use crate::l2::replace::Prior;
use crate::l2::{keys, L2};
use crate::tags::{self, Stamps, TagStamp};
use crate::times::Lifetime;

/// One encoded write of a batch: the entry's key, its envelope, its ttl, and what the
/// compare-and-set expects there.
type Encoded<'a> = (&'a str, Vec<u8>, Option<u64>, &'a Prior);

/// What a load's value is written to Redis under: the versions of its tags read
/// before the load, and what the entry's key held then, which is all the write may
/// replace (see [`replace`](crate::l2::replace)), until the read is older than the
/// [write-back window](L2::write_back_window).
pub(crate) struct WriteUnder {
    pub(crate) versions: Vec<u64>,
    pub(crate) prior: Prior,
    read_at: Instant,
}

impl WriteUnder {
    /// Made as the read before a load returns (a round trip after it began, which
    /// the window's half of a tombstone's life more than covers).
    pub(crate) fn after_read(versions: Vec<u64>, prior: Prior) -> Self {
        Self {
            versions,
            prior,
            read_at: Instant::now(),
        }
    }

    /// For `put!`: the caller's value is the newest, whatever Redis holds.
    pub(crate) fn newest(versions: Vec<u64>) -> Self {
        Self::after_read(versions, Prior::Anything)
    }

    /// False once a tombstone made after the read may have expired by the time
    /// the write lands: an invalidation the write would then undo.
    fn still_current(&self, l2: &L2) -> bool {
        self.read_at.elapsed() < l2.write_back_window()
    }
}

/// The tags one load's loader added, with the versions they had when its value
/// landed in L1.
#[derive(Default)]
pub(crate) struct AddedTags {
    names: Vec<String>,
    stamps: Vec<TagStamp>,
}

impl AddedTags {
    /// Stamps `names` now, as the loaded value lands.
    pub(crate) fn stamp(names: Vec<String>) -> Self {
        let stamps = names.iter().map(|tag| TagStamp::named(tag)).collect();
        Self { names, stamps }
    }

    /// Marks the added tags as holding a value loaded without reading their Redis
    /// counters (see `TagCell::kept_unread`).
    pub(crate) fn kept_unread(&self) {
        tags::kept_unread(&self.stamps);
    }

    /// `stamps` and a stamp for each added tag, to keep the value under in L1.
    pub(crate) fn with(&self, stamps: &Stamps) -> Stamps {
        if self.stamps.is_empty() {
            return stamps.clone();
        }
        stamps.iter().chain(&self.stamps).cloned().collect()
    }
}

impl<K, V> Entries<'_, K, V> {
    /// Writes a value to Redis (see [`WriteUnder`]) if `unwritten` still holds right
    /// before it is sent; false if it was not written: Redis failed (counted and
    /// logged), the entry changed since the read, or `unwritten` no longer held.
    pub(crate) async fn write(
        &self,
        target: &Target,
        value: &V,
        under: WriteUnder,
        lifetime: Lifetime,
        added_tags: &AddedTags,
        unwritten: &(dyn Fn() -> bool + Sync),
    ) -> bool {
        if !under.still_current(target.l2) {
            tracing::debug!(cache = %self.cache, "stratacache: the load outlived the write-back window (half of Config::tombstone_ttl); its value is not written to Redis");
            return false;
        }
        let WriteUnder {
            versions, prior, ..
        } = under;
        let Some(added) = self.added_tag_versions(target.l2, added_tags).await else {
            return false;
        };
        let Some((bytes, ttl_ms)) = self.envelope(target, value, versions, lifetime, &added) else {
            return false;
        };
        if !unwritten() {
            tracing::debug!(cache = %self.cache, "stratacache: the entry was written here since the value landed; it is not written to Redis");
            return false;
        }
        match target
            .l2
            .write(&target.entry_key, &bytes, ttl_ms, &prior)
            .await
        {
            Ok(written) => {
                if !written {
                    tracing::debug!(cache = %self.cache, "stratacache: the entry changed in Redis during the load (an invalidation, a put! or a refresh elsewhere); the loaded value is not written over it");
                }
                written
            }
            Err(fault) => {
                self.fault(&fault);
                false
            }
        }
    }

    /// The counters and current versions of the added tags, to write the value under;
    /// `None` when it must not be written: Redis failed (counted), or an added tag was
    /// invalidated since the value landed.
    pub(crate) async fn added_tag_versions(
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
            stamp.observe_remote(*version);
        }
        if !tags::all_current(&added.stamps) {
            tracing::debug!(cache = %self.cache, "stratacache: a tag the loader added was invalidated after the load; its value is not written to Redis");
            return None;
        }
        Some(keys.into_iter().zip(versions).collect())
    }

    /// The batch form of [`write`](Self::write): every value in one
    /// command per key, sent together (a pipeline on a standalone server), each if
    /// `unwritten` (asked once they are encoded, right before they are sent) still
    /// says so of it: one answer per write, in order.
    pub(crate) async fn write_many(
        &self,
        writes: &[(Target, V, WriteUnder)],
        lifetime: Lifetime,
        added_tags: &AddedTags,
        unwritten: &(dyn Fn() -> Vec<bool> + Sync),
    ) {
        let Some(((first, ..), _)) = writes.split_first() else {
            return;
        };
        let Some(added) = self.added_tag_versions(first.l2, added_tags).await else {
            return;
        };
        let encoded: Vec<(usize, Encoded<'_>)> = writes
            .iter()
            .enumerate()
            .filter(|(_, (target, _, under))| under.still_current(target.l2))
            .filter_map(|(index, (target, value, under))| {
                let (bytes, ttl) =
                    self.envelope(target, value, under.versions.clone(), lifetime, &added)?;
                Some((index, (target.entry_key.as_str(), bytes, ttl, &under.prior)))
            })
            .collect();
        let unwritten = unwritten();
        let (encoded, overtaken): (Vec<_>, Vec<_>) = encoded
            .into_iter()
            .partition(|(index, _)| unwritten[*index]);
        if !overtaken.is_empty() {
            tracing::debug!(cache = %self.cache, overtaken = overtaken.len(), "stratacache: entries written here since the batch's values landed are not written to Redis");
        }
        let encoded: Vec<_> = encoded.into_iter().map(|(_, write)| write).collect();
        if encoded.is_empty() {
            return;
        }
        if let Err(fault) = first.l2.write_many(&encoded).await {
            self.fault(&fault);
        }
    }
}
