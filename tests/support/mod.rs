//! Test support: a real `redis-server` on a free loopback port, and worker processes
//! (`examples/cache_worker.rs`) that use stratacache against it.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

mod relay;
#[allow(unused_imports)] // as above: not every test binary relays
pub use relay::Relay;

#[allow(unused_macros)] // tests/fleet has no use for it
/// Each test body takes `cluster: bool`; this makes a `standalone` and a `cluster` test of it.
macro_rules! on_standalone_and_cluster {
    ($($test:ident),* $(,)?) => {
        mod standalone {
            $(#[test] fn $test() { super::$test(false) })*
        }
        mod cluster {
            $(#[test] fn $test() { super::$test(true) })*
        }
    };
}

/// A `redis-server` child process: `--save "" --appendonly no`, loopback only. Stopped
/// on drop; its log is printed if the test is failing.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    password: Option<String>,
    /// The cluster bus port of a cluster node.
    bus_port: Option<u16>,
    /// The TLS port of a server started with [`RedisServer::start_tls`].
    tls_port: Option<u16>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that requires `AUTH password` when one is given.
    pub fn start_with(password: Option<&str>) -> Self {
        Self::start_node(password, false)
    }

    /// A server that also listens for TLS (`rediss://`, see [`RedisServer::tls_url`])
    /// with a certificate for 127.0.0.1 signed by a CA made for it
    /// ([`RedisServer::ca_file`]). The plain port stays, for the test's own checks.
    pub fn start_tls() -> Self {
        Self::start_configured(None, false, true)
    }

    fn start_node(password: Option<&str>, cluster: bool) -> Self {
        Self::start_configured(password, cluster, false)
    }

    /// A free port is only free until someone binds it: tests running in parallel may
    /// take it first, so a server that cannot bind is started again on other ports.
    fn start_configured(password: Option<&str>, cluster: bool, tls: bool) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("stratacache-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create the server's directory");
            let mut server = Self {
                port,
                dir,
                child: None,
                password: password.map(str::to_owned),
                bus_port: cluster.then(free_port),
                tls_port: tls.then(free_port),
            };
            if tls {
                make_certificates(&server.dir);
            }
            if server.spawn() {
                return server;
            }
            eprintln!(
                "redis-server could not start on port {port}; trying other ports\n{}",
                server.log()
            );
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// `rediss://127.0.0.1:PORT` of a server started with [`RedisServer::start_tls`].
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("a server started with start_tls");
        format!("rediss://127.0.0.1:{port}")
    }

    /// The CA certificate (PEM file) the TLS server's certificate is signed with.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Starts the process and waits for it to answer; false if it exited (a port
    /// taken meanwhile), after which `restart` is not meaningful.
    fn spawn(&mut self) -> bool {
        let log = self.dir.join("redis.log");
        let cluster_args: Vec<String> = match self.bus_port {
            Some(bus) => [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain([bus.to_string()])
            .collect(),
            None => Vec::new(),
        };
        let tls_args: Vec<String> = match self.tls_port {
            Some(port) => {
                let file = |name: &str| self.dir.join(name).display().to_string();
                vec![
                    "--tls-port".into(),
                    port.to_string(),
                    "--tls-cert-file".into(),
                    file("redis.crt"),
                    "--tls-key-file".into(),
                    file("redis.key"),
                    "--tls-ca-cert-file".into(),
                    file("ca.crt"),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ]
            }
            None => Vec::new(),
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(self.password.iter().flat_map(|p| ["--requirepass", p.as_str(), "--masterauth", p.as_str()]))
            .args(&cluster_args)
            .args(&tls_args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start redis-server ({error}): install it, e.g. `apt-get install redis-server`")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                eprintln!("redis-server on port {} exited: {status}", self.port);
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// True if the server answers PING.
    pub fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, the
    /// case only a timeout can cut short.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Kills the server (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not start again on port {}\n{}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// A synchronous connection for the test's own checks.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .expect("connect to the test server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- redis-server log (port {}) ----\n{}",
                self.port,
                self.log()
            );
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters (no replicas) on loopback: three `RedisServer`s
/// with `--cluster-enabled yes`, joined by `redis-cli --cluster create`. Each node
/// keeps its `nodes.conf` in its own directory, so a stopped node that is restarted
/// rejoins with its slots (and no data: nothing is persisted).
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    pub fn start_with(password: Option<&str>) -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_node(password, true))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .args(password.iter().flat_map(|p| ["-a", *p]))
            .output()
            .unwrap_or_else(|error| panic!("cannot run redis-cli ({error}): install redis-tools"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits (bounded) until every node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        let ok = eventually(Duration::from_secs(20), || {
            self.nodes.iter().all(|node| {
                let info: Result<String, _> = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node.connection());
                info.is_ok_and(|info| info.contains("cluster_state:ok"))
            })
        });
        assert!(ok, "the cluster never reached cluster_state:ok");
    }

    /// Lets the masters serve their slots while another is down
    /// (`cluster-require-full-coverage no`, as a cache's cluster may be set), so that a
    /// test does not race the cluster's own failure detection.
    pub fn serve_without_full_coverage(&self) {
        for node in &self.nodes {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("cluster-require-full-coverage")
                .arg("no")
                .query::<()>(&mut node.connection())
                .expect("CONFIG SET cluster-require-full-coverage");
        }
    }

    /// The cluster names 127.0.0.1:`port` as `node`'s address (a [`Relay`] to it,
    /// say): every node's `CLUSTER SLOTS`, and so every client that reads the slot
    /// map from now on, reaches that master there. Waits (bounded) until every node
    /// has heard.
    pub fn reach_through(&self, node: usize, port: u16) {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-announce-port")
            .arg(port)
            .query::<()>(&mut self.nodes[node].connection())
            .expect("CONFIG SET cluster-announce-port");
        let heard = eventually(Duration::from_secs(10), || {
            self.nodes.iter().all(|each| {
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query::<redis::Value>(&mut each.connection())
                    .is_ok_and(|slots| names_port(&slots, port))
            })
        });
        assert!(heard, "the nodes never named port {port} for node {node}");
    }

    /// Every node's URL, comma-separated: what `STRATACACHE_REDIS_URL` takes.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the node that holds `key`'s slot (a node that does not answers
    /// `MOVED`).
    pub fn owner_of(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| {
                redis::cmd("TYPE")
                    .arg(key)
                    .query::<String>(&mut node.connection())
                    .is_ok()
            })
            .unwrap_or_else(|| panic!("no node holds the slot of {key}"))
    }

    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        redis::cluster::ClusterClient::new(
            self.nodes.iter().map(RedisServer::url).collect::<Vec<_>>(),
        )
        .unwrap()
        .get_connection()
        .expect("connect to the test cluster")
    }
}

/// True if `port` is a number anywhere in the reply (`CLUSTER SLOTS` nests each
/// node's address in its slot range's entry).
fn names_port(reply: &redis::Value, port: u16) -> bool {
    match reply {
        redis::Value::Int(number) => *number == i64::from(port),
        redis::Value::Array(items) => items.iter().any(|item| names_port(item, port)),
        _ => false,
    }
}

/// A standalone server or a cluster, so one test runs against both.
pub enum Deployment {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl Deployment {
    pub fn standalone() -> Self {
        Deployment::Standalone(RedisServer::start())
    }

    pub fn cluster() -> Self {
        Deployment::Cluster(RedisCluster::start())
    }

    pub fn start(cluster: bool, password: Option<&str>) -> Self {
        if cluster {
            Deployment::Cluster(RedisCluster::start_with(password))
        } else {
            Deployment::Standalone(RedisServer::start_with(password))
        }
    }

    pub fn url(&self) -> String {
        match self {
            Deployment::Standalone(server) => server.url(),
            Deployment::Cluster(cluster) => cluster.url(),
        }
    }

    fn servers(&self) -> Vec<&RedisServer> {
        match self {
            Deployment::Standalone(server) => vec![server],
            Deployment::Cluster(cluster) => cluster.nodes.iter().collect(),
        }
    }

    fn servers_mut(&mut self) -> Vec<&mut RedisServer> {
        match self {
            Deployment::Standalone(server) => vec![server],
            Deployment::Cluster(cluster) => cluster.nodes.iter_mut().collect(),
        }
    }

    /// `KEYS pattern` on every node.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for server in self.servers() {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query(&mut server.connection())
                .unwrap();
            keys.extend(found);
        }
        keys
    }

    /// The sum over every node of `INFO section`'s field `prefix` (`keyspace_hits:`
    /// say, or `cmdstat_eval:calls=`), read up to the next `,`.
    pub fn info_sum(&self, section: &str, prefix: &str) -> u64 {
        let mut sum = 0;
        for server in self.servers() {
            let info: String = redis::cmd("INFO")
                .arg(section)
                .query(&mut server.connection())
                .unwrap_or_else(|e| panic!("INFO {section}: {e}"));
            for rest in info.lines().filter_map(|line| line.strip_prefix(prefix)) {
                let field = rest.split(',').next().unwrap().trim();
                sum += field.parse::<u64>().unwrap();
            }
        }
        sum
    }

    /// Runs one command against the node that owns its key.
    pub fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> T {
        match self {
            Deployment::Standalone(server) => command.query(&mut server.connection()),
            Deployment::Cluster(cluster) => command.query(&mut cluster.connection()),
        }
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        self.query(redis::cmd("GET").arg(key))
    }

    pub fn set(&self, key: &str, value: &[u8]) {
        self.query::<()>(redis::cmd("SET").arg(key).arg(value))
    }

    /// Every node at `maxmemory` under Redis's default policy, `noeviction`: reads
    /// are answered, writes refused (`OOM command not allowed`); `false` lifts it.
    pub fn refuse_writes(&self, refuse: bool) {
        self.config_set("maxmemory", if refuse { "1" } else { "0" });
    }

    /// Every node refuses scripts (`EVAL`, `EVALSHA`: `NOPERM`, by ACL) and answers
    /// everything else: a stand-in for a Redis that answers reads and cannot take an
    /// invalidation; `false` lifts it.
    pub fn refuse_scripts(&self, refuse: bool) {
        let rule = if refuse { "-eval" } else { "+eval" };
        let rule_sha = if refuse { "-evalsha" } else { "+evalsha" };
        for server in self.servers() {
            redis::cmd("ACL")
                .arg("SETUSER")
                .arg("default")
                .arg(rule)
                .arg(rule_sha)
                .query::<()>(&mut server.connection())
                .unwrap_or_else(|e| panic!("ACL SETUSER default {rule} {rule_sha}: {e}"));
        }
    }

    /// Closes every pub/sub subscription on every node (`CLIENT KILL TYPE pubsub`):
    /// what a network blip does to a subscriber, which then subscribes again.
    /// Returns how many were closed.
    pub fn drop_subscriptions(&self) -> i64 {
        self.servers()
            .into_iter()
            .map(|server| {
                redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("pubsub")
                    .query::<i64>(&mut server.connection())
                    .unwrap_or_else(|e| panic!("CLIENT KILL TYPE pubsub: {e}"))
            })
            .sum()
    }

    /// `CONFIG SET name value` on every node.
    fn config_set(&self, name: &str, value: &str) {
        for server in self.servers() {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query::<()>(&mut server.connection())
                .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
        }
    }

    /// Writes every node's data to its snapshot (`SAVE`), which `restart` loads: Redis
    /// as it comes back from a snapshot older than its last writes, or as a replica
    /// that had not caught up is when it is promoted.
    pub fn snapshot(&self) {
        for server in self.servers() {
            let saved: String = redis::cmd("SAVE").query(&mut server.connection()).unwrap();
            assert_eq!(saved, "OK");
        }
    }

    /// Stops every node (data gone, but for a [`Deployment::snapshot`]); `restart`
    /// brings them back on the same ports.
    pub fn stop(&mut self) {
        self.servers_mut().into_iter().for_each(RedisServer::stop);
    }

    pub fn restart(&mut self) {
        self.servers_mut()
            .into_iter()
            .for_each(RedisServer::restart);
        if let Deployment::Cluster(cluster) = self {
            cluster.wait_until_ok();
        }
    }

    /// Restarts, empty, the server that holds `key`: the server itself, or the
    /// cluster master that owns the key's slot (the others keep their data).
    pub fn restart_owner_of(&mut self, key: &str) {
        match self {
            Deployment::Standalone(server) => server.restart(),
            Deployment::Cluster(cluster) => {
                let owner = cluster.owner_of(key);
                cluster.nodes[owner].restart();
                cluster.wait_until_ok();
            }
        }
    }

    pub fn freeze(&self) {
        self.servers().into_iter().for_each(RedisServer::freeze);
    }

    pub fn thaw(&self) {
        self.servers().into_iter().for_each(RedisServer::thaw);
    }
}

/// A CA, and a certificate for 127.0.0.1 signed by it, made with `openssl` in `dir`.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}): install it, e.g. `apt-get install openssl`")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=stratacache test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "redis.key",
            "-out",
            "redis.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A process running `examples/cache_worker.rs`: one command per line in, one line out.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    pub fn start(redis_url: &str, namespace: &str, extra: &[&str]) -> Self {
        Self::start_with_env(redis_url, namespace, extra, &[])
    }

    /// A worker with environment variables set (`WORKER_OUTBOX_CAPACITY`, ...).
    pub fn start_with_env(
        redis_url: &str,
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let path = worker_path();
        let mut child = Command::new(&path)
            .args([redis_url, namespace])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", path.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut worker = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(worker.send("ping"), "pong");
        worker
    }

    /// Sends one command and returns its one-line answer.
    pub fn send(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("worker stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("worker stdout");
        assert!(
            !line.is_empty(),
            "the worker exited while answering `{command}`"
        );
        line.trim_end().to_owned()
    }

    /// Sends a command without waiting for its answer (see [`Worker::answer`]), so
    /// several workers can run one at the same time.
    pub fn request(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("worker stdin");
    }

    /// The answer to the oldest command sent with [`Worker::request`].
    pub fn answer(&mut self) -> Answer {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("worker stdout");
        serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("bad answer: {line} ({e})"))
    }

    /// Waits (up to 5 s) until this worker's reads reach Redis: two `peek`s in a row
    /// add no L2 error. A first connection (a TLS handshake, a reconnection after a
    /// restart) can outlast the worker's 200 ms timeout on a loaded machine.
    pub fn until_redis_answers(&mut self) {
        let mut errors = self.get("peek 999999").l2_errors;
        let answered = eventually(Duration::from_secs(5), || {
            let now = self.get("peek 999999").l2_errors;
            std::mem::replace(&mut errors, now) == now
        });
        assert!(answered, "the worker never reached Redis");
    }

    /// The worker's `stratacache::stats()`, as JSON.
    pub fn stats(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.send("stats")).expect("stats are JSON")
    }

    /// `get ID` parsed: the value, and this worker's counters for the cache.
    pub fn get(&mut self, command: &str) -> Answer {
        let line = self.send(command);
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad answer to `{command}`: {line} ({e})"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct Answer {
    pub value: String,
    pub loads: u64,
    pub l1_hits: u64,
    pub l2_hits: u64,
    pub l2_errors: u64,
    pub oversized: u64,
    pub schema_mismatches: u64,
    pub rejected: u64,
    pub unauthenticated_messages: u64,
}

fn worker_path() -> PathBuf {
    example_path("cache_worker")
}

/// The binary of `examples/NAME.rs`, built beside the test binaries.
pub fn example_path(name: &str) -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build --examples`)",
        path.display()
    );
    path
}

/// Polls `check` every 20 ms for up to `limit`; true once it holds.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The panic message of `call`, run on a thread of its own and waited for at most
/// `within`; fails the test if the call returns, or if it does not answer in time
/// (a call that waits for itself would never answer).
pub fn panic_message_within<R>(
    within: Duration,
    call: impl FnOnce() -> R + Send + 'static,
) -> String {
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
        let message = outcome.err().map(|panic| {
            let text = panic.downcast_ref::<String>().cloned();
            text.unwrap_or_default()
        });
        answer.send(message).unwrap();
    });
    answered
        .recv_timeout(within)
        .expect("the call answers (here: panics) rather than waiting for itself")
        .expect("the call panics")
}
