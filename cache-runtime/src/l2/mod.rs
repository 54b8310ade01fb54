//! The Redis tier: one connection per process (standalone or cluster, see
//! [`connection`]; both reconnect by themselves), a short timeout on every call, and a
//! circuit breaker. A fault is a [`Fault`], which the engine turns into a miss: Redis
//! is never the reason a call fails.

pub(crate) mod breaker;
pub mod codec;
pub(crate) mod connection;
pub(crate) mod counters;
pub(crate) mod envelope;
pub(crate) mod keys;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster_routing::Slot;

use self::breaker::Breaker;
use self::codec::PayloadFormat;
use self::connection::Connection;
pub(crate) use self::counters::parse_versions;

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
    /// One client per configured node: the backplane subscribes through the first
    /// that answers (in a cluster, a message published on any node reaches all).
    pub(crate) subscribers: Vec<redis::Client>,
    connection: parking_lot::RwLock<Connection>,
    /// On a cluster: how to connect afresh (see [`L2::renew_if_stuck`]).
    cluster: Option<ClusterSetup>,
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

struct ClusterSetup {
    client: redis::cluster::ClusterClient,
    config: redis::cluster::ClusterConfig,
    renewed_at: std::sync::atomic::AtomicU64,
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
    /// A CA certificate (PEM) that `rediss://` servers are verified against.
    pub(crate) tls_root_cert: Option<Vec<u8>>,
}

impl L2 {
    /// Connects lazily (nothing waits for Redis here): one node URL is a standalone
    /// server, several (or `cluster`) are seed nodes of a Redis Cluster.
    pub(crate) fn new(
        urls: &[String],
        cluster: bool,
        settings: Settings,
    ) -> redis::RedisResult<Self> {
        let subscribers = urls
            .iter()
            .map(|url| connection::client(url, settings.tls_root_cert.as_deref()))
            .collect::<redis::RedisResult<Vec<_>>>()?;
        let mut cluster_setup = None;
        let connection = if cluster || urls.len() > 1 {
            let builder = redis::cluster::ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .retries(1);
            let client = connection::with_cluster_root(builder, settings.tls_root_cert.as_deref())
                .build()?;
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(settings.timeout)
                .set_response_timeout(settings.timeout);
            let connection = client.get_pending_async_connection_with_config(config.clone());
            cluster_setup = Some(ClusterSetup {
                client,
                config,
                renewed_at: Default::default(),
            });
            Connection::Cluster(connection)
        } else {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.timeout))
                .set_response_timeout(Some(settings.timeout))
                .set_number_of_retries(1);
            let client = subscribers[0].clone();
            Connection::Standalone(ConnectionManager::new_lazy_with_config(client, config)?)
        };
        let instance =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        Ok(Self {
            channel: keys::channel(&settings.namespace),
            namespace: settings.namespace,
            subscribers,
            connection: parking_lot::RwLock::new(connection),
            cluster: cluster_setup,
            timeout: settings.timeout,
            max_payload: settings.max_payload,
            format: settings.format,
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cooldown),
            instance,
            lock_hold: settings.lock_hold,
            lock_wait: settings.lock_wait,
        })
    }

    /// Lets the next call through even if the circuit is open: the outbox's delivery
    /// task probes at its own pace while invalidations wait.
    pub(crate) fn let_probe_through(&self) {
        self.breaker.allow_probe_now();
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// While the circuit is open on a cluster, connects afresh once per cooldown: the
    /// cluster client reconnects to a node that went away, but seen here to keep timing
    /// out on a node that came back, so a new client (which rereads the slot map from
    /// the seed nodes) is cheaper than trusting the old one to recover.
    fn renew_if_stuck(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if !self.breaker.is_open() {
            return;
        }
        let now = crate::clock::coarse_ms();
        let last = cluster
            .renewed_at
            .load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) < self.breaker.cooldown_ms() {
            return;
        }
        if cluster
            .renewed_at
            .compare_exchange(
                last,
                now,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
        {
            let fresh = cluster
                .client
                .get_pending_async_connection_with_config(cluster.config.clone());
            *self.connection.write() = Connection::Cluster(fresh);
            tracing::info!("stratacache: Redis Cluster keeps failing; connecting afresh");
        }
    }

    /// Runs one call through the breaker and the timeout.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, Fault>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(Fault::Open);
        }
        let connection = self.connection.read().clone();
        match tokio::time::timeout(self.timeout, op(connection)).await {
            Ok(Ok(value)) => {
                self.breaker.success();
                Ok(value)
            }
            Ok(Err(error)) => {
                self.breaker.failure();
                self.renew_if_stuck();
                Err(Fault::Redis(error))
            }
            Err(_) => {
                self.breaker.failure();
                self.renew_if_stuck();
                Err(Fault::Timeout)
            }
        }
    }

    /// One command, one round trip: `MGET entry tag-counter...`, the entry and the
    /// current versions of its tags, created where missing (a second round trip, the
    /// first time a tag is loaded; see [`counters`]). (A pipeline of GET + MGET costs
    /// a second command and reply on every L2 hit.)
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
    /// cluster, one `MGET` per hash slot (a command may not span slots), all sent at
    /// once, so the call costs one round trip to each node involved, in parallel.
    /// (redis-rs can split a multi-slot `MGET` itself, but its retry after a node
    /// failure re-sends the whole command and then cannot match the replies.)
    pub(crate) async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Fault> {
        let replies = self
            .call(|connection| async move {
                if !connection.is_cluster() {
                    // Sized at once: a batch's hundred keys would regrow it ten times.
                    let bytes = keys.iter().map(|key| key.len()).sum::<usize>();
                    let mut cmd = redis::Cmd::with_capacity(keys.len() + 1, bytes + 4);
                    return cmd
                        .arg("MGET")
                        .arg(keys)
                        .query_async::<Vec<Option<Vec<u8>>>>(&mut connection.clone())
                        .await;
                }
                let mut by_slot: Vec<(Slot, Vec<usize>)> = Vec::new();
                for (index, key) in keys.iter().enumerate() {
                    let slot = Slot::for_key(key);
                    match by_slot.iter_mut().find(|(s, _)| *s == slot) {
                        Some((_, indices)) => indices.push(index),
                        None => by_slot.push((slot, vec![index])),
                    }
                }
                let requests = by_slot.iter().map(|(_, indices)| {
                    let mut connection = connection.clone();
                    let mut cmd = redis::cmd("MGET");
                    for &index in indices {
                        cmd.arg(keys[index]);
                    }
                    async move {
                        cmd.query_async::<Vec<Option<Vec<u8>>>>(&mut connection)
                            .await
                    }
                });
                let answers = futures_util::future::try_join_all(requests).await?;
                let mut replies = vec![None; keys.len()];
                for ((_, indices), answer) in by_slot.iter().zip(answers) {
                    for (&index, reply) in indices.iter().zip(answer) {
                        replies[index] = reply;
                    }
                }
                Ok(replies)
            })
            .await?;
        if replies.len() == keys.len() {
            Ok(replies)
        } else {
            Err(Fault::Malformed)
        }
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

    /// Several `SET key value [PX ttl]` at once: one pipeline on a standalone server;
    /// on a cluster one command per key (a pipeline may not span slots), sent together.
    pub(crate) async fn write_many(
        &self,
        items: &[(&str, Vec<u8>, Option<u64>)],
    ) -> Result<(), Fault> {
        let set = |key: &str, bytes: &[u8], ttl_ms: Option<u64>| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(bytes);
            if let Some(ttl_ms) = ttl_ms {
                cmd.arg("PX").arg(ttl_ms.max(1));
            }
            cmd
        };
        self.call(|connection| async move {
            if connection.is_cluster() {
                let writes = items.iter().map(|(key, bytes, ttl)| {
                    let mut connection = connection.clone();
                    let cmd = set(key, bytes, *ttl);
                    async move { cmd.query_async::<()>(&mut connection).await }
                });
                futures_util::future::try_join_all(writes).await.map(drop)
            } else {
                let mut pipe = redis::pipe();
                for (key, bytes, ttl) in items {
                    pipe.add_command(set(key, bytes, *ttl)).ignore();
                }
                pipe.query_async::<()>(&mut connection.clone()).await
            }
        })
        .await
    }

    /// Current versions of tag counters as they are ([`counters::MISSING`] where
    /// Redis holds none), in chunks of one call each.
    pub(crate) async fn versions(&self, tag_keys: &[String]) -> Result<Vec<u64>, Fault> {
        let mut all = Vec::with_capacity(tag_keys.len());
        for chunk in tag_keys.chunks(512) {
            let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
            all.extend(parse_versions(self.mget(&keys).await?)?);
        }
        Ok(all)
    }

    /// Bumps a tag counter and/or deletes an entry; returns the counter's new version.
    /// Two commands sent at once, not a pipeline: in a cluster the two keys live in
    /// different slots, which a pipeline may not span.
    pub(crate) async fn invalidate(
        &self,
        bump: Option<&str>,
        delete: Option<&str>,
    ) -> Result<Option<u64>, Fault> {
        self.call(|connection| async move {
            let bump = async {
                match bump {
                    Some(counter) => L2::bump_command(counter)
                        .query_async::<u64>(&mut connection.clone())
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            };
            let delete = async {
                match delete {
                    Some(entry) => {
                        redis::cmd("DEL")
                            .arg(entry)
                            .query_async::<()>(&mut connection.clone())
                            .await
                    }
                    None => Ok(()),
                }
            };
            let (version, deleted) = futures_util::future::join(bump, delete).await;
            deleted?;
            version
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
}

/// Unix time in milliseconds: the envelope's times cross processes.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
