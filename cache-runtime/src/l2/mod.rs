//! The Redis tier: one connection manager per process (it reconnects by itself),
//! a short timeout on every call, and a circuit breaker. A fault is a [`Fault`],
//! which the engine turns into a miss: Redis is never the reason a call fails.

pub(crate) mod breaker;
pub mod codec;
pub(crate) mod envelope;
pub(crate) mod keys;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::ConnectionManager;

use self::breaker::Breaker;
use self::codec::PayloadFormat;

/// Why a Redis call did not answer.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The circuit is open: Redis was not asked.
    Open,
    Timeout,
    Redis(redis::RedisError),
    /// A reply of the wrong shape (a tag counter that is not a number, say).
    Malformed,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Open => f.write_str("circuit open after repeated Redis failures"),
            Fault::Timeout => f.write_str("Redis call timed out"),
            Fault::Redis(error) => write!(f, "{error}"),
            Fault::Malformed => f.write_str("unexpected reply from Redis"),
        }
    }
}

pub(crate) struct L2 {
    pub(crate) namespace: String,
    pub(crate) client: redis::Client,
    connection: ConnectionManager,
    timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) format: PayloadFormat,
    breaker: Breaker,
    /// Identifies this process's own backplane messages.
    pub(crate) instance: u64,
    pub(crate) channel: String,
    /// Fleet-wide stampede lock: how long a holder may hold it, how long others wait.
    pub(crate) lock_hold: Duration,
    pub(crate) lock_wait: Duration,
}

static ACTIVE: OnceLock<L2> = OnceLock::new();

/// The Redis tier, once `init` has set it up.
#[inline]
pub(crate) fn active() -> Option<&'static L2> {
    ACTIVE.get()
}

/// Installs the process's Redis tier; `None` if one is already installed.
pub(crate) fn activate(l2: L2) -> Option<&'static L2> {
    let mut l2 = Some(l2);
    let active = ACTIVE.get_or_init(|| l2.take().expect("taken once"));
    l2.is_none().then_some(active)
}

pub(crate) struct Settings {
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) format: PayloadFormat,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) lock_hold: Duration,
    pub(crate) lock_wait: Duration,
}

impl L2 {
    pub(crate) fn new(client: redis::Client, settings: Settings) -> redis::RedisResult<Self> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let instance =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        Ok(Self {
            channel: keys::channel(&settings.namespace),
            namespace: settings.namespace,
            client,
            connection,
            timeout: settings.timeout,
            max_payload: settings.max_payload,
            format: settings.format,
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cooldown),
            instance,
            lock_hold: settings.lock_hold,
            lock_wait: settings.lock_wait,
        })
    }

    /// Runs one call through the breaker and the timeout.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, Fault>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(Fault::Open);
        }
        match tokio::time::timeout(self.timeout, op(self.connection.clone())).await {
            Ok(Ok(value)) => {
                self.breaker.success();
                Ok(value)
            }
            Ok(Err(error)) => {
                self.breaker.failure();
                Err(Fault::Redis(error))
            }
            Err(_) => {
                self.breaker.failure();
                Err(Fault::Timeout)
            }
        }
    }

    /// One command, one round trip: `MGET entry tag-counter...`, the entry and the
    /// current versions of its tags. (A pipeline of GET + MGET costs a second
    /// command and reply on every L2 hit.)
    pub(crate) async fn read(
        &self,
        entry_key: &str,
        tag_keys: &[String],
    ) -> Result<(Option<Vec<u8>>, Vec<u64>), Fault> {
        let mut replies: Vec<Option<Vec<u8>>> = self
            .call(|mut connection| async move {
                redis::cmd("MGET")
                    .arg(entry_key)
                    .arg(tag_keys)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        if replies.len() != tag_keys.len() + 1 {
            return Err(Fault::Malformed);
        }
        let versions = replies
            .drain(1..)
            .map(|reply| {
                reply.map_or(Some(0), |bytes| {
                    std::str::from_utf8(&bytes).ok()?.parse().ok()
                })
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or(Fault::Malformed)?;
        Ok((replies.pop().flatten(), versions))
    }

    pub(crate) async fn write(
        &self,
        entry_key: &str,
        bytes: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<(), Fault> {
        self.call(|mut connection| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(entry_key).arg(bytes);
            if let Some(ttl_ms) = ttl_ms {
                cmd.arg("PX").arg(ttl_ms.max(1));
            }
            cmd.query_async::<()>(&mut connection).await
        })
        .await
    }

    /// Current versions of tag counters (a resync), in chunks of one round trip each.
    pub(crate) async fn versions(&self, tag_keys: &[String]) -> Result<Vec<u64>, Fault> {
        let mut all = Vec::with_capacity(tag_keys.len());
        for chunk in tag_keys.chunks(512) {
            let versions: Vec<Option<u64>> = self
                .call(|mut connection| async move {
                    redis::cmd("MGET")
                        .arg(chunk)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            all.extend(versions.into_iter().map(Option::unwrap_or_default));
        }
        Ok(all)
    }

    /// Bumps a tag counter and/or deletes an entry; returns the counter's new version.
    pub(crate) async fn invalidate(
        &self,
        bump: Option<&str>,
        delete: Option<&str>,
    ) -> Result<Option<u64>, Fault> {
        self.call(|mut connection| async move {
            let mut pipe = redis::pipe();
            if let Some(counter) = bump {
                pipe.incr(counter, 1);
            }
            if let Some(entry) = delete {
                pipe.del(entry).ignore();
            }
            let replies: Vec<u64> = pipe.query_async(&mut connection).await?;
            Ok(replies.first().copied())
        })
        .await
    }

    /// Tells the other processes (a second round trip: the message names the version
    /// the counter reached, so each process applies the invalidation exactly once).
    pub(crate) async fn publish(&self, message: String) -> Result<(), Fault> {
        self.call(|mut connection| async move {
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(message)
                .query_async::<()>(&mut connection)
                .await
        })
        .await
    }

    /// Takes the lock `key` for `token` if nobody holds it (`SET NX PX`).
    pub(crate) async fn try_lock(&self, key: &str, token: &str) -> Result<bool, Fault> {
        let hold = u64::try_from(self.lock_hold.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let reply: Option<String> = self
            .call(|mut connection| async move {
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
        self.call(|mut connection| async move {
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

    pub(crate) fn entry_key(&self, cache: &str, version: u32, key_bytes: &[u8]) -> String {
        keys::entry(&self.namespace, cache, version, key_bytes)
    }
}

/// Unix time in milliseconds: the envelope's times cross processes.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
