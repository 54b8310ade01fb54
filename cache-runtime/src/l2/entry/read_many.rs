//! Reading the entries of a batch: every entry and tag counter in one read.

use std::collections::HashMap;
use std::sync::Arc;

use super::check::{Found, ServesAs};
use super::target::Target;
use super::write::WriteUnder;
use super::Entries;
use crate::l2::replace::Prior;
use crate::l2::{parse_versions, unix_ms, Fault, L2};
use crate::tags::{Stamps, TagStamp};
use crate::times::Lifetime;

/// A fresh value whose loader added tags: its index among the batch's answers, the
/// added tags with their recorded versions, and what a load's write-back would go
/// under if they moved.
type WithAdded = (usize, Vec<(String, u64)>, WriteUnder);

/// What Redis holds for one key of a batch.
pub(crate) enum Held<V> {
    /// A fresh value, what is left of its lifetime, and the stamps of the tags its
    /// loader added (to keep it under in L1 beside the key's own).
    Fresh(V, Lifetime, Vec<TagStamp>),
    /// Nothing fresh: load, and write back under what was read.
    Missing(WriteUnder),
    /// Redis did not answer: load, and do not write back.
    Unknown,
}

impl<K, V> Entries<'_, K, V> {
    /// The batch form of [`read`](Self::read): every entry and every
    /// distinct tag counter of `targets` in one `MGET` (per hash slot on a cluster),
    /// one `Held` per target. Values whose loaders added tags cost a second read, of
    /// those tags' counters (one for all such values of the call).
    pub(crate) async fn read_many(&self, targets: &[(&Target, &Stamps)]) -> Vec<Held<V>> {
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
        // Fresh values whose loaders added tags (see `WithAdded`).
        let mut with_added = Vec::new();
        for (((target, stamps), these), bytes) in targets.iter().zip(&positions).zip(replies) {
            // Targets sharing a list of counters share their versions too.
            if !previous.is_some_and(|p| Arc::ptr_eq(p, these)) {
                versions.clear();
                versions.extend(these.iter().map(|&p| counter_versions[p - targets.len()]));
                // What Redis says now may reveal an invalidation whose message never came.
                for (stamp, version) in stamps.iter().zip(&versions) {
                    stamp.observe_remote(*version);
                }
                previous = Some(these);
            }
            let prior = Prior::of(bytes.as_deref());
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
                        let under = WriteUnder::after_read(versions.clone(), prior);
                        with_added.push((held.len(), added, under));
                    }
                    Held::Fresh(value, lifetime, Vec::new())
                }
                _ => Held::Missing(WriteUnder::after_read(versions.clone(), prior)),
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
            .map(|(_, added, ..)| added.as_slice())
            .collect();
        let checked = self.check_added(l2, &lists).await;
        for ((index, _, under), stamps) in with_added.into_iter().zip(checked) {
            match (stamps, &mut held[index]) {
                (Some(stamps), Held::Fresh(_, _, added)) => *added = stamps,
                (_, slot) => *slot = Held::Missing(under),
            }
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
