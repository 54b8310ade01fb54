//! The Redis tier: one connection per process (standalone or cluster, see
//! [`connection`]; both reconnect by themselves, and [`renewal`] connects afresh where
//! they would not), a short timeout on every call, and circuit breakers (one per
//! cluster master, see [`routing`]). A fault is a [`Fault`], which the engine turns
//! into a miss: Redis is never the reason a call fails.

pub(crate) mod breaker;
pub mod codec;
mod commands;
pub(crate) mod connection;
pub(crate) mod counters;
pub(crate) mod entry;
pub(crate) mod envelope;
pub(crate) mod fingerprint;
pub(crate) mod keys;
pub(crate) mod message;
pub(crate) mod protection;
mod renewal;
pub(crate) mod replace;
mod resync_reads;
pub(crate) mod routing;
pub(crate) mod runs;
pub(crate) mod secrets;
mod shape_tracer;
mod sliding;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::error::Elapsed;

use self::codec::PayloadFormat;
use self::connection::Connection;
pub(crate) use self::counters::parse_versions;
use self::renewal::{runtime_sentinel, ClusterSetup, StandaloneSetup};
pub(crate) use self::resync_reads::Node;
use self::routing::Breakers;

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

impl std::error::Error for Fault {}

impl Fault {
    /// The public error for `operation` failing with this fault: its source is the
    /// Redis client's own error where there is one (so it downcasts to
    /// `redis::RedisError`), else the timeout or the open circuit.
    pub(crate) fn into_error(self, operation: &'static str) -> crate::Error {
        let source: Box<dyn std::error::Error + Send + Sync> = match self {
            Fault::Redis(error) => Box::new(error),
            other => Box::new(other),
        };
        crate::Error::Redis { operation, source }
    }
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
    /// Shared with a connection being made afresh beside it (`renewal.rs`).
    connection: Arc<parking_lot::RwLock<Connection>>,
    /// On a cluster: how to connect afresh (see [`L2::renew_if_stuck`]).
    cluster: Option<ClusterSetup>,
    /// On a standalone server: the same (see [`L2::renew_if_read_only`]).
    standalone: Option<StandaloneSetup>,
    timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) format: PayloadFormat,
    /// Compression, signing and encryption of what this process writes and reads.
    pub(crate) protection: protection::Protection,
    breakers: Breakers,
    /// The resync reads under way at each node (see [`L2::versions_as_answered`]).
    resync_reads: resync_reads::ResyncReads,
    /// Identifies this process's own backplane messages.
    pub(crate) instance: u64,
    pub(crate) channel: String,
    /// Fleet-wide stampede lock: how long a holder may hold it, how long others wait.
    pub(crate) lock_hold: Duration,
    pub(crate) lock_wait: Duration,
    /// An `invalidate!`'s tombstone's life (see [`replace`]).
    tombstone_ttl: Duration,
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
    let installed = l2.is_none();
    if installed {
        crate::tags::track_remote_versions();
    }
    installed.then_some(active)
}

pub(crate) struct Settings {
    pub(crate) namespace: String,
    pub(crate) timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) format: PayloadFormat,
    pub(crate) protection: protection::Protection,
    pub(crate) breaker_threshold: u32,
    pub(crate) breaker_cooldown: Duration,
    pub(crate) lock_hold: Duration,
    pub(crate) lock_wait: Duration,
    pub(crate) tombstone_ttl: Duration,
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
        let (mut cluster_setup, mut standalone_setup) = (None, None);
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
                runtime_alive: Arc::new(parking_lot::RwLock::new(runtime_sentinel())),
            });
            Connection::Cluster(connection)
        } else {
            // No retry of a failed connect: its back-off (100 to 200 ms) would be
            // waited out by the call that asked, on every miss while the server is
            // stopped. The next call connects again; the breaker spaces them out.
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.timeout))
                .set_response_timeout(Some(settings.timeout))
                .set_number_of_retries(0);
            let setup = StandaloneSetup {
                client: subscribers[0].clone(),
                config,
                renewed_at: Default::default(),
            };
            let connection = setup.connect()?;
            standalone_setup = Some(setup);
            connection
        };
        let instance =
            std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        Ok(Self {
            channel: keys::channel(&settings.namespace),
            namespace: settings.namespace,
            subscribers,
            connection: Arc::new(parking_lot::RwLock::new(connection)),
            cluster: cluster_setup,
            standalone: standalone_setup,
            timeout: settings.timeout,
            max_payload: settings.max_payload,
            format: settings.format,
            protection: settings.protection,
            breakers: Breakers::new(settings.breaker_threshold, settings.breaker_cooldown),
            resync_reads: resync_reads::ResyncReads::default(),
            instance,
            lock_hold: settings.lock_hold,
            lock_wait: settings.lock_wait,
            tombstone_ttl: settings.tombstone_ttl,
        })
    }

    /// Lets the next call through even if the circuit is open: the outbox's delivery
    /// task probes at its own pace while invalidations wait.
    pub(crate) fn let_probe_through(&self) {
        self.breakers.allow_probe_now();
    }

    /// How long after its read of Redis a load may still write back: half a
    /// tombstone's life, so that every tombstone an invalidation made after the read
    /// is still there when the write lands (see [`replace`]).
    pub(crate) fn write_back_window(&self) -> Duration {
        self.tombstone_ttl / 2
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// Whether a circuit is open now: a master (or the server) is down or hanging.
    pub(crate) fn any_circuit_open(&self) -> bool {
        self.breakers.any_open()
    }

    /// The node that holds `key`: on a cluster its master, as the slot map knows it
    /// ([`Node`] says what the index means), and `None` for a standalone server.
    pub(crate) fn node_of(&self, key: &str) -> Node {
        if !self.is_cluster() {
            return None;
        }
        self.breakers.master_of(routing::slot_of(key))
    }

    /// Runs one call through the breaker of the node that holds `key` (the shared
    /// one for no key, or a standalone server) and the timeout. A call's keys all
    /// live on one node: the callers split multi-node work into one call per slot.
    async fn call<T, F, Fut>(&self, key: Option<&str>, op: F) -> Result<T, Fault>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let breaker = self.breakers.for_key(key.filter(|_| self.is_cluster()));
        let Some(pass) = breaker.admit() else {
            return Err(Fault::Open);
        };
        match self.answer(op).await {
            Ok(Ok(value)) => {
                pass.success();
                Ok(value)
            }
            Ok(Err(error)) if breaker::is_outage(&error) || self.misdirected(&error) => {
                pass.failure();
                self.renew_if_stuck();
                Err(Fault::Redis(error))
            }
            Ok(Err(refused)) => {
                pass.success();
                self.renew_if_read_only(&refused);
                Err(Fault::Redis(refused))
            }
            Err(_) => {
                pass.failure();
                self.renew_if_stuck();
                Err(Fault::Timeout)
            }
        }
    }

    /// A call that neither asks a breaker nor tells it how it went: a question about
    /// Redis itself (`runs`), which must not change how the calls it is for get
    /// through an outage (see [`L2::runs`]).
    async fn ask<T, F, Fut>(&self, op: F) -> Result<T, Fault>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match self.answer(op).await {
            Ok(answer) => answer.map_err(Fault::Redis),
            Err(_) => Err(Fault::Timeout),
        }
    }

    /// Runs `op` on the connection, within the timeout.
    async fn answer<T, F, Fut>(&self, op: F) -> Result<redis::RedisResult<T>, Elapsed>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.renew_if_orphaned();
        let connection = self.connection.read().clone();
        match crate::background::stand_in() {
            None => tokio::time::timeout(self.timeout, op(connection)).await,
            Some(tasks) => {
                let answer = || tokio::time::timeout(self.timeout, op(connection));
                crate::background::on(tasks, answer).await
            }
        }
    }

    /// Whether a call on one of `keys` would be refused now (cluster only): work
    /// split into one call per slot is not begun then, rather than begun and cancelled
    /// when the refusal comes, which would cancel a probe sent to another master
    /// with it (see [`breaker::Pass`]).
    fn any_refused<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> bool {
        keys.into_iter()
            .any(|key| !self.breakers.for_key(Some(key)).would_allow())
    }

    /// Keeps the cluster's slot map current, for the per-master breakers and the
    /// backplane's choice of node. Runs for the life of the process (cluster only).
    pub(crate) async fn follow_slot_map(&self) {
        loop {
            let mut connection = self.connection.read().clone();
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("SLOTS");
            let read = cmd.query_async::<redis::Value>(&mut connection);
            match tokio::time::timeout(self.timeout, read).await {
                Ok(Ok(reply)) => self.breakers.learn(&reply),
                Ok(Err(error)) => tracing::debug!(%error, "stratacache: CLUSTER SLOTS failed"),
                Err(_) => tracing::debug!("stratacache: CLUSTER SLOTS timed out"),
            }
            let every = if self.breakers.any_open() { 1 } else { 10 };
            tokio::time::sleep(Duration::from_secs(every)).await;
        }
    }

    /// On a cluster, the client of the seed node that owns the channel's slot, while
    /// its circuit is closed: subscribing there puts the backplane on the node its
    /// messages are published to, with no hop over the cluster bus.
    pub(crate) fn channel_subscriber(&self) -> Option<&redis::Client> {
        if self.breakers.for_key(Some(&self.channel)).is_open() {
            return None;
        }
        self.channel_master()
    }

    /// On a cluster, the client of the seed node that owns the channel's slot, its
    /// circuit open or not.
    pub(crate) fn channel_master(&self) -> Option<&redis::Client> {
        if !self.is_cluster() {
            return None;
        }
        let (host, port) = self.breakers.owner_of(&self.channel)?;
        self.subscribers.iter().find(|client| {
            matches!(
                client.get_connection_info().addr(),
                redis::ConnectionAddr::Tcp(h, p) | redis::ConnectionAddr::TcpTls { host: h, port: p, .. }
                    if *h == host && *p == port
            )
        })
    }
}

/// Unix time in milliseconds: the envelope's times cross processes.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
