//! Test support: a real `redis-server` on a free loopback port, and worker processes
//! (`examples/cache_worker.rs`) that use stratacache against it.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process: `--save "" --appendonly no`, loopback only. Stopped
/// on drop; its log is printed if the test is failing.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that requires `AUTH password` when one is given.
    pub fn start_with(password: Option<&str>) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("stratacache-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        let password = password.map(str::to_owned);
        let mut server = Self {
            port,
            dir,
            child: None,
            password,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    fn spawn(&mut self) {
        let log = self.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(self.password.iter().flat_map(|p| ["--requirepass", p.as_str()]))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start redis-server ({error}): install it, e.g. `apt-get install redis-server`")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
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
        self.spawn();
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
        let path = worker_path();
        let mut child = Command::new(&path)
            .args([redis_url, namespace])
            .args(extra)
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
}

fn worker_path() -> PathBuf {
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/cache_worker
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("cache_worker");
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
