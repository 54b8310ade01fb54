//! The servers that hold a namespace's keys: the one given, or, when it is a node of
//! a Redis Cluster, every master of that cluster. A key found by `SCAN` on a master
//! lives there, so the commands about it (`GET`, `MEMORY USAGE`) go to that master.

use crate::Options;

/// One server, with the name it is known by in the answers.
pub(crate) struct Node {
    pub(crate) address: String,
    pub(crate) connection: redis::Connection,
}

/// The servers to read: the first URL's server alone, or the masters of its cluster
/// (the other URLs, seeds of the same cluster, add nothing).
pub(crate) fn nodes(options: &Options) -> Result<Vec<Node>, String> {
    servers(options).map(|(nodes, _)| nodes)
}

/// [`nodes`], and whether they are a cluster's masters.
pub(crate) fn servers(options: &Options) -> Result<(Vec<Node>, bool), String> {
    let first = options.redis.split(',').map(str::trim).next().unwrap_or("");
    let root_cert = options.root_cert.as_deref();
    let mut seed = open(first, root_cert)?;
    let layout: Result<String, _> = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut seed.connection);
    let Ok(layout) = layout else {
        return Ok((vec![seed], false)); // not a cluster node: a standalone server
    };
    let masters = masters(&layout)
        .map(|(host, port)| open(&with_address(first, &host, port), root_cert))
        .collect::<Result<_, _>>()?;
    Ok((masters, true))
}

fn open(url: &str, root_cert: Option<&[u8]>) -> Result<Node, String> {
    let client = stratacache_runtime::inspect::client(url, root_cert)
        .map_err(|e| format!("cannot use {url}: {e}"))?;
    let address = client.get_connection_info().addr().to_string();
    let connection = client
        .get_connection()
        .map_err(|e| format!("cannot reach Redis at {address}: {e}"))?;
    Ok(Node {
        address,
        connection,
    })
}

/// `GET key` on whichever node holds it (a cluster's other masters answer `MOVED`).
pub(crate) fn get_anywhere<T: redis::FromRedisValue>(
    nodes: &mut [Node],
    key: &str,
) -> Result<Option<T>, String> {
    let mut refusal = None;
    for node in nodes.iter_mut() {
        match redis::cmd("GET").arg(key).query(&mut node.connection) {
            Ok(found) => return Ok(found),
            Err(error) => refusal = Some(format!("{}: {error}", node.address)),
        }
    }
    Err(refusal.unwrap_or_else(|| "no Redis server".to_owned()))
}

/// `url` (its scheme, password and database kept) for the server at `host:port`.
fn with_address(url: &str, host: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (user, rest) = match rest.rsplit_once('@') {
        Some((user, rest)) => (format!("{user}@"), rest),
        None => (String::new(), rest),
    };
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    format!("{scheme}://{user}{host}:{port}{path}")
}

/// The `host` and `port` of each master that is not failing, from `CLUSTER NODES`
/// (`<id> <host:port@bus> <flags> ...`).
fn masters(layout: &str) -> impl Iterator<Item = (String, u16)> + '_ {
    layout.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let flags = fields.get(2)?.split(',').collect::<Vec<_>>();
        if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
            return None;
        }
        let address = fields.get(1)?.split('@').next()?;
        let (host, port) = address.rsplit_once(':')?;
        Some((host.to_owned(), port.parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::masters;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let layout = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
                      b 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922\n\
                      c 127.0.0.1:7004@17004 slave b 0 0 2 connected\n\
                      d 127.0.0.1:7003@17003 master,fail - 0 0 3 connected\n";
        let found: Vec<_> = masters(layout).collect();
        assert_eq!(
            found,
            [
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
    }

    #[test]
    fn a_node_s_url_keeps_the_scheme_password_and_database() {
        use super::with_address;
        assert_eq!(
            with_address("rediss://:pw@10.0.0.1:6379/2", "10.0.0.9", 7000),
            "rediss://:pw@10.0.0.9:7000/2"
        );
        assert_eq!(
            with_address("redis://127.0.0.1:7001", "127.0.0.1", 7002),
            "redis://127.0.0.1:7002"
        );
    }
}
