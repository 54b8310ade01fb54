//! Reading one entry: the entry and the current versions of its tags in one round
//! trip, the envelope checked, and the counters of tags its loader added read too.

use std::sync::Arc;

use super::target::Target;
use super::write::WriteUnder;
use super::Entries;
use crate::l2::replace::Prior;
use crate::l2::{keys, parse_versions, unix_ms, L2};
use crate::tags::{self, Stamps, TagCell, TagStamp};
use crate::times::Lifetime;

/// What Redis holds for a key. A value read comes with the stamps to keep it under in
/// L1: the call's, plus one for each tag its loader added (`this_load::add_tag`), so
/// that invalidating such a tag reaches the copy in this process's L1 too.
pub(crate) enum Read<V> {
    /// A fresh value and what is left of its lifetime.
    Hit {
        value: V,
        lifetime: Lifetime,
        under: WriteUnder,
        stamps: Stamps,
    },
    /// Nothing fresh; `under`: what a load's write-back goes under (the tag
    /// versions read, what the entry's key held), and `fallback` a value kept for
    /// the fail-safe window, if the cache has one.
    Miss {
        under: WriteUnder,
        fallback: Option<SharedFallback<V>>,
    },
    /// A value past its ttl, inside the stale-while-revalidate window: servable now
    /// while the load refreshes it (and a fail-safe fallback if the load fails).
    Stale {
        value: V,
        lifetime: Lifetime,
        under: WriteUnder,
        stamps: Stamps,
    },
    /// Redis did not answer: load, and do not write back (no versions to record).
    Unavailable,
}

/// A value Redis holds for the fail-safe window, with the stamps to keep it under.
pub(crate) struct SharedFallback<V> {
    pub(crate) value: V,
    pub(crate) lifetime: Lifetime,
    pub(crate) stamps: Stamps,
}

impl<K, V> Entries<'_, K, V> {
    /// What Redis holds for `target`. `stamps` are the call's, taken before the read:
    /// a value read is kept under them (and under those of the tags its loader added).
    pub(crate) async fn read(&self, target: &Target, stamps: &Stamps) -> Read<V> {
        let (bytes, versions) = match target.l2.read(&target.entry_key, &target.tag_keys).await {
            Ok(read) => read,
            Err(fault) => {
                self.fault(&fault);
                return Read::Unavailable;
            }
        };
        // What Redis says now may reveal an invalidation whose message never came.
        for (stamp, version) in stamps.iter().zip(&versions) {
            stamp.observe_remote(*version);
        }
        let under = WriteUnder::after_read(versions, Prior::of(bytes.as_deref()));
        let miss = |under| Read::Miss {
            under,
            fallback: None,
        };
        let Some(bytes) = bytes else {
            return miss(under);
        };
        match self.decode(target, &bytes, &under.versions, unix_ms()) {
            Ok(Some((found, added))) if added.is_empty() => found.into_read(under, stamps.clone()),
            Ok(Some((found, added))) => {
                // Tags the loader added: their counters were not in the first read.
                match self.check_added(target.l2, &[&added]).await.pop().flatten() {
                    Some(extra) => {
                        let stamps = stamps.iter().cloned().chain(extra).collect();
                        found.into_read(under, stamps)
                    }
                    None => miss(under),
                }
            }
            Ok(None) => miss(under),
            Err(bad) => {
                self.unusable(bad);
                miss(under)
            }
        }
    }

    /// Checks values whose loaders added tags (one list of counter key and recorded
    /// version per value) against the counters' current versions, in one read: for
    /// each, the stamps of its added tags if none was invalidated since it was
    /// written, else `None` (also when Redis fails). The stamps are taken before the
    /// read, so an invalidation that lands after it still reaches the copy in L1.
    pub(crate) async fn check_added(
        &self,
        l2: &L2,
        lists: &[&[(String, u64)]],
    ) -> Vec<Option<Vec<TagStamp>>> {
        let mut counters: Vec<&str> = Vec::new();
        let mut cells: Vec<Option<Arc<TagCell>>> = Vec::new();
        for (counter, _) in lists.iter().flat_map(|list| list.iter()) {
            if !counters.contains(&counter.as_str()) {
                counters.push(counter);
                cells.push(keys::tag_name(&l2.namespace, counter).map(tags::intern));
            }
        }
        let position = |counter: &str| counters.iter().position(|c| *c == counter);
        let stamped: Vec<Option<Vec<TagStamp>>> = lists
            .iter()
            .map(|list| {
                list.iter()
                    .map(|(counter, _)| Some(TagStamp::new(cells[position(counter)?].clone()?)))
                    .collect()
            })
            .collect();
        let unusable = || lists.iter().map(|_| None).collect();
        let read = match l2.mget(&counters).await.and_then(parse_versions) {
            Ok(mut now) => l2.settle(&counters, &mut now).await.map(|()| now),
            Err(fault) => Err(fault),
        };
        let now = match read {
            Ok(now) => now,
            Err(fault) => {
                self.fault(&fault);
                return unusable();
            }
        };
        for (cell, version) in cells.iter().zip(&now) {
            if let Some(cell) = cell {
                cell.observe_remote(*version);
            }
        }
        lists
            .iter()
            .zip(stamped)
            .map(|(list, stamps)| {
                let current = list.iter().all(|(counter, recorded)| {
                    position(counter).is_some_and(|p| now[p] == *recorded)
                });
                stamps.filter(|_| current)
            })
            .collect()
    }
}
