//! The shared-tier steps of a batch call: every entry and tag counter in one read,
//! every loaded value in one write.

use std::collections::HashMap;
use std::sync::Arc;

use super::shared::{Read, Target};
use super::{Cache, CacheKey, CacheValue, Lifetime};
use crate::l1::L1Store;
use crate::l2::{parse_versions, Fault};
use crate::tags::Stamps;

impl<K, V, St> Cache<K, V, St>
where
    K: CacheKey,
    V: CacheValue,
    St: L1Store<K, V>,
{
    /// The batch form of [`read_shared`](Self::read_shared): every entry and every
    /// distinct tag counter of `targets` in one `MGET` (per hash slot on a cluster),
    /// one `Read` per target. A value whose loader added tags is taken as a miss here
    /// (its extra counters would cost a second round trip) and is loaded again.
    pub(super) async fn read_shared_many(&self, targets: &[(Target, Stamps)]) -> Vec<Read<V>> {
        let unavailable = || targets.iter().map(|_| Read::Unavailable).collect();
        let Some(((first, _), _)) = targets.split_first() else {
            return Vec::new();
        };
        let mut keys: Vec<&str> = targets.iter().map(|(t, _)| t.entry_key.as_str()).collect();
        let mut counters: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
        // Where each target's tag counters are among the keys: targets with the same
        // counters (every key of a cache called without tags) share one list.
        let mut positions: Vec<Arc<[usize]>> = Vec::with_capacity(targets.len());
        for (target, _) in targets {
            let shared = positions.last().filter(|_| {
                let previous = &targets[positions.len() - 1].0.tag_keys;
                Arc::ptr_eq(previous, &target.tag_keys)
            });
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
        let mut replies = match first.l2.mget(&keys).await {
            Ok(replies) => replies,
            Err(fault) => {
                self.fault(&fault);
                return unavailable();
            }
        };
        let Ok(counter_versions) = parse_versions(replies.drain(targets.len()..)) else {
            self.fault(&Fault::Malformed);
            return unavailable();
        };
        targets
            .iter()
            .zip(positions)
            .zip(replies)
            .map(|(((target, stamps), positions), bytes)| {
                let versions: Vec<u64> = positions
                    .iter()
                    .map(|&p| counter_versions[p - targets.len()])
                    .collect();
                for (stamp, version) in stamps.iter().zip(&versions) {
                    stamp.cell().observe_remote(*version);
                }
                let miss = |versions| Read::Miss {
                    versions,
                    fallback: None,
                };
                let Some(bytes) = bytes else {
                    return miss(versions);
                };
                match self.decode(target, &bytes, &versions) {
                    Ok(Some((read, added))) if added.is_empty() => read,
                    Ok(_) => miss(versions),
                    Err(bad) => {
                        self.complain(bad);
                        miss(versions)
                    }
                }
            })
            .collect()
    }

    /// The batch form of [`write_shared`](Self::write_shared): every value in one
    /// command per key, sent together (a pipeline on a standalone server).
    pub(super) async fn write_shared_many(
        &self,
        writes: &[(Target, V, Vec<u64>)],
        lifetime: Lifetime,
        added_tags: &[String],
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
