//! Keeping a fault to its node. A standalone server has one circuit breaker. On a
//! cluster each master has its own, found through the slot map (read with
//! `CLUSTER SLOTS` when the tier starts and every few seconds after), so a master
//! that is down opens only its own circuit: reads, writes and invalidations whose
//! keys live on the healthy masters go on. Commands with no key (`PUBLISH`), and
//! every command until the map is known, share one more breaker.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use redis::Value;

use super::breaker::Breaker;

/// Hash slots in a Redis Cluster.
const SLOTS: usize = 16384;
/// The owner of a slot the map does not cover.
const UNKNOWN: u16 = u16::MAX;

/// The hash slot of `key`, as Redis computes it: CRC16 (XMODEM) of the key, or of
/// its `{hash tag}` if it has a non-empty one, modulo 16384.
pub(crate) fn slot_of(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % SLOTS as u16
}

struct Node {
    host: String,
    port: u16,
    breaker: Arc<Breaker>,
}

#[derive(Default)]
struct SlotMap {
    /// Slot -> index in `nodes` ([`UNKNOWN`] where the map has no owner).
    owners: Vec<u16>,
    nodes: Vec<Node>,
}

pub(crate) struct Breakers {
    shared: Arc<Breaker>,
    map: RwLock<SlotMap>,
    threshold: u32,
    cooldown: Duration,
}

impl Breakers {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            shared: Arc::new(Breaker::new(threshold, cooldown)),
            map: RwLock::default(),
            threshold,
            cooldown,
        }
    }

    /// The breaker guarding a command on `key` (the shared one for no key, a
    /// standalone server, or a slot the map does not know yet).
    pub(crate) fn for_key(&self, key: Option<&str>) -> Arc<Breaker> {
        let Some(key) = key else {
            return self.shared.clone();
        };
        let map = self.map.read();
        match map.owners.get(usize::from(slot_of(key))) {
            Some(&owner) if owner != UNKNOWN => map.nodes[usize::from(owner)].breaker.clone(),
            _ => self.shared.clone(),
        }
    }

    /// Where to send a command with no key when the node its key-less routing picks
    /// may be down: a master whose circuit is closed, other than `besides`.
    pub(crate) fn healthy_node(&self, besides: Option<&(String, u16)>) -> Option<(String, u16)> {
        let map = self.map.read();
        let node = map.nodes.iter().find(|n| {
            !n.breaker.is_open()
                && besides.is_none_or(|(host, port)| (&n.host, n.port) != (host, *port))
        })?;
        Some((node.host.clone(), node.port))
    }

    /// The index of the master that holds `slot`, if the map covers it: equal for
    /// two slots on one master, while the map stays the same.
    pub(crate) fn master_of(&self, slot: u16) -> Option<usize> {
        let owner = *self.map.read().owners.get(usize::from(slot))?;
        (owner != UNKNOWN).then_some(usize::from(owner))
    }

    /// The address of the master that owns `key`'s slot, once the map is known.
    pub(crate) fn owner_of(&self, key: &str) -> Option<(String, u16)> {
        let map = self.map.read();
        let owner = *map.owners.get(usize::from(slot_of(key)))?;
        let node = map.nodes.get(usize::from(owner))?;
        Some((node.host.clone(), node.port))
    }

    /// Every master the map knows whose circuit is closed: its index
    /// ([`super::Node`]) and its address.
    pub(crate) fn closed_masters(&self) -> Vec<(usize, String, u16)> {
        let map = self.map.read();
        map.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.breaker.is_open())
            .map(|(index, n)| (index, n.host.clone(), n.port))
            .collect()
    }

    pub(crate) fn any_open(&self) -> bool {
        self.shared.is_open() || self.map.read().nodes.iter().any(|n| n.breaker.is_open())
    }

    pub(crate) fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// Lets the next call through every circuit (see [`Breaker::allow_probe_now`]).
    pub(crate) fn allow_probe_now(&self) {
        self.shared.allow_probe_now();
        for node in &self.map.read().nodes {
            node.breaker.allow_probe_now();
        }
    }

    /// Takes in a `CLUSTER SLOTS` reply. A master that stays keeps its breaker (and
    /// so its open circuit); a new one starts closed. A reply that does not parse
    /// leaves the map as it was.
    pub(crate) fn learn(&self, reply: &Value) {
        let Some(ranges) = parse_slots(reply) else {
            tracing::debug!("stratacache: unexpected CLUSTER SLOTS reply; slot map kept");
            return;
        };
        let mut map = self.map.write();
        let mut nodes: Vec<Node> = Vec::new();
        let mut owners = vec![UNKNOWN; SLOTS];
        for (start, end, host, port) in ranges {
            let index = match nodes.iter().position(|n| n.host == host && n.port == port) {
                Some(index) => index,
                None => {
                    let breaker = map
                        .nodes
                        .iter()
                        .find(|n| n.host == host && n.port == port)
                        .map_or_else(
                            || Arc::new(Breaker::new(self.threshold, self.cooldown)),
                            |n| n.breaker.clone(),
                        );
                    nodes.push(Node {
                        host,
                        port,
                        breaker,
                    });
                    nodes.len() - 1
                }
            };
            for slot in start..=end.min(SLOTS as u16 - 1) {
                owners[usize::from(slot)] = index as u16;
            }
        }
        *map = SlotMap { owners, nodes };
    }
}

/// `(first slot, last slot, master host, master port)` for each range.
fn parse_slots(reply: &Value) -> Option<Vec<(u16, u16, String, u16)>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    ranges
        .iter()
        .map(|range| {
            let Value::Array(parts) = range else {
                return None;
            };
            let number = |value: &Value| match value {
                Value::Int(n) => u16::try_from(*n).ok(),
                _ => None,
            };
            let (start, end) = (number(parts.first()?)?, number(parts.get(1)?)?);
            let Value::Array(master) = parts.get(2)? else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok()?,
                Value::SimpleString(text) => text.clone(),
                _ => return None,
            };
            Some((start, end, host, number(master.get(1)?)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("{user1000}.following"), slot_of("user1000"));
        assert_eq!(slot_of("bar"), 5061);
        assert_eq!(slot_of("{}x"), 10595, "an empty tag: the whole key counts");
    }

    fn range(start: i64, end: i64, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ]),
        ])
    }

    #[test]
    fn a_fault_on_one_master_opens_only_its_circuit_and_survives_a_map_refresh() {
        let breakers = Breakers::new(2, Duration::from_secs(60));
        let map = Value::Array(vec![range(0, 8191, 7001), range(8192, 16383, 7002)]);
        breakers.learn(&map);
        let (on_first, on_second) = ("foo", "bar"); // slots 12182 and 5061
        let down = breakers.for_key(Some(on_first));
        down.failure();
        down.failure();
        assert!(
            !breakers.for_key(Some(on_first)).allow(),
            "its circuit is open"
        );
        assert!(
            breakers.for_key(Some(on_second)).allow(),
            "the other master's is not"
        );
        assert!(breakers.for_key(None).allow(), "nor the shared one");
        assert_eq!(
            breakers.healthy_node(None),
            Some(("127.0.0.1".into(), 7001))
        );
        let first = ("127.0.0.1".to_owned(), 7001);
        assert_eq!(
            breakers.healthy_node(Some(&first)),
            None,
            "none but the one left out"
        );
        breakers.learn(&map);
        assert!(
            !breakers.for_key(Some(on_first)).allow(),
            "a refresh keeps the open circuit"
        );
        assert_eq!(breakers.owner_of("foo"), Some(("127.0.0.1".into(), 7002)));
    }
}
