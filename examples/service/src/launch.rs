//! Starts `user-service` on a free loopback port, waits until it listens, and stops it
//! on drop: shared by the load check and the tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::Connection;

pub struct Service {
    child: Child,
    pub addr: String,
}

impl Service {
    /// Runs `binary` with `env` (and no Redis unless `env` names one).
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = Command::new(binary)
            .env_remove("STRATACACHE_REDIS_URL")
            .env("BIND_ADDR", &addr)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Connection::open(&addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the service exited before listening ({status}); its error is above");
            }
            assert!(
                Instant::now() < deadline,
                "the service did not start listening (is PostgreSQL running?)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, addr }
    }
}

impl Service {
    /// The service's process id (the tests find its database listener by it).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
