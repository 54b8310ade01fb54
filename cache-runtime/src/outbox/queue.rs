//! The outbox's queue, and the rule that keeps coalescing safe.
//!
//! An invalidation made while an equal one waits is covered by it: delivering the
//! waiting one bumps its counter in Redis after both were made, past every version
//! recorded before either. That holds only while the waiting one's delivery has not
//! begun. Once it has, Redis may have bumped the counter already, before the new one
//! was made, and a value written in between (another process's load) would stay
//! current everywhere else. So an invalidation made during the delivery of an equal
//! one marks it to be delivered `again`: one entry per coalescing key still, and no
//! invalidation lost. The same goes for a namespace-wide invalidation, which covers
//! every other.
//!
//! The delivery task names an entry by the `id` its push gave it: while it delivers
//! one, an overflow may have replaced the queue.

use std::collections::VecDeque;

use super::Invalidation;
use crate::superseded;

/// An invalidation waiting for Redis.
struct Queued {
    id: u64,
    invalidation: Invalidation,
    /// The delivery task is delivering it: Redis may have taken it already.
    sending: bool,
    /// An invalidation it covers was made while it was being delivered.
    again: bool,
}

/// What became of a pushed invalidation.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Pushed {
    Queued,
    /// Covered by one that waits.
    Coalesced,
    /// The queue was full: this many, the new one included, fold into one
    /// namespace-wide invalidation.
    Overflowed(u64),
}

/// What became of a queued invalidation at the end of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// Delivered, and out of the queue.
    Removed,
    /// Still queued: its delivery failed, or it is due again.
    Waiting,
    /// No longer queued: an overflow replaced it meanwhile.
    Replaced,
}

#[derive(Default)]
pub(super) struct Queue {
    items: VecDeque<Queued>,
    next_id: u64,
}

impl Queue {
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `invalidation` unless one that waits covers it. What it changes in
    /// Redis is superseded here until it is delivered.
    pub(super) fn push(
        &mut self,
        invalidation: Invalidation,
        capacity: u64,
        namespace: &str,
    ) -> Pushed {
        let covering = self
            .items
            .iter_mut()
            .find(|q| q.invalidation.same_as(&invalidation) || q.invalidation.is_everything());
        if let Some(covering) = covering {
            covering.again |= covering.sending;
            return Pushed::Coalesced;
        }
        if self.items.len() as u64 >= capacity {
            let folded = self.items.len() as u64 + 1;
            self.items.clear();
            superseded::clear();
            self.add(Invalidation::all(), namespace);
            return Pushed::Overflowed(folded);
        }
        self.add(invalidation, namespace);
        Pushed::Queued
    }

    fn add(&mut self, invalidation: Invalidation, namespace: &str) {
        superseded::add(invalidation.redis_name(namespace));
        self.next_id += 1;
        self.items.push_back(Queued {
            id: self.next_id,
            invalidation,
            sending: false,
            again: false,
        });
    }

    /// At most `limit` of the invalidations to deliver, in the order they were
    /// queued, with their ids: not being delivered, and `ready`.
    pub(super) fn waiting(
        &self,
        limit: usize,
        mut ready: impl FnMut(u64, &Invalidation) -> bool,
    ) -> Vec<(u64, Invalidation)> {
        self.items
            .iter()
            .filter(|q| !q.sending && ready(q.id, &q.invalidation))
            .take(limit)
            .map(|q| (q.id, q.invalidation.clone()))
            .collect()
    }

    /// Marks the delivery of `id` begun; false if it is no longer queued.
    pub(super) fn begin(&mut self, id: u64) -> bool {
        let Some(queued) = self.items.iter_mut().find(|q| q.id == id) else {
            return false;
        };
        queued.sending = true;
        true
    }

    /// Ends the delivery of `id`: out of the queue if Redis took it and nothing
    /// made during the delivery needs it again.
    pub(super) fn end(&mut self, id: u64, delivered: bool, namespace: &str) -> Ended {
        let Some(at) = self.items.iter().position(|q| q.id == id) else {
            return Ended::Replaced;
        };
        let queued = &mut self.items[at];
        queued.sending = false;
        let again = std::mem::take(&mut queued.again);
        // A failed delivery is made again from the start, after whatever it covers.
        if !delivered || again {
            return Ended::Waiting;
        }
        if let Some(done) = self.items.remove(at) {
            superseded::remove(&done.invalidation.redis_name(namespace));
        }
        Ended::Removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "outbox-queue-test";

    fn queue_with(invalidation: Invalidation) -> (Queue, u64) {
        let mut queue = Queue::default();
        assert_eq!(queue.push(invalidation, 10, NS), Pushed::Queued);
        let [(id, _)] = queue.waiting(10, |_, _| true)[..] else {
            panic!("one invalidation waits");
        };
        (queue, id)
    }

    #[test]
    fn an_equal_invalidation_made_during_a_delivery_is_delivered_after_it() {
        let (mut queue, id) = queue_with(Invalidation::tag("queue-a"));
        assert!(queue.begin(id));
        // Redis may have bumped the counter already: this one is not covered yet.
        assert_eq!(
            queue.push(Invalidation::tag("queue-a"), 10, NS),
            Pushed::Coalesced
        );
        assert_eq!(queue.end(id, true, NS), Ended::Waiting, "lost");
        assert_eq!(
            queue.waiting(10, |_, _| true).len(),
            1,
            "one entry per tag still"
        );

        assert!(queue.begin(id));
        assert_eq!(queue.end(id, true, NS), Ended::Removed);
        assert!(queue.is_empty());
    }

    #[test]
    fn an_invalidation_made_during_a_namespace_wide_delivery_is_delivered_after_it() {
        let (mut queue, id) = queue_with(Invalidation::all());
        assert!(queue.begin(id));
        assert_eq!(
            queue.push(Invalidation::tag("queue-b"), 10, NS),
            Pushed::Coalesced
        );
        assert_eq!(queue.end(id, true, NS), Ended::Waiting, "lost");
    }

    #[test]
    fn an_invalidation_made_before_a_delivery_begins_is_covered_by_it() {
        let (mut queue, id) = queue_with(Invalidation::tag("queue-c"));
        assert_eq!(
            queue.push(Invalidation::tag("queue-c"), 10, NS),
            Pushed::Coalesced
        );
        assert!(queue.begin(id));
        assert_eq!(queue.end(id, true, NS), Ended::Removed);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_failed_delivery_stays_queued_once() {
        let (mut queue, id) = queue_with(Invalidation::tag("queue-d"));
        assert!(queue.begin(id));
        assert_eq!(
            queue.push(Invalidation::tag("queue-d"), 10, NS),
            Pushed::Coalesced
        );
        assert_eq!(queue.end(id, false, NS), Ended::Waiting);
        assert_eq!(queue.len(), 1);
        // Delivered from the start again, after the second was made: once is enough.
        assert!(queue.begin(id));
        assert_eq!(queue.end(id, true, NS), Ended::Removed);
    }
}
