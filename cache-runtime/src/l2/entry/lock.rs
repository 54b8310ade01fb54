//! The fleet-wide load lock of `#[cached(lock)]`: one process in the fleet loads a
//! missing key while the others wait for its value to reach Redis (bounded), then
//! load anyway.

use super::read::Read;
use super::target::Target;
use super::Entries;
use crate::tags::Stamps;
use crate::times::Lifetime;

/// What the fleet-wide load lock gave a leader.
pub(crate) enum Locked<V> {
    /// This process loads; release with the lock key and token.
    Holder { key: String, token: String },
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
                Ok(true) if recheck => {
                    let Some(found) = self.read(target, stamps).await.into_locked() else {
                        return Locked::Holder { key, token };
                    };
                    if let Err(fault) = target.l2.unlock(&key, &token).await {
                        self.fault(&fault);
                    }
                    return found;
                }
                Ok(true) => return Locked::Holder { key, token },
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
    pub(crate) async fn unlock(&self, target: &Target, (key, token): (String, String)) {
        if let Err(fault) = target.l2.unlock(&key, &token).await {
            self.fault(&fault);
        }
    }
}
