//! The entry operations besides `invalidate!`: `put!` (write-through), `refresh!`
//! (reload now), `peek!` and `contains!` (look, never load). They go through the same
//! flights, stamps and Redis steps as a call, so tags, invalidations and stats hold.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;

use super::{Cache, CacheKey, CacheValue, Seen, Tags};
use crate::flight::Flight;
use crate::l1::L1Store;
use crate::l2::entry::{AddedTags, Target, WriteUnder};
use crate::outbox::Sending;
use crate::stats::Counter;
use crate::superseded::Writing;
use crate::warm_tally::Tally;
use crate::Error;

thread_local! {
    /// Set by [`refresh`] around the first poll of a call, taken by the first cached
    /// call that starts in it.
    static RELOAD_REQUESTED: Cell<bool> = const { Cell::new(false) };
    /// Set by [`observed`] around the first poll of a batch call, taken by it.
    static BATCH_TALLY: RefCell<Option<Arc<Tally>>> = const { RefCell::new(None) };
}

/// The warm-up tally the batch call starting now reports to, if any.
pub(super) fn take_tally() -> Option<Arc<Tally>> {
    BATCH_TALLY.with(|tally| tally.borrow_mut().take())
}

/// A batch call that reports each key's outcome to `tally`.
pub(crate) fn observed<F: Future>(call: F, tally: Arc<Tally>) -> impl Future<Output = F::Output> {
    around_first_poll(
        call,
        move || BATCH_TALLY.with(|slot| *slot.borrow_mut() = Some(tally)),
        || drop(BATCH_TALLY.with(|slot| slot.borrow_mut().take())),
    )
}

/// True once if the call starting now was wrapped by `refresh!`.
#[inline]
pub(super) fn reload_requested() -> bool {
    RELOAD_REQUESTED.with(|requested| requested.get() && requested.replace(false))
}

/// `refresh!`'s request that the call made now, on this thread, load whatever is
/// held. A sync function's call takes it at once; an `async fn`'s call only makes its
/// future, so [`reloading`] hands the request on to that future's first poll. It is
/// withdrawn when dropped, so a request nobody took (the call panicked, or made a
/// future) never reaches a later call.
pub struct ReloadRequest(());

impl ReloadRequest {
    /// Requests a reload of the next cached call on this thread.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RELOAD_REQUESTED.with(|requested| requested.set(true));
        Self(())
    }
}

impl Drop for ReloadRequest {
    fn drop(&mut self) {
        RELOAD_REQUESTED.with(|requested| requested.set(false));
    }
}

/// `refresh!(f(args))`: the call's future (see `as_future.rs`), made
/// while `request` stood, polled the first time under the request again. A cached
/// `async fn` takes it in that poll; a sync function's call took it as it was made,
/// so its future is ready and the request around its poll goes unused.
pub fn reloading<F: Future>(request: ReloadRequest, call: F) -> impl Future<Output = F::Output> {
    drop(request);
    around_first_poll(
        call,
        || RELOAD_REQUESTED.with(|requested| requested.set(true)),
        || RELOAD_REQUESTED.with(|requested| requested.set(false)),
    )
}

/// `call`, with `begin` run before its first poll and `end` after it. A cached
/// function looks its key up in its first poll, before any `.await`, so what `begin`
/// leaves in a thread-local reaches that call and no other (a cached call nested in
/// the loader starts later; `end` clears what nobody took).
fn around_first_poll<F: Future>(
    call: F,
    begin: impl FnOnce(),
    end: impl FnOnce(),
) -> impl Future<Output = F::Output> {
    let mut call = Box::pin(call);
    let mut hooks = Some((begin, end));
    std::future::poll_fn(move |cx| match hooks.take() {
        Some((begin, end)) => {
            begin();
            let poll = call.as_mut().poll(cx);
            end();
            poll
        }
        None => call.as_mut().poll(cx),
    })
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// A `refresh!`'s flight: it loads `key` now, past any value held here or in
    /// Redis. A load already in flight may not store its (older) value; callers
    /// arriving meanwhile join this one. The new value goes to Redis and the other
    /// processes drop their copy.
    pub(super) fn reload_flight(&self, key: &K) -> Arc<Flight<V>> {
        self.flights.lock().replace(key.clone(), Flight::forced())
    }

    /// A `refresh!`, or a background refresh (stale-while-revalidate, refresh-ahead),
    /// whose load gives nothing to cache (a `None` not cached, a value the loader
    /// skipped or `validate` refused) still supersedes the value it was to replace:
    /// evicts it here before the landing, so no caller is answered with it after;
    /// true if so (then [`drop_refreshed_in_redis`](Self::drop_refreshed_in_redis)
    /// follows). Kept, a deleted row was served to the end of its windows, and each
    /// call in them started a load of its own. A failed load is no answer about the
    /// data: it leaves the entry (a fail-safe value, a stale one).
    pub(super) fn evict_refreshed(&self, key: &K, flight: &Flight<V>) -> bool {
        if !flight.is_forced() && !flight.is_refresh() {
            return false;
        }
        let _flights = self.flights.lock();
        // A `put!` or an invalidation since the load began dooms it: what the `put!`
        // stored is newer than what this load found, and stays.
        if flight.is_doomed() {
            return false;
        }
        self.store.remove(key);
        self.stats.bump(Counter::Invalidation);
        true
    }

    /// A refresh that found nothing to cache, evicted here already: the entry in
    /// Redis goes too, and the other processes drop their copy, as after an
    /// `invalidate!` (now, or from the outbox once Redis answers). A read here between
    /// the eviction and Redis's deletion may have kept the old value from Redis: it
    /// is evicted again once the deletion is delivered or queued (and a queued one
    /// makes reads here of that entry misses until it is delivered). A `put!` made in
    /// that millisecond is dropped with it: a miss, never a stale read.
    pub(super) async fn drop_refreshed_in_redis(&self, key: &K, target: Option<&Target>) {
        if let Some(target) = target {
            crate::outbox::Sending::new(target.l2, self.entry_deletion(target))
                .deliver()
                .await;
            self.evict_local(key);
        }
    }

    /// Write-through: stores `value` for `key` here and in Redis, as a load would
    /// (stamped with the current versions of its tags), and tells the other processes
    /// to drop their copy. A load in flight may no longer store its older value.
    /// If Redis cannot take the value, the entry there is deleted and the others are
    /// told to drop their copy, now or from the outbox once Redis answers (or once
    /// the future is dropped, if it is dropped first): the future returns `Ok` either
    /// way (this process holds the value all the same).
    pub fn put(
        &'static self,
        key: K,
        tags: Tags,
        value: V,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let stamps = self.stamp(&tags);
        let target = self.shared_target(&key, &tags);
        // Until Redis takes the value, what it holds is older than L1's: a load here
        // that reads it meanwhile (a refresh of this value, stale already) misses.
        let writing = target.as_ref().map(|t| Writing::new(&t.entry_key));
        {
            let mut flights = self.flights.lock();
            flights.doom(&key);
            let entry = self.entry(value.clone(), &stamps, None);
            self.store.insert(key.clone(), entry);
        }
        // Armed now: dropped before the value reached Redis and the others (it may
        // have reached neither), the future leaves the deletion to the outbox.
        let deletion = target.as_ref().zip(writing).map(|(target, writing)| {
            Sending::new(target.l2, self.entry_deletion(target)).covering(writing)
        });
        async move {
            let (Some(target), Some(deletion)) = (target, deletion) else {
                return Ok(());
            };
            let written = match target.tag_versions().await {
                Ok(versions) => {
                    let lifetime = self.options.lifetime();
                    // The newest value: it replaces whatever Redis holds.
                    let under = WriteUnder::newest(versions);
                    self.entries_for(&target)
                        .write(
                            &target,
                            &value,
                            under,
                            lifetime,
                            &AddedTags::default(),
                            &|| true,
                        )
                        .await
                }
                Err(fault) => {
                    self.fault(&fault);
                    false
                }
            };
            if written && self.announce(&target).await.is_ok() {
                deletion.cancel();
                return Ok(());
            }
            // The others must not keep serving what this replaced.
            deletion.deliver().await;
            Ok(())
        }
    }

    /// The fresh value for `key`, from L1 or else Redis, without loading, promoting
    /// or counting a hit or miss (an unusable value in Redis is counted, as always).
    pub fn peek(
        &'static self,
        key: K,
        tags: Tags,
    ) -> impl Future<Output = Option<V>> + Send + 'static {
        let local = match self.lookup(&key) {
            Seen::Fresh(value) | Seen::Refresh(value) => Some(value),
            Seen::Stale(_) | Seen::Gone => None,
        };
        let remote = match local {
            Some(_) => None,
            None => self
                .shared_target(&key, &tags)
                .map(|target| (target, self.stamp(&tags))),
        };
        async move {
            if local.is_some() {
                return local;
            }
            let (target, stamps) = remote?;
            match self.entries_for(&target).read(&target, &stamps).await {
                crate::l2::entry::Read::Hit { value, .. } => Some(value),
                _ => None,
            }
        }
    }
}
