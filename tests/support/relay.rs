//! A TCP relay between the processes under test and a `redis-server`, that can drop
//! the connections it carries without closing them, as a NAT or a load balancer
//! drops an idle flow: neither end hears of it, and new connections go through; or
//! send new connections to another server, as a DNS name moved after a failover.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

pub struct Relay {
    port: u16,
    /// Where new connections go (see [`Relay::retarget`]).
    upstream: Arc<AtomicU16>,
    /// The silence switch of each connection made so far.
    flows: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    stopped: Arc<AtomicBool>,
}

impl Relay {
    /// Relays 127.0.0.1:(a free port) to 127.0.0.1:`upstream`.
    pub fn to(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let flows = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let upstream = Arc::new(AtomicU16::new(upstream));
        let (accepted, stop, target) = (flows.clone(), stopped.clone(), upstream.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                let to = target.load(Ordering::Acquire);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let silenced = Arc::new(AtomicBool::new(false));
                accepted.lock().unwrap().push(silenced.clone());
                pipe(&client, &server, silenced.clone());
                pipe(&server, &client, silenced);
            }
        });
        Self {
            port,
            upstream,
            flows,
            stopped,
        }
    }

    /// Connections made from now on go to 127.0.0.1:`upstream`; those made so far
    /// stay where they are, as after a DNS name moved to another server.
    pub fn retarget(&self, upstream: u16) {
        self.upstream.store(upstream, Ordering::Release);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Every connection made so far stops carrying bytes, both ways, and stays open;
    /// connections made from now on are relayed.
    pub fn silence_existing(&self) {
        for silenced in self.flows.lock().unwrap().iter() {
            silenced.store(true, Ordering::Release);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        // Wakes the accept loop, which then sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` until either closes; once `silenced`, reads and drops.
fn pipe(from: &TcpStream, to: &TcpStream, silenced: Arc<AtomicBool>) {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer) {
            if !silenced.load(Ordering::Acquire) && to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
