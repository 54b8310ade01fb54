//! The resync reads under way at each node, so that a resync leaves a node where an
//! earlier one's read has waited the interval or longer (hanging) to that one,
//! rather than waiting on it too: a resync begins at every tick of the interval,
//! whether the last has ended or not (see `backplane::resync`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A node a resync reads: a cluster master, by its index in the slot map
/// ([`Breakers::master_of`](super::routing::Breakers::master_of)), or `None` for a
/// standalone server and for the slots the map does not cover.
pub(crate) type Node = Option<usize>;

/// When each resync read under way at each node was sent, over every resync running.
#[derive(Default)]
pub(crate) struct ResyncReads(Mutex<HashMap<Node, Vec<Instant>>>);

impl ResyncReads {
    /// The nodes with a read under way for `longer_than` or more. After a change of
    /// the slot map an index may name another master: a resync may then wait on a
    /// hanging master, or leave a healthy one alone; the next is not held back by it,
    /// and reads it.
    pub(crate) fn stuck(&self, longer_than: Duration) -> HashSet<Node> {
        let now = Instant::now();
        let reads = self.0.lock();
        reads
            .iter()
            .filter(|(_, sent)| sent.iter().any(|&at| now.duration_since(at) >= longer_than))
            .map(|(&node, _)| node)
            .collect()
    }

    /// Counts a read of `node` as under way until the guard drops: answered, failed,
    /// timed out or cancelled.
    pub(crate) fn reading(&self, node: Node) -> Reading<'_> {
        let sent = Instant::now();
        self.0.lock().entry(node).or_default().push(sent);
        Reading {
            reads: self,
            node,
            sent,
        }
    }
}

/// One resync read under way, counted while it lives.
pub(crate) struct Reading<'a> {
    reads: &'a ResyncReads,
    node: Node,
    sent: Instant,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut reads = self.reads.0.lock();
        if let Some(sent) = reads.get_mut(&self.node) {
            if let Some(index) = sent.iter().position(|&at| at == self.sent) {
                sent.swap_remove(index);
            }
            if sent.is_empty() {
                reads.remove(&self.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_stuck_while_a_read_of_it_older_than_the_limit_lives() {
        let reads = ResyncReads::default();
        let first = reads.reading(Some(1));
        let second = reads.reading(Some(1));
        let standalone = reads.reading(None);
        assert_eq!(reads.stuck(Duration::ZERO), HashSet::from([Some(1), None]));
        assert!(reads.stuck(Duration::from_secs(3600)).is_empty());
        drop(first);
        drop(standalone);
        assert_eq!(reads.stuck(Duration::ZERO), HashSet::from([Some(1)]));
        drop(second);
        assert!(reads.stuck(Duration::ZERO).is_empty());
    }
}
