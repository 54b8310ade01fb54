//! Which run of each Redis server answers. A server that runs anew (restarted, or a
//! replica promoted in a master's place) with data came up with what it held some
//! time before: a snapshot, an append-only log, a replica's copy that had not caught
//! up. What was written since is gone, tombstones included (`backplane::restarts`
//! says what follows).

use std::collections::HashSet;

use futures_util::future::join_all;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::connection::Connection;
use super::{Fault, Node, L2};

/// One run of a Redis server, as `INFO` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// Its `run_id` and replication id: another after a restart, or a promotion.
    pub(crate) id: String,
    /// It came up with data: keys loaded from a snapshot, an append-only log, or a
    /// replica's copy (promoted).
    pub(crate) with_data: bool,
}

impl Run {
    fn parse(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let loaded = field("rdb_last_load_keys_loaded").and_then(|n| n.parse::<u64>().ok());
        let logged = field("aof_enabled") == Some("1");
        let promoted = field("second_repl_offset").is_some_and(|offset| offset != "-1");
        Some(Self {
            id: format!(
                "{}-{}",
                field("run_id")?,
                field("master_replid").unwrap_or("")
            ),
            with_data: loaded.unwrap_or(0) > 0 || logged || promoted,
        })
    }
}

fn info() -> redis::Cmd {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server").arg("persistence").arg("replication");
    cmd
}

impl L2 {
    /// The run of each master (of a standalone server: address `""`) by address,
    /// but for the nodes in `left` (a resync's read still waits there), those whose
    /// circuit is open, and those that do not answer. Each ask is counted as a
    /// resync read under way, and neither asks a breaker nor tells it ([`L2::ask`]):
    /// counted by the breaker, in the fleet checker's phase that freezes Redis, it
    /// left 38 to 43 superseded values peeked from Redis a round, within the bound,
    /// where there were none without it (the same when it never took the circuit's
    /// probe, asked only while the circuit was closed: 40 to 43; how is not traced).
    /// An open circuit is left alone: asked at every resync, a master that hangs
    /// held up the items the others hold (in the phase that freezes the channel's
    /// master for good, 3.4 s behind, and 4 writes unseen).
    pub(crate) async fn runs(&self, left: &HashSet<Node>) -> Vec<(String, Run)> {
        if !self.is_cluster() {
            if left.contains(&None) || self.breakers.for_key(None).is_open() {
                return Vec::new();
            }
            let _reading = self.resync_reads.reading(None);
            let run = self.run_at(None).await;
            return run.map(|run| (String::new(), run)).into_iter().collect();
        }
        let masters = self.breakers.closed_masters().into_iter();
        let asked = masters
            .filter(|(index, ..)| !left.contains(&Some(*index)))
            .map(|(index, host, port)| async move {
                let _reading = self.resync_reads.reading(Some(index));
                let address = format!("{host}:{port}");
                let run = self.run_at(Some((host, port))).await;
                run.map(|run| (address, run))
            });
        join_all(asked).await.into_iter().flatten().collect()
    }

    /// The run of the cluster node at `at`, or of the standalone server (`None`).
    async fn run_at(&self, at: Option<(String, u16)>) -> Option<Run> {
        let info = self
            .ask(|connection| async move {
                let reply = match (connection, at) {
                    (Connection::Cluster(mut cluster), Some((host, port))) => {
                        let to = SingleNodeRoutingInfo::ByAddress { host, port };
                        cluster
                            .route_command(info(), RoutingInfo::SingleNode(to))
                            .await?
                    }
                    (mut connection, _) => info().query_async(&mut connection).await?,
                };
                Ok(redis::from_redis_value::<String>(reply)?)
            })
            .await;
        info.ok().as_deref().and_then(Run::parse)
    }

    /// Sets `key` if nobody has (`SET NX`, kept a day): true if this process did, or
    /// if Redis did not answer (the caller then acts, rather than leave it undone).
    pub(crate) async fn claim(&self, key: &str) -> bool {
        let reply: Result<Option<String>, Fault> = self
            .call(Some(key), |mut connection| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(self.instance)
                    .arg("NX")
                    .arg("EX")
                    .arg(86_400)
                    .query_async(&mut connection)
                    .await
            })
            .await;
        reply.map_or(true, |set| set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "# Server\r\nrun_id:aa\r\n# Persistence\r\nrdb_last_load_keys_loaded:0\r\n\
        aof_enabled:0\r\n# Replication\r\nmaster_replid:r1\r\nsecond_repl_offset:-1\r\n";

    #[test]
    fn a_run_is_told_by_its_run_id_and_replication_id() {
        let run = Run::parse(EMPTY).unwrap();
        assert_eq!(run.id, "aa-r1");
        assert!(!run.with_data, "started empty");
        assert_eq!(Run::parse("# Server\r\nuptime_in_seconds:3\r\n"), None);
    }

    #[test]
    fn keys_loaded_a_log_or_a_promotion_mean_data_from_before() {
        for (from, to) in [
            (
                "rdb_last_load_keys_loaded:0",
                "rdb_last_load_keys_loaded:12",
            ),
            ("aof_enabled:0", "aof_enabled:1"),
            ("second_repl_offset:-1", "second_repl_offset:4242"),
        ] {
            let run = Run::parse(&EMPTY.replace(from, to)).unwrap();
            assert!(run.with_data, "{to}");
        }
    }
}
