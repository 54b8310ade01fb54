//! The shared-tier steps of a batch call: every entry and tag counter in one read
//! (step 1), every loaded value in one write (step 6).

use std::sync::Arc;

use super::{Cache, CacheKey, CacheValue, Lifetime, Tags};
use crate::clock;
use crate::l1::L1Store;
use crate::l2::entry::{AddedTags, Held, Target, WriteUnder};
use crate::stats::Counter;
use crate::tags::{self, Stamps};
use crate::warm_tally::Tally;

/// A key of a batch that Redis did not answer with a fresh value: to be loaded, and
/// written back under what was read of it (nothing if Redis did not answer or the
/// cache is `local`).
pub(super) struct Missing<K> {
    pub(super) key: K,
    /// The versions of its tags, read before Redis was.
    pub(super) stamps: Stamps,
    pub(super) write_back: Option<(Target, WriteUnder)>,
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
        let stamped = self.stamp_many(keys, tags_of);
        let targets: Vec<(&Target, &Stamps)> = stamped
            .iter()
            .filter_map(|(_, stamps, target)| Some((target.as_ref()?, stamps)))
            .collect();
        let writes_before = self.flights.writes();
        let mut held = match self.entries() {
            Some(entries) => entries.read_many(&targets).await.into_iter(),
            None => Vec::new().into_iter(),
        };
        drop(targets);
        let mut missing = Vec::new();
        let flights = self.flights.lock();
        // A put!, refresh! or invalidation of an entry during the read may be newer
        // than what Redis answered for it: then what was read of it is not kept (it is
        // answered).
        let unwritten = |key: &K| !flights.written_since(writes_before, self.flights.key_hash(key));
        let now = clock::precise_ms();
        for (key, stamps, target) in stamped {
            let Some(target) = target else {
                // Loaded without a version of its counters: see `TagCell::kept_unread`.
                tags::kept_unread(&stamps);
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
                    if unwritten(&key) && tags::all_current(&stamps) {
                        let entry = self.entry_at(value.clone(), &stamps, Some(lifetime), now);
                        self.store.insert(key.clone(), entry);
                    }
                    self.stats.bump(Counter::L2Hit);
                    Tally::add(tally, |t| &t.present, 1);
                    answered.push((key, value));
                }
                Some(Held::Missing(under)) => missing.push(Missing {
                    key,
                    stamps,
                    write_back: Some((target, under)),
                }),
                Some(Held::Unknown) | None => {
                    tags::kept_unread(&stamps);
                    missing.push(Missing {
                        key,
                        stamps,
                        write_back: None,
                    })
                }
            }
        }
        missing
    }

    /// Each key's stamps, read before Redis is, and where it lives in Redis.
    fn stamp_many(
        &self,
        keys: Vec<K>,
        tags_of: &impl Fn(&K) -> Tags,
    ) -> Vec<(K, Stamps, Option<Target>)> {
        // Keys without tags of their own share one set of stamps (read at one moment,
        // before Redis, like every key's).
        let mut untagged: Option<Stamps> = None;
        keys.into_iter()
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
            .collect()
    }

    /// Step 6, after the landings and in the background: the values are answered and
    /// held here; Redis gets them one command each, sent at once, without holding up
    /// the call for a second round trip. The write first lets the tasks already
    /// waiting to run go (the caller's next request, typically): encoding and sending
    /// it ahead of them would delay their round trips, not this call's.
    ///
    /// A value is not written if its entry was written here (`put!`, `refresh!`, an
    /// invalidation) since `writes_before`, read before the landings (`keys` are the
    /// values' [`Flights::key_hash`](crate::flights::Flights::key_hash)es): its flight
    /// retired, a loaded value is out of reach of the writes that follow, and once what
    /// such a write left in Redis expired (a ttl shorter than the wait for this task),
    /// the compare-and-set, which expects what the read before the load found, would
    /// land the older value in Redis for every reader (the one-process checker counted
    /// 196 to 626 reads in 10 s of batch reads beside `put!`s that got less than a
    /// returned write). A single-key load sends its write before it yields, ahead of
    /// any later write of its key, or, after the round trip for its added tags'
    /// versions, checks the same way (see `write_back_after_load`).
    pub(super) async fn write_back_many(
        &'static self,
        writes: Vec<(Target, V, WriteUnder)>,
        keys: Vec<u64>,
        lifetime: Lifetime,
        added: AddedTags,
        writes_before: u64,
    ) {
        let running = crate::background::Running::start();
        let write_all = async move {
            tokio::task::yield_now().await;
            let unwritten = || {
                let flights = self.flights.lock();
                keys.iter()
                    .map(|key| !flights.written_since(writes_before, *key))
                    .collect()
            };
            if let Some(entries) = self.entries() {
                entries
                    .write_many(&writes, lifetime, &added, &unwritten)
                    .await;
            }
            drop(running);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(write_all)),
            _ => write_all.await,
        }
    }
}
