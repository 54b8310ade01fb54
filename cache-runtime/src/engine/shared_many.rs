//! The shared-tier steps of a batch call: every entry and tag counter in one read,
//! every loaded value in one write.

use std::collections::HashMap;
use std::sync::Arc;

use super::added_tags::AddedTags;
use super::envelope_check::{Found, ServesAs};
use super::shared::Target;
use super::{Cache, CacheKey, CacheValue, Lifetime, Tags};
use crate::clock;
use crate::l1::L1Store;
use crate::l2::{parse_versions, unix_ms, Fault, L2};
use crate::stats::Counter;
use crate::tags::{self, Stamps, TagStamp};
use crate::warm_tally::Tally;

/// A key of a batch that Redis did not answer with a fresh value: to be loaded, and
/// written back under the tag versions read with it (none if Redis did not answer or
/// the cache is `local`).
pub(super) struct Missing<K> {
    pub(super) key: K,
    /// The versions of its tags, read before Redis was.
    pub(super) stamps: Stamps,
    pub(super) write_back: Option<(Target, Vec<u64>)>,
}

/// A fresh value whose loader added tags: its index among the batch's answers, the
/// added tags with their recorded versions, and the versions read for its own tags.
type WithAdded = (usize, Vec<(String, u64)>, Vec<u64>);

/// What Redis holds for one key of a batch.
enum Held<V> {
    /// A fresh value, what is left of its lifetime, and the stamps of the tags its
    /// loader added (to keep it under in L1 beside the key's own).
    Fresh(V, Lifetime, Vec<TagStamp>),
    /// Nothing fresh: load, and write back under these tag versions (read with it).
    Missing(Vec<u64>),
    /// Redis did not answer: load, and do not write back.
    Unknown,
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// The Redis step of a batch: every key's entry in one read. What is fresh there
    /// is answered and kept in L1; the rest is returned, to be loaded.
    pub(super) async fn read_many(
        &self,
        keys: Vec<K>,
        tags_of: &impl Fn(&K) -> Tags,
        answered: &mut Vec<(K, V)>,
        tally: &Option<Arc<Tally>>,
    ) -> Vec<Missing<K>> {
        // Keys without tags of their own share one set of stamps (read at one moment,
        // before Redis, like every key's).
        let mut untagged: Option<Stamps> = None;
        let stamped: Vec<(K, Stamps, Option<Target>)> = keys
            .into_iter()
            .map(|key| {
                let tags = tags_of(&key);
                let stamps = if tags.is_empty() {
                    untagged.get_or_insert_with(|| self.stamp(&tags)).clone()
                } else {
                    self.stamp(&tags)
                };
                let target = self.shared_target(&key, &tags);
                (key, stamps, target)
            })
            .collect();
        let targets: Vec<(&Target, &Stamps)> = stamped
            .iter()
            .filter_map(|(_, stamps, target)| Some((target.as_ref()?, stamps)))
            .collect();
        let writes_before = self.flights.writes();
        let mut held = self.read_shared_many(&targets).await.into_iter();
        drop(targets);
        let mut missing = Vec::new();
        let flights = self.flights.lock();
        // A put!, refresh! or invalidation of some entry during the read may be newer
        // than what Redis answered for it: then nothing read is kept (all is answered).
        let keep = !flights.writes_since(writes_before);
        let now = clock::precise_ms();
        for (key, stamps, target) in stamped {
            let Some(target) = target else {
                missing.push(Missing {
                    key,
                    stamps,
                    write_back: None,
                });
                continue;
            };
            match held.next() {
                Some(Held::Fresh(value, lifetime, added)) => {
                    let stamps = if added.is_empty() {
                        stamps
                    } else {
                        stamps.iter().cloned().chain(added).collect()
                    };
                    if keep && tags::all_current(&stamps) {
                        let entry = self.entry_at(value.clone(), stamps, Some(lifetime), now);
                        self.store.insert(key.clone(), entry);
                    }
                    self.stats.bump(Counter::L2Hit);
                    Tally::add(tally, |t| &t.present, 1);
                    answered.push((key, value));
                }
                Some(Held::Missing(versions)) => missing.push(Missing {
                    key,
                    stamps,
                    write_back: Some((target, versions)),
                }),
                Some(Held::Unknown) | None => missing.push(Missing {
                    key,
                    stamps,
                    write_back: None,
                }),
            }
        }
        missing
    }

    /// The batch form of [`read_shared`](Self::read_shared): every entry and every
    /// distinct tag counter of `targets` in one `MGET` (per hash slot on a cluster),
    /// one `Held` per target. Values whose loaders added tags cost a second read, of
    /// those tags' counters (one for all such values of the call).
    async fn read_shared_many(&self, targets: &[(&Target, &Stamps)]) -> Vec<Held<V>> {
        let unavailable = || targets.iter().map(|_| Held::Unknown).collect();
        let Some(((first, _), _)) = targets.split_first() else {
            return Vec::new();
        };
        let (keys, positions) = mget_layout(targets);
        let mut replies = match first.l2.mget(&keys).await {
            Ok(replies) => replies,
            Err(fault) => {
                self.fault(&fault);
                return unavailable();
            }
        };
        let Ok(mut counter_versions) = parse_versions(replies.drain(targets.len()..)) else {
            self.fault(&Fault::Malformed);
            return unavailable();
        };
        if let Err(fault) = first
            .l2
            .settle(&keys[targets.len()..], &mut counter_versions)
            .await
        {
            self.fault(&fault);
            return unavailable();
        }
        let now = unix_ms();
        let mut versions: Vec<u64> = Vec::new();
        let mut previous: Option<&Arc<[usize]>> = None;
        let mut held = Vec::with_capacity(targets.len());
        // Fresh values whose loaders added tags: (index in `held`, tags, versions read).
        let mut with_added = Vec::new();
        for (((target, stamps), these), bytes) in targets.iter().zip(&positions).zip(replies) {
            // Targets sharing a list of counters share their versions too.
            if !previous.is_some_and(|p| Arc::ptr_eq(p, these)) {
                versions.clear();
                versions.extend(these.iter().map(|&p| counter_versions[p - targets.len()]));
                // What Redis says now may reveal an invalidation whose message never came.
                for (stamp, version) in stamps.iter().zip(&versions) {
                    stamp.cell().observe_remote(*version);
                }
                previous = Some(these);
            }
            let found = match bytes.map(|bytes| self.decode(target, &bytes, &versions, now)) {
                Some(Ok(Some((found, added)))) => Some((found, added)),
                Some(Err(bad)) => {
                    self.unusable(bad);
                    None
                }
                _ => None,
            };
            held.push(match found {
                Some((
                    Found {
                        value,
                        lifetime,
                        serves_as: ServesAs::Fresh,
                    },
                    added,
                )) => {
                    if !added.is_empty() {
                        with_added.push((held.len(), added, versions.clone()));
                    }
                    Held::Fresh(value, lifetime, Vec::new())
                }
                _ => Held::Missing(versions.clone()),
            });
        }
        if !with_added.is_empty() {
            self.check_added_many(first.l2, &mut held, with_added).await;
        }
        held
    }

    /// Fresh values whose loaders added tags are fresh only if those tags' counters
    /// still hold the versions recorded with them; the others count as missing.
    async fn check_added_many(
        &self,
        l2: &'static L2,
        held: &mut [Held<V>],
        with_added: Vec<WithAdded>,
    ) {
        let lists: Vec<&[(String, u64)]> = with_added
            .iter()
            .map(|(_, added, _)| added.as_slice())
            .collect();
        let checked = self.check_added(l2, &lists).await;
        for ((index, _, versions), stamps) in with_added.into_iter().zip(checked) {
            match (stamps, &mut held[index]) {
                (Some(stamps), Held::Fresh(_, _, added)) => *added = stamps,
                (_, slot) => *slot = Held::Missing(versions),
            }
        }
    }

    /// Step 6, after the landings and in the background: the values are answered and
    /// held here; Redis gets them one command each, sent at once, without holding up
    /// the call for a second round trip. The write first lets the tasks already
    /// waiting to run go (the caller's next request, typically): encoding and sending
    /// it ahead of them would delay their round trips, not this call's.
    pub(super) async fn write_back_many(
        &'static self,
        writes: Vec<(Target, V, Vec<u64>)>,
        lifetime: Lifetime,
        added: AddedTags,
    ) {
        let running = crate::background::Running::start();
        let write_all = async move {
            tokio::task::yield_now().await;
            self.write_shared_many(&writes, lifetime, &added).await;
            drop(running);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(write_all)),
            _ => write_all.await,
        }
    }

    /// The batch form of [`write_shared`](Self::write_shared): every value in one
    /// command per key, sent together (a pipeline on a standalone server).
    pub(super) async fn write_shared_many(
        &self,
        writes: &[(Target, V, Vec<u64>)],
        lifetime: Lifetime,
        added_tags: &AddedTags,
    ) {
        let Some(((first, _, _), _)) = writes.split_first() else {
            return;
        };
        let Some(added) = self.added_tag_versions(first.l2, added_tags).await else {
            return;
        };
        let encoded: Vec<(&str, Vec<u8>, Option<u64>)> = writes
            .iter()
            .filter_map(|(target, value, versions)| {
                let (bytes, ttl) =
                    self.envelope(target, value, versions.clone(), lifetime, &added)?;
                Some((target.entry_key.as_str(), bytes, ttl))
            })
            .collect();
        if let Err(fault) = first.l2.write_many(&encoded).await {
            self.fault(&fault);
        }
    }
}

/// The keys of one `MGET` for many targets: their entries, then each tag counter once;
/// and where each target's counters are among them. Targets with the same counters
/// (every key of a cache called without tags) share one list.
fn mget_layout<'a>(targets: &[(&'a Target, &Stamps)]) -> (Vec<&'a str>, Vec<Arc<[usize]>>) {
    let tag_keys = targets.first().map_or(0, |(t, _)| t.tag_keys.len());
    let mut keys: Vec<&str> = Vec::with_capacity(targets.len() + tag_keys);
    keys.extend(targets.iter().map(|(t, _)| t.entry_key.as_str()));
    let mut counters: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut positions: Vec<Arc<[usize]>> = Vec::with_capacity(targets.len());
    for (index, (target, _)) in targets.iter().enumerate() {
        let shared = positions
            .last()
            .filter(|_| Arc::ptr_eq(&targets[index - 1].0.tag_keys, &target.tag_keys));
        let these = match shared {
            Some(previous) => previous.clone(),
            None => target
                .tag_keys
                .iter()
                .map(|counter| {
                    *counters.entry(counter.as_str()).or_insert_with(|| {
                        keys.push(counter);
                        keys.len() - 1
                    })
                })
                .collect(),
        };
        positions.push(these);
    }
    (keys, positions)
}
