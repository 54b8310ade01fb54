//! One invalidation on its way: what it covers, and its delivery to Redis and the
//! other processes.

use std::sync::Arc;

use crate::entry_changes;
use crate::l2::message::Message;
use crate::l2::{keys, Fault, Node, L2};
use crate::tags::{self, TagCell};

/// What one invalidation covers.
#[derive(Clone)]
enum Scope {
    Tag(String),
    Cache(String),
    All,
    /// One entry: its Redis key, and its cache and serialized key for the message.
    Entry {
        cache: String,
        key: Vec<u8>,
        entry_key: String,
    },
}

/// An invalidation, already applied in this process, to carry to Redis and to the
/// other processes.
#[derive(Clone)]
pub(crate) struct Invalidation {
    scope: Scope,
    /// A cache's or the global tag's cell, which a delivery bumps again (a named
    /// tag's is looked up then: a read in between may be what holds it).
    cell: Option<Arc<TagCell>>,
    /// What a delivery of an entry runs again here (evicts the key).
    reapply: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Invalidation {
    pub(crate) fn tag(tag: &str) -> Self {
        Self::counted(Scope::Tag(tag.to_owned()), None)
    }

    pub(crate) fn cache(name: &str, cell: Arc<TagCell>) -> Self {
        Self::counted(Scope::Cache(name.to_owned()), Some(cell))
    }

    pub(crate) fn all() -> Self {
        Self::counted(Scope::All, Some(tags::GLOBAL.clone()))
    }

    pub(crate) fn entry(
        cache: &str,
        key: Vec<u8>,
        entry_key: String,
        reapply: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Self {
        Self {
            scope: Scope::Entry {
                cache: cache.to_owned(),
                key,
                entry_key,
            },
            cell: None,
            reapply,
        }
    }

    fn counted(scope: Scope, cell: Option<Arc<TagCell>>) -> Self {
        Self {
            scope,
            cell,
            reapply: None,
        }
    }

    /// The counter a delivery bumps: an entry's is its cache's entry-change counter.
    fn counter(&self, namespace: &str) -> String {
        match &self.scope {
            Scope::Tag(tag) => keys::tag(namespace, tag),
            Scope::Cache(cache) => keys::cache_tag(namespace, cache),
            Scope::All => keys::global_tag(namespace),
            Scope::Entry { cache, .. } => keys::entry_changes(namespace, cache),
        }
    }

    fn message(&self, version: u64) -> Message {
        match &self.scope {
            Scope::Tag(tag) => Message::Tag {
                tag: tag.clone(),
                version,
            },
            Scope::Cache(cache) => Message::Cache {
                cache: cache.clone(),
                version,
            },
            Scope::All => Message::All { version },
            Scope::Entry { cache, key, .. } => Message::Entry {
                cache: cache.clone(),
                key: key.clone(),
                version,
            },
        }
    }

    /// Whether it covers the whole namespace, and so every other.
    pub(super) fn is_everything(&self) -> bool {
        matches!(self.scope, Scope::All)
    }

    /// Two invalidations with the same coalescing key do the same thing.
    pub(super) fn same_as(&self, other: &Self) -> bool {
        match (&self.scope, &other.scope) {
            (Scope::Tag(a), Scope::Tag(b)) | (Scope::Cache(a), Scope::Cache(b)) => a == b,
            (Scope::All, Scope::All) => true,
            (Scope::Entry { entry_key: a, .. }, Scope::Entry { entry_key: b, .. }) => a == b,
            _ => false,
        }
    }

    /// What Redis holds that this invalidation changes: a counter, or the entry.
    pub(super) fn redis_name(&self, namespace: &str) -> String {
        match &self.scope {
            Scope::Entry { entry_key, .. } => entry_key.clone(),
            _ => self.counter(namespace),
        }
    }

    /// The nodes that hold what it changes in Redis: its counter's, and an entry's
    /// tombstone's. (Every delivery also publishes on the channel's node, and a named
    /// tag's logs its bump on the log's: shared by all, they tell none apart.)
    pub(super) fn nodes(&self, l2: &L2) -> Vec<Node> {
        let mut nodes = vec![l2.node_of(&self.counter(&l2.namespace))];
        if let Scope::Entry { entry_key, .. } = &self.scope {
            nodes.push(l2.node_of(entry_key));
        }
        nodes
    }

    /// Bumps the counter (and puts an entry's tombstone) in Redis, then tells the
    /// others; on a cluster, logs a named tag's bump last (see [`L2::log_bump`]).
    pub(super) async fn deliver(&self, l2: &L2) -> Result<(), Fault> {
        let counter = self.counter(&l2.namespace);
        let (tombstone, cache) = match &self.scope {
            Scope::Entry {
                entry_key, cache, ..
            } => (Some(entry_key.as_str()), Some(cache)),
            _ => (None, None),
        };
        let version = l2.invalidate(Some(&counter), tombstone).await?.unwrap_or(0);
        // Applied here before Redis took it, so a read in between found the entry
        // still current in Redis, under this process's new versions, and L1 may hold
        // it: applying it again drops that copy.
        let cell = match &self.scope {
            Scope::Tag(tag) => {
                tags::bump_named(tag);
                tags::held(tag)
            }
            _ => {
                self.cell.iter().for_each(|cell| cell.bump());
                self.cell.clone()
            }
        };
        if let Some(reapply) = &self.reapply {
            reapply();
        }
        // So that this process does not apply its own invalidation again when it
        // next reads the counter.
        cell.iter().for_each(|cell| cell.learn_remote(version));
        cache
            .iter()
            .for_each(|cache| entry_changes::heard(cache, version));
        let message = self.message(version);
        // The message and the log of a named tag's bump (on a cluster, see
        // `L2::log_bump`) at once: either reaches the others, the message now, the log
        // at their next resync. So a named tag's delivery is done once its bump is
        // logged, whatever became of the message: with the channel's master down or
        // hanging, the message waits for its timeout and fails, and the log, written
        // meanwhile, bounds what the others miss by their resync. (The log was written
        // after the message, and only if it went.) A bump not logged, or any other
        // invalidation's message not sent, makes the whole delivery again: the
        // message is what tells the others of one entry, where a resync drops its
        // whole cache.
        let (published, logged) = futures_util::future::join(
            l2.publish(message.encode(l2.instance)),
            l2.log_bump(&counter),
        )
        .await;
        logged?;
        match published {
            Err(fault) if !l2.bump_is_logged(&counter) => Err(fault),
            _ => Ok(()),
        }
    }
}
