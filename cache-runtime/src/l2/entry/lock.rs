//! The fleet-wide load lock of `#[cached(lock)]`: one process in the fleet loads a
//! missing key while the others wait for its value to reach Redis (bounded), then
//! load anyway.

use super::read::Read;
use super::target::Target;
use super::Entries;
use crate::l2::{Fault, L2};
use crate::tags::Stamps;
use crate::times::Lifetime;

/// What the fleet-wide load lock gave a leader.
pub(crate) enum Locked<V> {
    /// This process loads, and releases the lock when it is done.
    Holder(HeldLock),
    /// Another process loaded it meanwhile.
    Value {
        value: V,
        lifetime: Lifetime,
        stamps: Stamps,
    },
    /// No lock to be had in time (or Redis failed): load anyway.
    Alone,
}

static NEXT_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl<V> Read<V> {
    /// A fresh value, as the fleet lock answers with it.
    fn into_locked(self) -> Option<Locked<V>> {
        match self {
            Read::Hit {
                value,
                lifetime,
                stamps,
                ..
            } => Some(Locked::Value {
                value,
                lifetime,
                stamps,
            }),
            Read::Miss { .. } | Read::Stale { .. } | Read::Unavailable => None,
        }
    }
}

impl<K, V> Entries<'_, K, V> {
    /// One load per key for the whole fleet: take the key's lock, or wait for the
    /// holder's value to reach Redis, polling, and take the lock over if the holder
    /// let it go (or died: the lock expires). Past the wait bound, load anyway.
    ///
    /// With `recheck` (a plain miss, not a `refresh!` or due refresh, which load past
    /// what Redis holds), Redis is read once more after the lock is taken: a holder
    /// may have written its value and let go between this process's last read and
    /// its lock, and loading again then would make two loads for the fleet.
    pub(crate) async fn fleet_lock(
        &self,
        target: &Target,
        stamps: &Stamps,
        recheck: bool,
    ) -> Locked<V> {
        let key = format!("{}:lock", target.entry_key);
        let serial = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("{:016x}{serial:016x}", target.l2.instance);
        let deadline = std::time::Instant::now() + target.l2.lock_wait;
        loop {
            match target.l2.try_lock(&key, &token).await {
                Ok(true) => {
                    let held = HeldLock {
                        l2: target.l2,
                        key,
                        token,
                        released: false,
                    };
                    if !recheck {
                        return Locked::Holder(held);
                    }
                    let Some(found) = self.read(target, stamps).await.into_locked() else {
                        return Locked::Holder(held);
                    };
                    self.unlock(held).await;
                    return found;
                }
                Ok(false) => {}
                Err(fault) => {
                    self.fault(&fault);
                    return Locked::Alone;
                }
            }
            if std::time::Instant::now() >= deadline {
                tracing::debug!(cache = %self.cache, "stratacache: gave up waiting for another process's load");
                return Locked::Alone;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            match self.read(target, stamps).await {
                Read::Unavailable => return Locked::Alone,
                read => {
                    if let Some(found) = read.into_locked() {
                        return found;
                    }
                }
            }
        }
    }

    /// Releases a load lock this leader holds (best effort: it expires anyway).
    pub(crate) async fn unlock(&self, held: HeldLock) {
        if let Err(fault) = held.release().await {
            self.fault(&fault);
        }
    }
}

/// The fleet lock of a key, held by this process's leader: released when its load
/// is done or, if the load is dropped first (a call cancelled by its caller's
/// timeout), by a task. Left to expire, it would hold every process that misses the
/// key, this one's next leader too, for its whole `hold`, waiting for a value that
/// is not coming.
pub(crate) struct HeldLock {
    l2: &'static L2,
    key: String,
    token: String,
    released: bool,
}

impl HeldLock {
    /// Lets go of the lock, if this process still holds it (the token is checked).
    /// Dropped before Redis answers, the drop sends the release once more.
    pub(crate) async fn release(mut self) -> Result<(), Fault> {
        let released = self.l2.unlock(&self.key, &self.token).await;
        self.released = true;
        released
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (l2, key, token) = (
            self.l2,
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        let release = async move {
            if let Err(fault) = l2.unlock(&key, &token).await {
                tracing::debug!(%fault, "stratacache: a cancelled load's fleet lock was not released; it expires");
            }
        };
        // The Redis tier's own runtime outlives the caller's, which may be shutting
        // down (its tasks dropped, as this one).
        if let Some(runtime) =
            crate::background::tasks().or_else(|| tokio::runtime::Handle::try_current().ok())
        {
            drop(runtime.spawn(release));
        }
    }
}
