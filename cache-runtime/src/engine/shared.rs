//! The load's steps that speak to Redis, through the cache's [`Entries`]: read before
//! the load (step 1), the fleet lock (step 2), write back and announce (steps 6 and
//! 7). The protocol itself (keys, envelopes, the lock) is in `l2/entry/`; what is
//! here decides what a leader does with what Redis answered.

use std::future::Future;

use super::lead::{Lead, Settled};
use super::{Cache, CacheKey, CacheValue};
use crate::entry_changes;
use crate::l2::entry::{Entries, HeldLock, Locked, Read, SharedFallback, Target, WriteUnder};
use crate::l2::keys;
use crate::l2::message::Message;
use crate::l2::Fault;
use crate::tags::{Stamps, TagName};
use crate::times::Lifetime;
use crate::Error;

/// What the shared tier leaves a leader with, before its loader runs.
pub(super) enum Before<V> {
    /// Redis answered: the value, already landed for the waiters.
    Answered(V),
    /// Load, then write back under what was read (none: Redis did not answer, or
    /// the cache is not shared), with `fallback` for the fail-safe.
    Load {
        under: Option<WriteUnder>,
        fallback: Option<SharedFallback<V>>,
    },
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// This cache's entries in Redis; `None` for a `local` cache.
    pub(super) fn entries(&self) -> Option<Entries<'_, K, V>> {
        let shared = self.shared.as_ref()?;
        Some(Entries {
            cache: &self.name,
            stats: &self.stats,
            shared,
        })
    }

    /// The entries of a cache that gave a target: only a shared cache does.
    pub(super) fn entries_for(&self, _target: &Target) -> Entries<'_, K, V> {
        self.entries().expect("only a shared cache has targets")
    }

    /// `None` for a `local` cache, or before `init`.
    pub(super) fn shared_target(&self, key: &K, tags: &[TagName]) -> Option<Target> {
        self.entries()?.target(key, tags)
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
            // A local cache, no Redis, or a key that does not serialize: loaded
            // without a version of its counters (see `TagCell::kept_unread`).
            crate::tags::kept_unread(stamps);
            return Before::Load {
                under: None,
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
        // Each Redis step is boxed: its future is large, and unboxed it would make
        // every load's future as large, a local fill's too, costing copies per fill.
        match Box::pin(self.entries_for(target).read(target, stamps)).await {
            Read::Hit {
                value,
                lifetime,
                under,
                stamps,
            } if load_past(lead, &lifetime) => Before::Load {
                under: Some(under),
                fallback: keep(value, lifetime, stamps),
            },
            Read::Hit {
                value,
                lifetime,
                stamps,
                ..
            } => Before::Answered(lead.land_from_shared::<Out>(value, stamps, lifetime)),
            Read::Miss { under, fallback } => Before::Load {
                under: Some(under),
                fallback,
            },
            Read::Stale {
                value,
                lifetime,
                under,
                stamps,
            } => {
                lead.keep_stale(value.clone(), stamps.clone(), lifetime);
                lead.flight.offer_stale(value.clone());
                Before::Load {
                    under: Some(under),
                    fallback: keep(value, lifetime, stamps),
                }
            }
            Read::Unavailable => {
                // Loaded without a version of its counters: see `TagCell::kept_unread`.
                crate::tags::kept_unread(stamps);
                Before::Load {
                    under: None,
                    fallback: None,
                }
            }
        }
    }

    /// The second step of a load, for a `lock` cache that read Redis: the fleet lock.
    /// `Ok` with the lock to release after the write-back (or none: load without
    /// it); `Err` with the value another process loaded meanwhile, landed here.
    pub(super) async fn lock_before_load<Out: Send + 'static>(
        &self,
        lead: &mut Lead<'_, K, V>,
        target: Option<&Target>,
        stamps: &Stamps,
        read_redis: bool,
    ) -> Result<Option<HeldLock>, V> {
        let (true, Some(target), true) = (self.options.lock, target, read_redis) else {
            return Ok(None);
        };
        let recheck = !lead.flight.is_forced() && !lead.flight.is_refresh();
        match Box::pin(self.entries_for(target).fleet_lock(target, stamps, recheck)).await {
            Locked::Holder(held) => Ok(Some(held)),
            Locked::Value {
                value,
                lifetime,
                stamps,
            } => Err(lead.land_from_shared::<Out>(value, stamps, lifetime)),
            Locked::Alone => Ok(None),
        }
    }

    /// Steps 6 and 7 of a load: writes the loaded value back (under what the read
    /// before the load found, if Redis answered it), and after a `refresh!` tells the
    /// other processes to drop their copy (through the outbox, as a deletion of the
    /// entry, when Redis did not take the value). A load doomed by `put!`,
    /// `refresh!` or `invalidate!` of its key (here, or announced by another process)
    /// writes nothing: it must not write over what that wrote or deleted in Redis, as
    /// it may not store in L1. One made in another process whose message is still on
    /// its way has changed the entry in Redis, and the write, a compare-and-set over
    /// what the read found, does not land ([`replace`](crate::l2::replace)).
    ///
    /// The value has landed, retiring the flight, so a write of the key made here
    /// from then on dooms nothing: `unwritten` says whether one came, asked right
    /// before the write is sent (after the round trip for the versions of the tags
    /// the loader added, in which a `put!` whose entry expired meanwhile would
    /// otherwise be written over).
    pub(super) async fn write_back_after_load(
        &self,
        flight: &crate::flight::Flight<V>,
        target: &Target,
        value: &V,
        under: Option<WriteUnder>,
        settled: &Settled,
        unwritten: &(dyn Fn() -> bool + Sync),
    ) {
        if flight.is_doomed() {
            return;
        }
        // Not boxed here: its one caller, `store_loaded`, boxes this whole step.
        let written = match under {
            Some(under) => {
                let entries = self.entries_for(target);
                let lifetime = settled.written_lifetime(&self.options);
                entries
                    .write(target, value, under, lifetime, &settled.added, unwritten)
                    .await
            }
            // Redis failed the read before the load: nothing to write under.
            None => false,
        };
        if flight.is_forced() {
            // The others drop their copy and read this one from Redis. If Redis did
            // not take it, or the message did not go, they must drop theirs all the
            // same: the entry is deleted and they are told, now or from the outbox.
            if !written || self.announce(target).await.is_err() {
                crate::outbox::Sending::new(target.l2, self.entry_deletion(target))
                    .deliver()
                    .await;
            }
        }
    }

    /// Tells the other processes to drop their copy of this entry (a newer one is in
    /// Redis now), after moving the cache's entry-change counter, by which a process
    /// that misses the message learns that it did (`entry_changes.rs`).
    pub(super) async fn announce(&self, target: &Target) -> Result<(), Error> {
        let l2 = target.l2;
        let counter = keys::entry_changes(&l2.namespace, &self.name);
        let version = l2
            .invalidate(Some(&counter), None)
            .await
            .map_err(|fault| fault.into_error("count an entry's change"))?
            .unwrap_or(0);
        entry_changes::heard(&self.name, version);
        let message = Message::Entry {
            cache: self.name.to_string(),
            key: target.key_bytes.to_vec(),
            version,
        };
        l2.publish(message.encode(l2.instance))
            .await
            .map_err(|fault| fault.into_error("publish an entry's invalidation"))
    }

    /// Releases the fleet lock a leader holds, if it holds one.
    pub(super) fn unlock<'a>(
        &'a self,
        target: Option<&'a Target>,
        held: Option<HeldLock>,
    ) -> impl Future<Output = ()> + 'a {
        // Boxed only when there is a lock to release, so that every step that may
        // release one stays small in the load's future.
        let release = match (target, held) {
            (Some(target), Some(held)) => {
                let entries = self.entries_for(target);
                Some(Box::pin(async move { entries.unlock(held).await }))
            }
            _ => None,
        };
        async move {
            if let Some(release) = release {
                release.await;
            }
        }
    }

    pub(super) fn fault(&self, fault: &Fault) {
        crate::l2::entry::count_fault(&self.name, &self.stats, fault);
    }
}
