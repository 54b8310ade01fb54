//! Tells other processes about invalidations (Redis pub/sub; messages carry no
//! values) and catches up on what they missed: after every (re)connection and every
//! resync interval, the Redis versions of the tags held here that may have moved are
//! re-read (see [`resync`](mod@resync)), so a lost message bounds staleness by the interval
//! instead of making it permanent.

mod restarts;
mod resync;
mod rollback;

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Fuse, FusedFuture};
use futures_util::{FutureExt, StreamExt};

use crate::l2::message::Message;
use crate::l2::L2;
use crate::{entry_changes, registry, tags};

pub(crate) use resync::drop_l1_while_unsynced;
use resync::{resync, Hearing};

/// The longest wait between two attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How often a cluster subscriber checks that it listens on the channel's master.
const PLACEMENT_CHECK: Duration = Duration::from_millis(500);
/// How often the subscription is pinged. A NAT or a load balancer drops a flow idle
/// for long enough (AWS's NAT gateway: 350 s) without a word to either end, and the
/// subscriber, which never writes, would wait on it for good; the ping keeps the flow
/// busy, and a ping unanswered within [`PING_ANSWER`] means it is gone. A server
/// that hangs (frozen, or its host lost behind a load balancer) is found the same
/// way, and the subscription made again elsewhere catches up on what was missed
/// meanwhile: so the two add up to under a second. (At 2 s and 1 s, a hanging
/// channel master left a cluster's processes deaf for up to 3 s, past the fleet
/// checker's bound.) Four pings a second are nothing to Redis; a server too busy to
/// answer one in 500 ms costs a subscription made again and one resync.
const PING_EVERY: Duration = Duration::from_millis(250);
const PING_ANSWER: Duration = Duration::from_millis(500);
/// How long a subscription may take to be made where another node could take it: a
/// cluster node that accepts a connection and answers nothing (frozen, or its host
/// gone behind a load balancer) would otherwise hold the backplane for good. With one
/// node, the attempt waits for it (resyncing meanwhile), and subscribes the moment it
/// answers again: given up and made again, it subscribed up to 1.5 s later, and
/// missed what the outboxes delivered meanwhile (the fleet checker's freeze).
const SUBSCRIBE_WITHIN: Duration = Duration::from_secs(1);

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
        Message::Entry {
            cache,
            key,
            version,
        } => {
            registry::evict_encoded(&cache, &key);
            entry_changes::heard(&cache, version);
        }
    }
}

/// The subscriber task: subscribe, resync, apply messages; on any disconnection wait
/// and start again. Runs for the life of the process.
pub(crate) async fn run(l2: &'static L2, resync_every: Duration) {
    let mut resyncs = tokio::time::interval(resync_every);
    resyncs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::from_millis(100);
    let mut refused = 0;
    // In a cluster, try the next node after a failure: any node will do, since a
    // message published on one reaches every node's subscribers.
    let mut nodes = l2.subscribers.iter().cycle();
    let mut moved = None;
    // Whether the last subscription at the channel's master failed or was lost: the
    // next attempt goes to another node. That master's circuit may stay closed here
    // while it is down or hanging (a subscription it refuses does not count, and
    // this process may send it nothing else), and the backplane would go back to it,
    // hearing nothing, for as long as the fault lasts.
    let mut owner_failed = false;
    loop {
        // A subscription moved to the channel's master was made before the old one
        // went: no message fell between them. Any other may have missed some.
        let hearing = if moved.is_some() {
            Hearing::Listening
        } else {
            Hearing::AfterGap
        };
        let (client, pubsub) = match moved.take() {
            Some(moved) => moved,
            None => {
                let owner = l2.channel_subscriber();
                let client = match owner {
                    Some(owner) if !owner_failed => owner,
                    // Never the channel's master, though its circuit is open (no
                    // `owner` then): a backplane that found it unanswered just as its
                    // calls there opened the circuit went back to it, if it came
                    // next in turn, and waited out a subscription there.
                    _ => next_node(&mut nodes, l2.channel_master(), l2.subscribers.len()),
                };
                let at_owner = owner.is_some_and(|owner| std::ptr::eq(owner, client));
                match resyncing(l2, &mut resyncs, subscribe(l2, client)).await {
                    Ok(pubsub) => {
                        refused = 0;
                        owner_failed = false;
                        (client, pubsub)
                    }
                    Err(refusal) => {
                        owner_failed = at_owner;
                        note_refusal(refusal, &mut refused);
                        resyncing(l2, &mut resyncs, tokio::time::sleep(backoff)).await;
                        // Capped low: after an outage, the messages the outboxes
                        // deliver reach only the processes subscribed again by then
                        // (the others catch up on resubscribing).
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        };
        backoff = Duration::from_millis(100);
        begin_resync(l2, hearing, &resyncs);
        moved = listen(l2, client, pubsub, &mut resyncs).await;
        if moved.is_none() {
            owner_failed = l2.subscribers.len() > 1
                && l2
                    .channel_subscriber()
                    .is_some_and(|owner| std::ptr::eq(owner, client));
            tracing::warn!("stratacache: backplane disconnected; reconnecting");
            resyncing(l2, &mut resyncs, tokio::time::sleep(backoff)).await;
        }
    }
}

/// Waits for `work` while resyncing at every tick of `resyncs`: a backplane that is
/// not listening (subscribing, or waiting to try again) hears nothing, and only the
/// resync bounds what it misses meanwhile. (It resynced only once subscribed again:
/// with the channel's master hanging, not for two seconds and more.)
async fn resyncing<T>(
    l2: &'static L2,
    resyncs: &mut tokio::time::Interval,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = resyncs.tick() => begin_resync(l2, Hearing::Deaf, resyncs),
        }
    }
}

/// Begins a resync on a task of its own: nothing waits for it, and the next begins
/// at the next tick whether it has ended or not (see [`resync`]). A resync waiting on
/// a hanging master's timeout (a read of its counters) held back the next one, when
/// that timeout was the longer, and, waited for here, the subscription being made.
fn begin_resync(l2: &'static L2, hearing: Hearing, resyncs: &tokio::time::Interval) {
    tokio::spawn(resync(l2, hearing, resyncs.period()));
}

/// The next node in turn other than `owner` (the channel's master), if there is one.
fn next_node<'a>(
    nodes: &mut impl Iterator<Item = &'a redis::Client>,
    owner: Option<&redis::Client>,
    count: usize,
) -> &'a redis::Client {
    let mut first = None;
    for node in nodes.take(count) {
        if !owner.is_some_and(|owner| std::ptr::eq(owner, node)) {
            return node;
        }
        first.get_or_insert(node);
    }
    first.expect("at least one node")
}

/// Logs a refused subscription (`None`: Redis was not reached, logged already).
/// `refused` counts them in a row: only the first is a warning, since a refusal that
/// lasts (a server that wants a password the URL lacks) would log one every
/// `MAX_BACKOFF`.
fn note_refusal(refusal: Option<redis::RedisError>, refused: &mut u64) {
    let Some(error) = refusal else { return };
    if *refused == 0 {
        tracing::warn!(%error, "stratacache: backplane could not subscribe; trying again, quietly, until it can");
    } else {
        tracing::debug!(%error, "stratacache: backplane could not subscribe");
    }
    *refused += 1;
}

/// A subscription to the channel; `Err(Some(_))` when Redis refused it (`Err(None)`
/// when it could not be reached).
async fn subscribe(
    l2: &L2,
    client: &redis::Client,
) -> Result<redis::aio::PubSub, Option<redis::RedisError>> {
    let subscribing = async {
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => {
                tracing::debug!(%error, "stratacache: backplane cannot reach Redis yet");
                return Err(None);
            }
        };
        pubsub.subscribe(&l2.channel).await.map_err(Some)?;
        Ok(pubsub)
    };
    let subscribed = if l2.subscribers.len() > 1 {
        let Ok(subscribed) = tokio::time::timeout(SUBSCRIBE_WITHIN, subscribing).await else {
            tracing::debug!("stratacache: backplane subscription unanswered");
            return Err(None);
        };
        subscribed
    } else {
        subscribing.await
    };
    if subscribed.is_ok() {
        tracing::info!(channel = %l2.channel, "stratacache: backplane subscribed");
    }
    subscribed
}

/// Applies messages until the subscription drops or stops answering its ping
/// (`None`), or until, on a cluster,
/// a subscription on the channel's master is in place: a message published there
/// and read from another node crosses the cluster bus, which was seen to add up to
/// 40 ms. The new subscription is made before the old one is dropped, so no message
/// falls between them (one may come twice; applying it twice does nothing more).
///
/// The ping and that move each run beside the listening, not instead of it (one of
/// each at a time), and each resync on a task of its own ([`begin_resync`]): with a
/// master hanging, each waits for a timeout (a resync's read of its counters, the
/// ping, a subscription there), and the loop, waiting with them in turn, applied no
/// message and began no resync meanwhile.
async fn listen(
    l2: &'static L2,
    client: &'static redis::Client,
    pubsub: redis::aio::PubSub,
    resyncs: &mut tokio::time::Interval,
) -> Option<(&'static redis::Client, redis::aio::PubSub)> {
    let mut placement = tokio::time::interval(PLACEMENT_CHECK);
    let mut pings = tokio::time::interval(PING_EVERY);
    let (sink, mut messages) = pubsub.split();
    // The sink goes with each ping and comes back with its answer.
    let mut sink = Some(sink);
    let mut pinging = pin!(Fuse::terminated());
    let mut moving = pin!(Fuse::terminated());
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => receive(l2, &message),
                None => return None,
            },
            _ = resyncs.tick() => begin_resync(l2, Hearing::Listening, resyncs),
            pinged = &mut pinging => {
                let (back, answered): (redis::aio::PubSubSink, bool) = pinged;
                if !answered {
                    tracing::warn!("stratacache: backplane subscription unanswered; subscribing again");
                    return None;
                }
                sink = Some(back);
            }
            _ = pings.tick(), if pinging.is_terminated() => {
                let mut sending = sink.take().expect("back from the last ping");
                pinging.set(async move {
                    let pong = tokio::time::timeout(PING_ANSWER, sending.ping::<redis::Value>()).await;
                    (sending, matches!(pong, Ok(Ok(_))))
                }.fuse());
            }
            (owner, moved) = &mut moving => if let Ok(moved) = moved {
                tracing::info!("stratacache: backplane moved to the channel's master");
                return Some((owner, moved));
            },
            _ = placement.tick(), if moving.is_terminated() => {
                if let Some(owner) = l2.channel_subscriber().filter(|o| !std::ptr::eq(*o, client)) {
                    moving.set(async move { (owner, subscribe(l2, owner).await) }.fuse());
                }
            }
        }
    }
}

fn receive(l2: &L2, message: &redis::Msg) {
    let Ok(text) = message.get_payload::<String>() else {
        return;
    };
    let Ok(text) = crate::l2::message::open(&text, l2.protection.signer()) else {
        if crate::stats::count_unauthenticated_message() {
            tracing::warn!("stratacache: ignored a backplane message not signed by a configured secret (logged once; counted as `unauthenticated_messages`)");
        }
        return;
    };
    match Message::decode(text) {
        Some((sender, _)) if sender == l2.instance => {}
        Some((_, message)) => apply(message),
        None => {
            tracing::warn!(payload = %text, "stratacache: ignored a malformed backplane message")
        }
    }
}
