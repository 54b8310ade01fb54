//! The nodes a resync is still reading, so that the next one leaves them to it rather
//! than waiting for them: a resync is begun at every tick of the interval, whether
//! the last has ended or not (see `backplane::resync`).

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;

/// A node a resync reads: a cluster master, by its index in the slot map
/// ([`Breakers::master_of`](super::routing::Breakers::master_of)), or `None` for a
/// standalone server and for the slots the map does not cover.
pub(crate) type Node = Option<usize>;

/// How many resync reads of each node are under way, over every resync running.
#[derive(Default)]
pub(crate) struct ResyncReads(Mutex<HashMap<Node, usize>>);

impl ResyncReads {
    /// The nodes some resync is still reading: asked as a resync begins, before it
    /// reads anything, they are an earlier one's. After a change of the slot map an
    /// index may name another master: a resync may then read a master an earlier one
    /// still reads, or leave one alone that it need not; either is caught up by the
    /// next.
    pub(crate) fn busy(&self) -> HashSet<Node> {
        self.0.lock().keys().copied().collect()
    }

    /// Counts `node` as being read until the guard drops: answered, failed, timed out
    /// or cancelled.
    pub(crate) fn reading(&self, node: Node) -> Reading<'_> {
        *self.0.lock().entry(node).or_default() += 1;
        Reading { reads: self, node }
    }
}

/// A resync's reading of one node, counted while it lives.
pub(crate) struct Reading<'a> {
    reads: &'a ResyncReads,
    node: Node,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut counts = self.reads.0.lock();
        if let Some(count) = counts.get_mut(&self.node) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_busy_while_any_reading_of_it_lives() {
        let reads = ResyncReads::default();
        let first = reads.reading(Some(1));
        let second = reads.reading(Some(1));
        let standalone = reads.reading(None);
        assert_eq!(reads.busy(), HashSet::from([Some(1), None]));
        drop(first);
        drop(standalone);
        assert_eq!(reads.busy(), HashSet::from([Some(1)]));
        drop(second);
        assert!(reads.busy().is_empty());
    }
}
