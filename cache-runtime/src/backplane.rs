//! Tells other processes about invalidations (Redis pub/sub; messages carry no
//! values) and catches up on what they missed: after every (re)connection and every
//! resync interval, the Redis versions of all tags held here are re-read, so a lost
//! message bounds staleness by the interval instead of making it permanent.

use std::time::Duration;

use futures_util::StreamExt;

use crate::l2::{keys, L2};
use crate::{registry, tags};

const SEPARATOR: char = '\u{1f}';

/// An invalidation, as published on the namespace's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A tag, with the version its Redis counter reached.
    Tag {
        tag: String,
        version: u64,
    },
    Cache {
        cache: String,
        version: u64,
    },
    All {
        version: u64,
    },
    Entry {
        cache: String,
        key: Vec<u8>,
    },
}

impl Message {
    pub(crate) fn encode(&self, instance: u64) -> String {
        let s = SEPARATOR;
        match self {
            Message::Tag { tag, version } => format!("{instance:016x}{s}t{s}{version}{s}{tag}"),
            Message::Cache { cache, version } => {
                format!("{instance:016x}{s}c{s}{version}{s}{cache}")
            }
            Message::All { version } => format!("{instance:016x}{s}a{s}{version}"),
            Message::Entry { cache, key } => {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                format!("{instance:016x}{s}e{s}{hex}{s}{cache}")
            }
        }
    }

    pub(crate) fn decode(text: &str) -> Option<(u64, Self)> {
        let mut parts = text.splitn(3, SEPARATOR);
        let instance = u64::from_str_radix(parts.next()?, 16).ok()?;
        let kind = parts.next()?;
        let rest = parts.next()?;
        let versioned = || {
            let (version, name) = rest.split_once(SEPARATOR)?;
            Some((version.parse::<u64>().ok()?, name.to_owned()))
        };
        let message = match kind {
            "t" => versioned().map(|(version, tag)| Message::Tag { tag, version })?,
            "c" => versioned().map(|(version, cache)| Message::Cache { cache, version })?,
            "a" => Message::All {
                version: rest.parse().ok()?,
            },
            "e" => {
                let (hex, cache) = rest.split_once(SEPARATOR)?;
                let key = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()?;
                Message::Entry {
                    cache: cache.to_owned(),
                    key,
                }
            }
            _ => return None,
        };
        Some((instance, message))
    }
}

/// Applies another process's invalidation to this process's L1 only.
fn apply(message: Message) {
    match message {
        Message::Tag { tag, version } => {
            if let Some(cell) = tags::held(&tag) {
                cell.invalidated_at(version);
            }
        }
        Message::Cache { cache, version } => registry::invalidated_remotely(&cache, version),
        Message::All { version } => {
            tags::GLOBAL.invalidated_at(version);
            registry::clear_all_stores();
        }
        Message::Entry { cache, key } => registry::evict_encoded(&cache, &key),
    }
}

/// Re-reads the Redis version of every tag held here; a version that moved means a
/// missed invalidation, and the local tag is bumped.
pub(crate) async fn resync(l2: &L2) {
    let mut cells = vec![(keys::global_tag(&l2.namespace), tags::GLOBAL.clone())];
    cells.extend(
        registry::cache_tags()
            .into_iter()
            .map(|(name, cell)| (keys::cache_tag(&l2.namespace, &name), cell)),
    );
    cells.extend(
        tags::named_cells()
            .into_iter()
            .map(|(name, cell)| (keys::tag(&l2.namespace, &name), cell)),
    );
    let tag_keys: Vec<String> = cells.iter().map(|(key, _)| key.clone()).collect();
    match l2.versions(&tag_keys).await {
        Ok(versions) => {
            for ((_, cell), version) in cells.iter().zip(versions) {
                cell.observe_remote(version);
            }
            tracing::debug!(tags = cells.len(), "stratacache: tag versions resynced");
        }
        Err(fault) => tracing::debug!(%fault, "stratacache: resync skipped"),
    }
}

/// The subscriber task: subscribe, resync, apply messages; on any disconnection wait
/// and start again. Runs for the life of the process.
pub(crate) async fn run(l2: &'static L2, resync_every: Duration) {
    let mut resyncs = tokio::time::interval(resync_every);
    resyncs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::from_millis(100);
    // In a cluster, try the next node after a failure: any node will do, since a
    // message published on one reaches every node's subscribers.
    let mut nodes = l2.subscribers.iter().cycle();
    loop {
        let client = nodes.next().expect("at least one node");
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&l2.channel).await {
                Ok(()) => {
                    tracing::info!(channel = %l2.channel, "stratacache: backplane subscribed");
                    backoff = Duration::from_millis(100);
                    resync(l2).await;
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            message = messages.next() => match message {
                                Some(message) => receive(l2, &message),
                                None => break,
                            },
                            _ = resyncs.tick() => resync(l2).await,
                        }
                    }
                    tracing::warn!("stratacache: backplane disconnected; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "stratacache: backplane could not subscribe"),
            },
            Err(error) => tracing::debug!(%error, "stratacache: backplane cannot reach Redis yet"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn receive(l2: &L2, message: &redis::Msg) {
    let Ok(text) = message.get_payload::<String>() else {
        return;
    };
    match Message::decode(&text) {
        Some((sender, _)) if sender == l2.instance => {}
        Some((_, message)) => apply(message),
        None => {
            tracing::warn!(payload = %text, "stratacache: ignored a malformed backplane message")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Message::Tag {
                tag: "user:7|x".into(),
                version: 3,
            },
            Message::Cache {
                cache: "app::Repo::get".into(),
                version: 1,
            },
            Message::All { version: 9 },
            Message::Entry {
                cache: "users.get".into(),
                key: vec![0, 7, 255],
            },
        ] {
            assert_eq!(Message::decode(&message.encode(42)), Some((42, message)));
        }
        assert_eq!(Message::decode("garbage"), None);
    }
}
