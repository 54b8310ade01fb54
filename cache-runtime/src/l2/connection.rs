//! One connection type for both deployments: a standalone server through redis-rs's
//! `ConnectionManager` (it reconnects by itself), or Redis Cluster through its async
//! cluster client (it follows the slot map, and splits a multi-key `MGET` into one
//! command per slot, sent at once to the nodes that own them).

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub(crate) enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    fn send<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Standalone(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn send_all<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Standalone(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }
}

/// A connection's task runs on the runtime that first used it, or that reconnected
/// it, and a runtime may end before the process (each `#[tokio::test]` has its own).
/// A command then meets a dropped connection, unsent, and redis-rs starts a new one on
/// the caller's runtime: the command goes once more, on it. (Driving connections from
/// the Redis tier's own thread instead costs every call a wake-up across threads: an
/// L2 hit went from 1.10× to 1.34× a raw `GET`.)
fn dropped<T>(answer: &redis::RedisResult<T>) -> bool {
    answer
        .as_ref()
        .is_err_and(redis::RedisError::is_connection_dropped)
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            match self.send(cmd).await {
                answer if dropped(&answer) => self.send(cmd).await,
                answer => answer,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.send_all(pipeline, offset, count).await {
                answer if dropped(&answer) => self.send_all(pipeline, offset, count).await,
                answer => answer,
            }
        })
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Standalone(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// A client for one node URL; `rediss://` is verified against `root_cert` when one
/// is given (a private CA), else against the system's trust store.
pub(crate) fn client(url: &str, root_cert: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    match root_cert {
        #[cfg(feature = "tls")]
        Some(root_cert) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert.to_vec()),
            },
        ),
        _ => redis::Client::open(url),
    }
}

/// The cluster form of [`client`]'s private CA.
pub(crate) fn with_cluster_root(
    builder: redis::cluster::ClusterClientBuilder,
    root_cert: Option<&[u8]>,
) -> redis::cluster::ClusterClientBuilder {
    match root_cert {
        #[cfg(feature = "tls")]
        Some(root_cert) => builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert.to_vec()),
        }),
        _ => builder,
    }
}
