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

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Standalone(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
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
