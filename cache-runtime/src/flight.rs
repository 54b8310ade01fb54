//! One in-flight load that concurrent callers of the same key wait on.
//!
//! The loader runs inside the future of the caller that started it (the leader), so
//! it may borrow that caller's arguments; nothing is spawned. Waiters only wait. If
//! the leader is dropped (cancelled) or its outcome cannot be shared, the flight lands
//! as `Retry` and the waiters go round again: one of them becomes the next leader.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::sync::{AtomicBool, Mutex, Notify};

use crate::tags::{self, Stamps};

/// Where a flight's value came from, for the stats of everyone who waited on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Loader,
    L2,
    /// The load failed; a fail-safe value answered.
    FailSafe,
}

impl Origin {
    pub(crate) fn counter(self) -> crate::stats::Counter {
        match self {
            Origin::Loader | Origin::FailSafe => crate::stats::Counter::Miss,
            Origin::L2 => crate::stats::Counter::L2Hit,
        }
    }
}

pub(crate) enum Landed<V, Out> {
    Value(V, Origin),
    /// A batch load had nothing for this key (and does not cache that).
    Absent,
    Shared(Out),
    Retry,
    Panicked(Arc<str>),
}

/// A landing as the flight keeps it: a shared outcome is type-erased, because one
/// cache may serve functions of different return types (a single-key function and a
/// batch function sharing entries through `name`); a waiter whose function returns
/// another type treats it as a retry.
enum Kept<V> {
    Value(V, Origin),
    Absent,
    Shared(Box<dyn Any + Send>),
    Retry,
    Panicked(Arc<str>),
}

pub(crate) struct Flight<V> {
    landed: Mutex<Option<Kept<V>>>,
    done: Notify,
    /// The tag versions the load recorded before it started; unset until then.
    stamps: OnceLock<Stamps>,
    /// Set when the key was invalidated while this load ran: its value must not be stored.
    doomed: AtomicBool,
    /// A stale value the leader found in Redis: callers that may be answered stale
    /// take it at once while the load goes on.
    stale: Mutex<Option<V>>,
    /// A background refresh of a value still held (not a miss).
    refresh: bool,
    /// A `refresh!`: load even though a fresh value may be held here or in Redis.
    forced: bool,
}

impl<V: Clone> Flight<V> {
    /// A flight that refreshes a value still held, in the background.
    pub(crate) fn refresh() -> Self {
        Self {
            refresh: true,
            ..Self::new()
        }
    }

    pub(crate) fn is_refresh(&self) -> bool {
        self.refresh
    }

    /// A load asked for by `refresh!`, which must not be answered by a held value.
    pub(crate) fn forced() -> Self {
        Self {
            forced: true,
            ..Self::new()
        }
    }

    pub(crate) fn is_forced(&self) -> bool {
        self.forced
    }

    pub(crate) fn new() -> Self {
        Self {
            landed: Mutex::new(None),
            done: Notify::new(),
            stamps: OnceLock::new(),
            doomed: AtomicBool::new(false),
            stale: Mutex::new(None),
            refresh: false,
            forced: false,
        }
    }

    pub(crate) fn set_stamps(&self, stamps: Stamps) {
        let _ = self.stamps.set(stamps);
    }

    /// A caller may join this load only if no tag it recorded was invalidated since:
    /// a load that started before an invalidation must not answer a call made after it.
    pub(crate) fn can_join(&self) -> bool {
        !self.is_doomed() && self.stamps.get().is_none_or(|s| tags::all_current(s))
    }

    pub(crate) fn doom(&self) {
        self.doomed.store(true, Ordering::Release);
    }

    pub(crate) fn is_doomed(&self) -> bool {
        self.doomed.load(Ordering::Acquire)
    }

    pub(crate) fn land<Out: Send + 'static>(&self, landed: Landed<V, Out>) {
        let kept = match landed {
            Landed::Value(value, origin) => Kept::Value(value, origin),
            Landed::Absent => Kept::Absent,
            Landed::Shared(out) => Kept::Shared(Box::new(out)),
            Landed::Retry => Kept::Retry,
            Landed::Panicked(message) => Kept::Panicked(message),
        };
        *self.landed.lock() = Some(kept);
        self.done.notify_waiters();
    }

    pub(crate) fn offer_stale(&self, value: V) {
        *self.stale.lock() = Some(value);
        self.done.notify_waiters();
    }

    /// Waits until the leader offers a stale value (forever, if it never does).
    pub(crate) async fn stale_offered(&self) -> V {
        loop {
            let notified = self.done.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = self.stale.lock().as_ref() {
                return value.clone();
            }
            notified.await;
        }
    }

    /// Waits for the leader's outcome. Cancel-safe: dropping a waiter affects nobody.
    pub(crate) async fn wait<Out: 'static>(
        &self,
        share: Option<fn(&Out) -> Out>,
    ) -> Landed<V, Out> {
        loop {
            let notified = self.done.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before looking, so a landing between the look and the await wakes us.
            notified.as_mut().enable();
            if let Some(landed) = self.peek(share) {
                return landed;
            }
            notified.await;
        }
    }

    fn peek<Out: 'static>(&self, share: Option<fn(&Out) -> Out>) -> Option<Landed<V, Out>> {
        Some(match self.landed.lock().as_ref()? {
            Kept::Value(value, origin) => Landed::Value(value.clone(), *origin),
            Kept::Absent => Landed::Absent,
            Kept::Shared(out) => match (share, out.downcast_ref::<Out>()) {
                (Some(share), Some(out)) => Landed::Shared(share(out)),
                _ => Landed::Retry,
            },
            Kept::Retry => Landed::Retry,
            Kept::Panicked(message) => Landed::Panicked(message.clone()),
        })
    }
}
