//! The delivery task's attempts on their way, and the nodes each waits on, so that
//! a master that hangs neither takes every place nor is sent more and more.
//!
//! An attempt on its way for [`STUCK_AFTER`] or longer waits on a node that hangs
//! or is overloaded (a healthy one answers in a millisecond or two). It then
//! - **gives up its place:** with [`DELIVERIES_IN_FLIGHT`] or more queued for a
//!   hanging master, their attempts took every place, each waiting out its timeout,
//!   and an invalidation whose master answers waited that long for one;
//! - **holds its nodes:** no other attempt goes to them until it ends, so the number
//!   on their way stays bounded, and a master that is slow for being overloaded is
//!   not loaded more.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::l2::Node;

/// How many queued invalidations are on their way at once, stuck ones aside (after
/// an outage, the queue may hold thousands).
pub(super) const DELIVERIES_IN_FLIGHT: usize = 64;

/// How long an attempt is on its way before it counts as waiting on a node that
/// hangs.
pub(super) const STUCK_AFTER: Duration = Duration::from_millis(200);

/// One attempt on its way.
struct OnItsWay {
    began: Instant,
    nodes: Vec<Node>,
}

impl OnItsWay {
    fn stuck(&self, now: Instant) -> bool {
        now.duration_since(self.began) >= STUCK_AFTER
    }
}

/// The attempts on their way, by the id of the invalidation each delivers.
#[derive(Default)]
pub(super) struct Places(HashMap<u64, OnItsWay>);

impl Places {
    pub(super) fn began(&mut self, id: u64, nodes: Vec<Node>, now: Instant) {
        self.0.insert(id, OnItsWay { began: now, nodes });
    }

    pub(super) fn ended(&mut self, id: u64) {
        self.0.remove(&id);
    }

    /// How many more attempts may begin now.
    pub(super) fn room(&self, now: Instant) -> usize {
        let holding = self.0.values().filter(|a| !a.stuck(now)).count();
        DELIVERIES_IN_FLIGHT.saturating_sub(holding)
    }

    /// The nodes a stuck attempt waits on: no attempt goes to them now.
    pub(super) fn held(&self, now: Instant) -> HashSet<Node> {
        self.0
            .values()
            .filter(|a| a.stuck(now))
            .flat_map(|a| a.nodes.iter().copied())
            .collect()
    }

    /// When the next attempt on its way becomes stuck, giving up its place.
    pub(super) fn next_stuck(&self, now: Instant) -> Option<Instant> {
        self.0
            .values()
            .filter(|a| !a.stuck(now))
            .map(|a| a.began + STUCK_AFTER)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_attempt_gives_up_its_place_and_holds_its_nodes() {
        let start = Instant::now();
        let mut places = Places::default();
        for id in 0..DELIVERIES_IN_FLIGHT as u64 {
            places.began(id, vec![Some(1)], start);
        }
        assert_eq!(places.room(start), 0);
        assert!(places.held(start).is_empty());
        assert_eq!(places.next_stuck(start), Some(start + STUCK_AFTER));

        let later = start + STUCK_AFTER;
        places.began(100, vec![Some(2), None], later);
        assert_eq!(places.room(later), DELIVERIES_IN_FLIGHT - 1);
        assert_eq!(places.held(later), HashSet::from([Some(1)]));
        assert_eq!(places.next_stuck(later), Some(later + STUCK_AFTER));

        let much_later = later + STUCK_AFTER;
        assert_eq!(
            places.held(much_later),
            HashSet::from([Some(1), Some(2), None])
        );
        for id in 0..DELIVERIES_IN_FLIGHT as u64 {
            places.ended(id);
        }
        assert_eq!(places.held(much_later), HashSet::from([Some(2), None]));
        places.ended(100);
        assert_eq!(places.room(much_later), DELIVERIES_IN_FLIGHT);
        assert_eq!(places.next_stuck(much_later), None);
    }
}
