//! The leader's Redis steps: read the entry with the current versions of its tags in
//! one round trip, promote a valid one, write a fresh load back. Any fault or bad
//! value is a counted miss; nothing here can fail a call. Checking and writing the
//! envelope is in `envelope_check.rs`, the fleet lock in `fleet_lock.rs`.

use std::sync::Arc;

use super::added_tags::AddedTags;
use super::lead::Lead;
use super::{Cache, CacheKey, CacheValue, Codec, Lifetime};
use crate::l2::codec::KeyBytes;
use crate::l2::message::Message;
use crate::l2::{keys, parse_versions, unix_ms, Fault, L2};
use crate::stats::Counter;
use crate::tags::{self, Stamps, TagCell, TagStamp};
use crate::Error;

/// What Redis holds for a key. A value read comes with the stamps to keep it under in
/// L1: the call's, plus one for each tag its loader added (`this_load::add_tag`), so
/// that invalidating such a tag reaches the copy in this process's L1 too.
pub(super) enum Read<V> {
    /// A fresh value and what is left of its lifetime.
    Hit {
        value: V,
        lifetime: Lifetime,
        versions: Vec<u64>,
        stamps: Stamps,
    },
    /// Nothing fresh; `versions` are the tag versions read before the load, and
    /// `fallback` a value kept for the fail-safe window, if the cache has one.
    Miss {
        versions: Vec<u64>,
        fallback: Option<SharedFallback<V>>,
    },
    /// A value past its ttl, inside the stale-while-revalidate window: servable now
    /// while the load refreshes it (and a fail-safe fallback if the load fails).
    Stale {
        value: V,
        lifetime: Lifetime,
        versions: Vec<u64>,
        stamps: Stamps,
    },
    /// Redis did not answer: load, and do not write back (no versions to record).
    Unavailable,
}

/// What the shared tier leaves a leader with, before its loader runs.
pub(super) enum Before<V> {
    /// Redis answered: the value, already landed for the waiters.
    Answered(V),
    /// Load, then write back under `versions` (none: Redis did not answer, or the
    /// cache is not shared), with `fallback` for the fail-safe.
    Load {
        versions: Option<Vec<u64>>,
        fallback: Option<SharedFallback<V>>,
    },
}

/// A value Redis holds for the fail-safe window, with the stamps to keep it under.
pub(super) struct SharedFallback<V> {
    pub(super) value: V,
    pub(super) lifetime: Lifetime,
    pub(super) stamps: Stamps,
}

/// Where one key of one cache lives in Redis.
pub(super) struct Target {
    pub(super) l2: &'static L2,
    pub(super) entry_key: String,
    pub(super) key_bytes: KeyBytes,
    /// Counters of the global tag, the cache tag and the call's tags, in the order of
    /// the load's stamps (shared by every key of a cache called without tags).
    pub(super) tag_keys: Arc<[String]>,
}

/// The Redis names every key of one cache uses, computed once (after `init`).
pub(super) struct RedisNames {
    entry_prefix: String,
    implicit_tags: Arc<[String]>,
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// `None` for a `local` cache, or before `init`.
    pub(super) fn shared_target(&self, key: &K, tags: &[String]) -> Option<Target> {
        let codec: &Codec<K, V> = self.codec.as_ref()?;
        let l2 = crate::l2::active()?;
        let Some(key_bytes) = (codec.encode_key)(key) else {
            self.complain("the key does not serialize");
            return None;
        };
        let names = self.redis_names.get_or_init(|| RedisNames {
            entry_prefix: keys::entry_prefix(&l2.namespace, &self.name, self.options.version),
            implicit_tags: [
                keys::global_tag(&l2.namespace),
                keys::cache_tag(&l2.namespace, &self.name),
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

    /// The first step of a load: what Redis holds for the key. A fresh value answers
    /// (unless a `refresh!` or a due refresh asked for a load past it); a stale one is
    /// kept in L1 and offered to the callers who may take it while the load runs.
    pub(super) async fn read_before_load<Out: Send + 'static>(
        &self,
        lead: &mut Lead<'_, K, V>,
        target: Option<&Target>,
        stamps: &Stamps,
    ) -> Before<V> {
        let Some(target) = target else {
            return Before::Load {
                versions: None,
                fallback: None,
            };
        };
        let load_past = |lead: &Lead<'_, K, V>, lifetime: &Lifetime| {
            // `refresh!` loads whatever Redis holds; a refresh-ahead refresh that found
            // the same generation in Redis, due as well, loads too.
            lead.flight.is_forced() || (lead.flight.is_refresh() && lifetime.refresh_after == 0)
        };
        let keep = |value, lifetime, stamps| {
            Some(SharedFallback {
                value,
                lifetime,
                stamps,
            })
        };
        match self.read_shared(target, stamps).await {
            Read::Hit {
                value,
                lifetime,
                versions,
                stamps,
            } if load_past(lead, &lifetime) => Before::Load {
                versions: Some(versions),
                fallback: keep(value, lifetime, stamps),
            },
            Read::Hit {
                value,
                lifetime,
                stamps,
                ..
            } => Before::Answered(lead.land_from_shared::<Out>(value, stamps, lifetime)),
            Read::Miss { versions, fallback } => Before::Load {
                versions: Some(versions),
                fallback,
            },
            Read::Stale {
                value,
                lifetime,
                versions,
                stamps,
            } => {
                lead.keep_stale(value.clone(), stamps.clone(), lifetime);
                lead.flight.offer_stale(value.clone());
                Before::Load {
                    versions: Some(versions),
                    fallback: keep(value, lifetime, stamps),
                }
            }
            Read::Unavailable => Before::Load {
                versions: None,
                fallback: None,
            },
        }
    }

    pub(super) async fn read_shared(&self, target: &Target, stamps: &Stamps) -> Read<V> {
        let (bytes, versions) = match target.l2.read(&target.entry_key, &target.tag_keys).await {
            Ok(read) => read,
            Err(fault) => {
                self.fault(&fault);
                return Read::Unavailable;
            }
        };
        // What Redis says now may reveal an invalidation whose message never came.
        for (stamp, version) in stamps.iter().zip(&versions) {
            stamp.cell().observe_remote(*version);
        }
        let Some(bytes) = bytes else {
            return Read::Miss {
                versions,
                fallback: None,
            };
        };
        match self.decode(target, &bytes, &versions, unix_ms()) {
            Ok(Some((found, added))) if added.is_empty() => {
                found.into_read(versions, stamps.clone())
            }
            Ok(Some((found, added))) => {
                // Tags the loader added: their counters were not in the first read.
                match self.check_added(target.l2, &[&added]).await.pop().flatten() {
                    Some(extra) => {
                        let stamps = stamps.iter().cloned().chain(extra).collect();
                        found.into_read(versions, stamps)
                    }
                    None => Read::Miss {
                        versions,
                        fallback: None,
                    },
                }
            }
            Ok(None) => Read::Miss {
                versions,
                fallback: None,
            },
            Err(bad) => {
                self.unusable(bad);
                Read::Miss {
                    versions,
                    fallback: None,
                }
            }
        }
    }

    /// Writes a value to Redis; false if it was not written (counted and logged).
    pub(super) async fn write_shared(
        &self,
        target: &Target,
        value: &V,
        versions: Vec<u64>,
        lifetime: Lifetime,
        added_tags: &AddedTags,
    ) -> bool {
        let Some(added) = self.added_tag_versions(target.l2, added_tags).await else {
            return false;
        };
        let Some((bytes, ttl_ms)) = self.envelope(target, value, versions, lifetime, &added) else {
            return false;
        };
        match target.l2.write(&target.entry_key, &bytes, ttl_ms).await {
            Ok(()) => true,
            Err(fault) => {
                self.fault(&fault);
                false
            }
        }
    }

    /// Steps 6 and 7 of a load: writes the loaded value back, and after a `refresh!`
    /// tells the other processes to drop their copy. A load doomed by `put!`,
    /// `refresh!` or `invalidate!` of its key (here, or announced by another process)
    /// writes nothing: it must not write over what that wrote or deleted in Redis, as
    /// it may not store in L1. (A write in another process whose message is still on
    /// its way can still be overwritten; the entry's ttl bounds that.)
    pub(super) async fn write_back_after_load(
        &self,
        flight: &crate::flight::Flight<V>,
        target: &Target,
        value: &V,
        versions: Vec<u64>,
        lifetime: Lifetime,
        added_tags: &AddedTags,
    ) {
        if flight.is_doomed() {
            return;
        }
        let written = self
            .write_shared(target, value, versions, lifetime, added_tags)
            .await;
        if written && flight.is_forced() {
            // Other processes drop their copy and read this one from Redis.
            let _ = self.announce(target).await;
        }
    }

    /// Checks values whose loaders added tags (one list of counter key and recorded
    /// version per value) against the counters' current versions, in one read: for
    /// each, the stamps of its added tags if none was invalidated since it was
    /// written, else `None` (also when Redis fails). The stamps are taken before the
    /// read, so an invalidation that lands after it still reaches the copy in L1.
    pub(super) async fn check_added(
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

    /// Tells the other processes to drop their copy of this entry (a newer one is in
    /// Redis now).
    pub(super) async fn announce(&self, target: &Target) -> Result<(), Error> {
        let message = self.entry_message(target).encode(target.l2.instance);
        target
            .l2
            .publish(message)
            .await
            .map_err(|fault| fault.into_error("publish an entry's invalidation"))
    }

    /// "Drop your copy of this entry", for the other processes.
    pub(super) fn entry_message(&self, target: &Target) -> Message {
        Message::Entry {
            cache: self.name.to_string(),
            key: target.key_bytes.to_vec(),
        }
    }

    pub(super) fn fault(&self, fault: &Fault) {
        if !matches!(fault, Fault::Open) {
            self.stats.bump(Counter::L2Error);
        }
        tracing::debug!(cache = %self.name, %fault, "stratacache: Redis call failed; answered without it");
    }
}

impl Target {
    /// The current versions of this entry's tags (implicit ones first), for a value
    /// written without a load (`put!`).
    pub(super) async fn tag_versions(&self) -> Result<Vec<u64>, Fault> {
        self.l2.settled_versions(&self.tag_keys).await
    }
}
