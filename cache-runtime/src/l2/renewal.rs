//! Connecting afresh, where the connection redis-rs keeps would not recover by
//! itself: a cluster client stuck on a node that came back or orphaned by its
//! runtime, and a standalone connection that reaches a replica after a failover
//! behind one endpoint. Also the one misconfiguration a connection shows: a node of a
//! Redis Cluster reached as a standalone server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, ServerErrorKind};

use super::connection::Connection;
use super::L2;

/// On a cluster: how to connect afresh (see [`L2::renew_if_stuck`]).
pub(super) struct ClusterSetup {
    pub(super) client: redis::cluster::ClusterClient,
    pub(super) config: redis::cluster::ClusterConfig,
    pub(super) renewed_at: AtomicU64,
    /// A task on the runtime the connection's own task was spawned on, which ends
    /// with it (see [`L2::renew_if_orphaned`]).
    pub(super) runtime_alive: Arc<parking_lot::RwLock<Option<tokio::task::JoinHandle<()>>>>,
}

/// A task that runs as long as the current runtime, if there is one.
pub(super) fn runtime_sentinel() -> Option<tokio::task::JoinHandle<()>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    Some(runtime.spawn(std::future::pending()))
}

/// On a standalone server: how to connect afresh (see [`L2::renew_if_read_only`]).
pub(super) struct StandaloneSetup {
    pub(super) client: redis::Client,
    pub(super) config: ConnectionManagerConfig,
    pub(super) renewed_at: AtomicU64,
}

impl StandaloneSetup {
    pub(super) fn connect(&self) -> redis::RedisResult<Connection> {
        let (client, config) = (self.client.clone(), self.config.clone());
        ConnectionManager::new_lazy_with_config(client, config).map(Connection::Standalone)
    }
}

impl L2 {
    /// Whether it is time to connect afresh: at most once per breaker cooldown, and
    /// only one of the calls that ask at once is told so.
    fn renewal_due(&self, renewed_at: &AtomicU64) -> bool {
        let now = crate::clock::coarse_ms();
        let last = renewed_at.load(Ordering::Relaxed);
        now.saturating_sub(last) >= crate::clock::to_ms(self.breakers.cooldown())
            && renewed_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// A standalone server that answers a write with `READONLY` is a replica: after a
    /// failover behind one endpoint (a DNS name moved to the promoted replica, as a
    /// cloud provider's primary endpoint does), the connection made before it still
    /// reaches the old master, and redis-rs keeps a connection that answers. Connects
    /// afresh, at most once per breaker cooldown, so that the next call (the outbox's
    /// next try of an invalidation, say) reaches what the endpoint names now.
    pub(super) fn renew_if_read_only(&self, error: &redis::RedisError) {
        static LOGGED: AtomicBool = AtomicBool::new(false);
        let Some(standalone) = &self.standalone else {
            return;
        };
        let read_only = error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if !read_only || !self.renewal_due(&standalone.renewed_at) {
            return;
        }
        let _context = crate::background::runtime_context();
        match standalone.connect() {
            Ok(fresh) => *self.connection.write() = fresh,
            Err(error) => tracing::debug!(%error, "stratacache: cannot connect afresh"),
        }
        if !LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!("stratacache: Redis answered READONLY (a replica: a failover behind the endpoint?); connecting afresh, once per breaker cooldown while it lasts (logged once)");
        }
    }

    /// While the circuit is open on a cluster, connects afresh once per cooldown: the
    /// cluster client reconnects to a node that went away, but seen here to keep timing
    /// out on a node that came back, so a new client (which rereads the slot map from
    /// the seed nodes) is cheaper than trusting the old one to recover.
    ///
    /// The new client is made beside the old one, which serves until it is ready: a
    /// client not yet connected holds every call until it has reached every node and
    /// read the map, and with a master hanging that took longer than the timeout.
    /// Swapped in at once, it failed the calls of the healthy masters too, and opened
    /// their circuits (the fleet checker's frozen channel master).
    pub(super) fn renew_if_stuck(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if !self.breakers.any_open() {
            return;
        }
        if self.renewal_due(&cluster.renewed_at) {
            self.connect_beside(cluster);
        }
    }

    /// Makes a new cluster connection on the current runtime (or the tier's), and
    /// puts it in place of the old one once it has connected.
    fn connect_beside(&self, cluster: &ClusterSetup) {
        let _context = crate::background::runtime_context();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, config) = (cluster.client.clone(), cluster.config.clone());
        let connection = Arc::clone(&self.connection);
        let runtime_alive = Arc::clone(&cluster.runtime_alive);
        // Bounded: a cluster that answers nothing leaves the old client in place.
        let within = self.timeout * 20;
        runtime.spawn(async move {
            let connecting = client.get_async_connection_with_config(config);
            match tokio::time::timeout(within, connecting).await {
                Ok(Ok(fresh)) => {
                    // The new client's task runs on this runtime: the sentinel follows.
                    *connection.write() = Connection::Cluster(fresh);
                    *runtime_alive.write() = runtime_sentinel();
                    tracing::info!("stratacache: Redis Cluster kept failing; connected afresh");
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "stratacache: cannot connect afresh to Redis Cluster")
                }
                Err(_) => {
                    tracing::debug!("stratacache: connecting afresh to Redis Cluster timed out")
                }
            }
        });
    }

    /// On a cluster, connects afresh once the runtime the connection's task was
    /// spawned on has ended (each `#[tokio::test]` has its own): without that task the
    /// cluster client never reconnects, and every call would fail. A standalone
    /// server's `ConnectionManager` reconnects by itself (`connection.rs`).
    pub(super) fn renew_if_orphaned(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let ended = |alive: &Option<tokio::task::JoinHandle<()>>| {
            alive
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
        };
        // Two calls may both find it ended and both connect: the last connection
        // stays, the other is dropped.
        if ended(&cluster.runtime_alive.read()) {
            self.connect_afresh(cluster);
        }
    }

    /// A new cluster connection, its task spawned on the current runtime, which its
    /// sentinel then follows.
    fn connect_afresh(&self, cluster: &ClusterSetup) {
        let _context = crate::background::runtime_context();
        let fresh = cluster
            .client
            .get_pending_async_connection_with_config(cluster.config.clone());
        *self.connection.write() = Connection::Cluster(fresh);
        *cluster.runtime_alive.write() = runtime_sentinel();
    }

    /// Whether `error` says this standalone connection reaches a node of a Redis
    /// Cluster (`MOVED`, `ASK`, `CROSSSLOT`): one node holds a third of the keys or
    /// less, and a tag's counter on another node would take no invalidation. The
    /// tier is of no use until the setting is changed: an outage, so the circuit
    /// opens, and an error, logged once, that names the setting.
    pub(super) fn misdirected(&self, error: &redis::RedisError) -> bool {
        static LOGGED: AtomicBool = AtomicBool::new(false);
        let misdirected = !self.is_cluster()
            && matches!(
                error.kind(),
                ErrorKind::Server(
                    ServerErrorKind::Moved | ServerErrorKind::Ask | ServerErrorKind::CrossSlot
                )
            );
        if misdirected && !LOGGED.swap(true, Ordering::Relaxed) {
            tracing::error!(%error, "stratacache: the Redis URL names a node of a Redis Cluster: set `Config::cluster` (or STRATACACHE_REDIS_CLUSTER=true); until then the Redis tier is treated as down");
        }
        misdirected
    }
}
