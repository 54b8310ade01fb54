//! A TCP relay between the processes under test and a `redis-server`, that can drop
//! the connections it carries without closing them, as a NAT or a load balancer
//! drops an idle flow: neither end hears of it, and new connections go through; or
//! send new connections to another server, as a DNS name moved after a failover; or
//! hold every reply back a while, as a slow server or a congested link does.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Relay {
    port: u16,
    /// Where new connections go (see [`Relay::retarget`]).
    upstream: Arc<AtomicU16>,
    /// The silence switch of each connection made so far.
    flows: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    /// How long each reply is held back, in microseconds (see
    /// [`Relay::delay_replies`]).
    reply_delay_us: Arc<AtomicU64>,
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
        let reply_delay_us = Arc::new(AtomicU64::new(0));
        let (accepted, stop, target) = (flows.clone(), stopped.clone(), upstream.clone());
        let delay = reply_delay_us.clone();
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
                pipe_delayed(&server, &client, silenced, delay.clone());
            }
        });
        Self {
            port,
            upstream,
            flows,
            reply_delay_us,
            stopped,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every byte the server sends, on every connection, reaches the client `by`
    /// after it left the server, in order: a server slow to answer, though it does.
    pub fn delay_replies(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.reply_delay_us.store(micros, Ordering::Release);
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

/// [`pipe`], each chunk written `delay` (microseconds) after it was read: a delay
/// line, so that a chunk read while an earlier one waits is not held back by it.
fn pipe_delayed(
    from: &TcpStream,
    to: &TcpStream,
    silenced: Arc<AtomicBool>,
    delay_us: Arc<AtomicU64>,
) {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    let (line, held) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer) {
            let due = Instant::now() + Duration::from_micros(delay_us.load(Ordering::Acquire));
            if line.send((due, buffer[..read].to_vec())).is_err() {
                break;
            }
        }
        // Dropping `line` ends the writer once it has written what is held.
    });
    std::thread::spawn(move || {
        for (due, chunk) in held {
            // The delay line's own hold, not a wait for a condition.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if !silenced.load(Ordering::Acquire) && to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
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
