//! The commands of the Redis tier, each through [`L2::call`]: on a cluster, one call
//! per node's worth of keys, so a master that is down fails only the calls that need
//! it, and only its own circuit opens.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::stream::StreamExt;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::connection::Connection;
use super::counters::parse_versions;
use super::replace::{self, Prior};
use super::routing::slot_of;
use super::{Fault, Node, L2};

/// Keys in one `MGET` of tag counters.
const MGET_KEYS: usize = 512;
/// A resync's `MGET`s in flight at once at each master: enough to read thousands of
/// counters in a few round trips, few enough that none waits behind the others long
/// enough to time out.
const READS_IN_FLIGHT_PER_MASTER: usize = 32;

impl L2 {
    /// One command, one round trip: `MGET entry tag-counter...`, the entry and the
    /// current versions of its tags, created where missing (a second round trip, the
    /// first time a tag is loaded; see [`counters`](super::counters)). (A pipeline of
    /// GET + MGET costs a second command and reply on every L2 hit.)
    pub(crate) async fn read(
        &self,
        entry_key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Vec<u8>>, Vec<u64>), Fault> {
        let keys: Vec<&str> = std::iter::once(entry_key)
            .chain(tag_keys.iter().map(String::as_str))
            .collect();
        let mut replies = self.mget(&keys).await?;
        let mut versions = parse_versions(replies.drain(1..))?;
        self.settle(&keys[1..], &mut versions).await?;
        Ok((replies.pop().flatten(), versions))
    }

    /// `MGET` of any keys, in their order. On a standalone server, one command; on a
    /// cluster, one `MGET` per hash slot (a command may not span slots), each through
    /// its master's breaker, all sent at once: one round trip to each node involved,
    /// in parallel. (redis-rs can split a multi-slot `MGET` itself, but its retry
    /// after a node failure re-sends the whole command and then cannot match the
    /// replies.)
    pub(crate) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Fault> {
        if !self.is_cluster() {
            let replies = self
                .call(None, |mut connection| async move {
                    // Sized at once: a batch's hundred keys would regrow it ten times.
                    let bytes = keys.iter().map(|key| key.len()).sum::<usize>();
                    let mut cmd = redis::Cmd::with_capacity(keys.len() + 1, bytes + 4);
                    cmd.arg("MGET")
                        .arg(keys)
                        .query_async::<Vec<Option<Vec<u8>>>>(&mut connection)
                        .await
                })
                .await?;
            return if replies.len() == keys.len() {
                Ok(replies)
            } else {
                Err(Fault::Malformed)
            };
        }
        let by_slot = by_slot(keys);
        if self.any_refused(by_slot.iter().map(|indices| keys[indices[0]])) {
            return Err(Fault::Open);
        }
        let requests = by_slot.iter().map(|indices| self.mget_slot(keys, indices));
        let answers = futures_util::future::try_join_all(requests).await?;
        let mut replies = vec![None; keys.len()];
        scatter(&mut replies, &by_slot, answers);
        Ok(replies)
    }

    /// `MGET` of `keys[indices]`, all of one hash slot, through its master's breaker.
    async fn mget_slot(
        &self,
        keys: &[&str],
        indices: &[usize],
    ) -> Result<Vec<Option<Vec<u8>>>, Fault> {
        let answer = self
            .call(Some(keys[indices[0]]), move |mut connection| async move {
                let mut cmd = redis::cmd("MGET");
                for &index in indices {
                    cmd.arg(keys[index]);
                }
                cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut connection)
                    .await
            })
            .await?;
        if answer.len() == indices.len() {
            Ok(answer)
        } else {
            Err(Fault::Malformed)
        }
    }

    /// Writes an entry over `prior`, what the read before its load saw there
    /// ([`replace`]); `Ok(false)` if the key holds something else now.
    pub(crate) async fn write(
        &self,
        entry_key: &str,
        bytes: &[u8],
        ttl_ms: Option<u64>,
        prior: &Prior,
    ) -> Result<bool, Fault> {
        self.call(Some(entry_key), |mut connection| async move {
            replace::write_command(entry_key, bytes, ttl_ms, prior)
                .query_async::<redis::Value>(&mut connection)
                .await
        })
        .await
        .map(|reply| replace::wrote(&reply))
    }

    /// Several [`write`](Self::write)s at once: one pipeline on a standalone server;
    /// on a cluster one command per key (a pipeline may not span slots), sent together.
    pub(crate) async fn write_many(
        &self,
        items: &[(&str, Vec<u8>, Option<u64>, &Prior)],
    ) -> Result<(), Fault> {
        if self.is_cluster() {
            let writes = items
                .iter()
                .map(|(key, bytes, ttl, prior)| self.write(key, bytes, *ttl, prior));
            return futures_util::future::try_join_all(writes).await.map(drop);
        }
        self.call(None, |mut connection| async move {
            let mut pipe = redis::pipe();
            for (key, bytes, ttl, prior) in items {
                pipe.add_command(replace::write_command(key, bytes, *ttl, prior))
                    .ignore();
            }
            pipe.query_async::<()>(&mut connection).await
        })
        .await
    }

    /// Current versions of tag counters as they are ([`counters::MISSING`] where
    /// Redis holds none), in chunks of one call each.
    ///
    /// [`counters::MISSING`]: super::counters::MISSING
    pub(crate) async fn versions(&self, tag_keys: &[String]) -> Result<Vec<u64>, Fault> {
        let mut all = Vec::with_capacity(tag_keys.len());
        for chunk in tag_keys.chunks(MGET_KEYS) {
            let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
            all.extend(parse_versions(self.mget(&keys).await?)?);
        }
        Ok(all)
    }

    /// The versions of the counters `tag_keys`, each handed to `apply` with its index
    /// as soon as its node answers; returns how many were read. On a cluster a master
    /// that is down or hanging leaves only its own counters unread, and what the
    /// others answer is applied at once, not after that master's timeout: each master
    /// has its own queue of reads, so a hanging one holds back none of another's, however
    /// many counters there are. (In chunks of 512 read one after the other, a process
    /// holding more named tags than one chunk waited for the hanging master's timeout
    /// before each chunk's reads of the healthy ones.)
    ///
    /// The nodes in `left` (an earlier resync's read there is hanging:
    /// [`L2::resync_stuck`]) are not read, and each read is counted as under way at
    /// its node until it ends.
    pub(crate) async fn versions_as_answered(
        &self,
        tag_keys: &[String],
        left: &HashSet<Node>,
        mut apply: impl FnMut(usize, u64),
    ) -> usize {
        let keys: Vec<&str> = tag_keys.iter().map(String::as_str).collect();
        let mut read = 0;
        if !self.is_cluster() {
            if left.contains(&None) {
                return 0;
            }
            for (chunk_index, chunk) in keys.chunks(MGET_KEYS).enumerate() {
                let _reading = self.resync_reads.reading(None);
                let versions = self.mget(chunk).await.and_then(parse_versions);
                for (index, version) in versions.into_iter().flatten().enumerate() {
                    apply(chunk_index * MGET_KEYS + index, version);
                    read += 1;
                }
            }
            return read;
        }
        let keys = &keys;
        let queues = self.reads_by_master(keys);
        let queues = queues
            .into_iter()
            .filter(|(master, _)| !left.contains(master));
        let mut reads = futures_util::stream::select_all(queues.map(|(master, reads)| {
            futures_util::stream::iter(reads)
                .map(move |indices| async move {
                    let _reading = self.resync_reads.reading(master);
                    let replies = self.mget_slot(keys, &indices).await;
                    (indices, replies.and_then(parse_versions).ok())
                })
                .buffer_unordered(READS_IN_FLIGHT_PER_MASTER)
                .boxed()
        }));
        while let Some((indices, versions)) = reads.next().await {
            for (&index, version) in indices.iter().zip(versions.into_iter().flatten()) {
                apply(index, version);
                read += 1;
            }
        }
        read
    }

    /// The indices of `keys`, in `MGET`s of one slot and at most [`MGET_KEYS`] keys,
    /// queued by the master that holds their slot (one queue for the slots the map
    /// does not cover).
    fn reads_by_master(&self, keys: &[&str]) -> BTreeMap<Node, Vec<Vec<usize>>> {
        let mut queues: BTreeMap<Node, Vec<Vec<usize>>> = BTreeMap::new();
        for indices in by_slot(keys) {
            let master = self.breakers.master_of(slot_of(keys[indices[0]]));
            let queue = queues.entry(master).or_default();
            queue.extend(indices.chunks(MGET_KEYS).map(<[usize]>::to_vec));
        }
        queues
    }

    /// The nodes where an earlier resync's read has been under way for `longer_than`
    /// (the interval), asked as a resync begins: it leaves them to that one rather
    /// than wait on them too (see [`L2::versions_as_answered`]).
    pub(crate) fn resync_stuck(&self, longer_than: Duration) -> HashSet<Node> {
        self.resync_reads.stuck(longer_than)
    }

    /// Bumps a tag counter and/or replaces an entry by a tombstone (not a deletion: see
    /// [`replace`]); returns the counter's new version.
    /// Two calls sent at once, not a pipeline: in a cluster the two keys live in
    /// different slots, which a pipeline may not span.
    pub(crate) async fn invalidate(
        &self,
        bump: Option<&str>,
        delete: Option<&str>,
    ) -> Result<Option<u64>, Fault> {
        let bump = async {
            match bump {
                Some(counter) => self
                    .call(Some(counter), |mut connection| async move {
                        self.bump_command(counter)
                            .query_async::<u64>(&mut connection)
                            .await
                    })
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let delete = async {
            match delete {
                Some(entry) => {
                    self.call(Some(entry), |mut connection| async move {
                        replace::tombstone_command(entry, self.instance, self.tombstone_ttl)
                            .query_async::<()>(&mut connection)
                            .await
                    })
                    .await
                }
                None => Ok(()),
            }
        };
        let (version, deleted) = futures_util::future::join(bump, delete).await;
        deleted?;
        version
    }

    /// Tells the other processes (a second round trip: the message names the version
    /// the counter reached, so each process applies the invalidation exactly once).
    /// On a cluster `PUBLISH` goes to the master of the channel's slot, where the
    /// backplane subscribes too (no hop over the cluster bus); while that master is
    /// down or hanging, to another one, and the cluster bus carries it to every node:
    /// at once when its circuit is open, else once it has failed this message. (Only
    /// once the circuit opened did it go elsewhere, and a hanging master failed
    /// the messages of every process that sent it nothing else: the others, listening
    /// elsewhere, waited for their resync.) A message that reaches a process twice
    /// does nothing more. Signed when this process holds a secret.
    pub(crate) async fn publish(&self, message: String) -> Result<(), Fault> {
        let message = crate::l2::message::seal(message, self.protection.signer());
        if !self.is_cluster() {
            return self.publish_at(None, &message).await;
        }
        let channel = self.channel.as_str();
        if !self.breakers.for_key(Some(channel)).is_open() {
            let published = self.publish_at(None, &message).await;
            if published.is_ok() {
                return published;
            }
        }
        let owner = self.breakers.owner_of(channel);
        match self.breakers.healthy_node(owner.as_ref()) {
            Some(elsewhere) => self.publish_at(Some(elsewhere), &message).await,
            None => Err(Fault::Open),
        }
    }

    /// `PUBLISH` at the channel's master (`None`), or at the node `at`.
    async fn publish_at(&self, at: Option<(String, u16)>, message: &str) -> Result<(), Fault> {
        let channel = self.channel.as_str();
        let key = if at.is_some() { None } else { Some(channel) };
        self.call(key, |connection| async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(message);
            match (connection, at) {
                (Connection::Cluster(mut cluster), Some((host, port))) => {
                    let to = SingleNodeRoutingInfo::ByAddress { host, port };
                    cluster
                        .route_command(cmd, RoutingInfo::SingleNode(to))
                        .await
                        .map(drop)
                }
                (mut connection, _) => cmd.query_async::<()>(&mut connection).await,
            }
        })
        .await
    }

    /// Takes the lock `key` for `token` if nobody holds it (`SET NX PX`).
    pub(crate) async fn try_lock(&self, key: &str, token: &str) -> Result<bool, Fault> {
        let hold = u64::try_from(self.lock_hold.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let reply: Option<String> = self
            .call(Some(key), |mut connection| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(hold)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    /// Releases the lock `key` if `token` still holds it (it may have expired and been
    /// taken by another process since).
    pub(crate) async fn unlock(&self, key: &str, token: &str) -> Result<(), Fault> {
        const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
        self.call(Some(key), |mut connection| async move {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(key)
                .arg(token)
                .query_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }
}

/// Puts each slot's answers (in the order of [`by_slot`]'s groups) at their keys'
/// places in `places`.
fn scatter<T>(
    places: &mut [T],
    by_slot: &[Vec<usize>],
    answers: impl IntoIterator<Item = impl IntoIterator<Item = T>>,
) {
    for (indices, answer) in by_slot.iter().zip(answers) {
        for (&index, item) in indices.iter().zip(answer) {
            places[index] = item;
        }
    }
}

/// The indices of `keys` grouped by hash slot, each group in the keys' order.
/// (Sorted, not searched: a resync groups every named tag held, 100,000 or more.)
fn by_slot(keys: &[&str]) -> Vec<Vec<usize>> {
    let mut slotted: Vec<(u16, usize)> = keys
        .iter()
        .enumerate()
        .map(|(index, key)| (slot_of(key), index))
        .collect();
    slotted.sort_unstable();
    slotted
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| group.iter().map(|&(_, index)| index).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_slot_groups_each_slots_keys_in_their_order() {
        let keys = ["{a}1", "{b}1", "{a}2", "{c}1", "{b}2", "{a}3"];
        let mut groups = by_slot(&keys);
        groups.sort();
        assert_eq!(groups, [vec![0, 2, 5], vec![1, 4], vec![3]]);
        assert!(groups.iter().all(|group| group
            .iter()
            .all(|&i| slot_of(keys[i]) == slot_of(keys[group[0]]))));
    }
}
