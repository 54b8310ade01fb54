//! Runtime of [stratacache](https://docs.rs/stratacache): the registry of caches, the
//! cache-aside engine, tag versions and statistics. Use it through the `stratacache`
//! facade; the `#[cached]` attribute generates calls into [`__private`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod as_future;
mod background;
mod backplane;
mod batch_output;
mod blocking;
mod checks;
mod clock;
mod config;
mod engine;
mod entry_changes;
mod entry_ref;
mod error;
mod export;
mod flight;
mod flights;
mod init;
pub mod inspect;
pub mod l1;
mod l2;
mod outbox;
#[cfg(feature = "postgres")]
pub mod postgres;
mod registry;
mod shape;
mod shared_error;
mod spelled;
mod stats;
mod stripe;
mod superseded;
mod sync;
mod tags;
pub mod this_load;
mod times;
mod values;
mod warm;
mod warm_tally;

#[cfg(all(test, stratacache_loom))]
mod loom_tests;

use std::future::Future;

pub use background::flush_writes;
pub use blocking::block_on;
pub use config::{Config, Secret};
pub use error::{Error, TimedOut};
pub use init::init;
pub use l2::codec::PayloadFormat;
pub use outbox::flush_invalidations;
pub use registry::stats;
pub use shared_error::{ShareableError, SharedError};
pub use stats::OutboxSnapshot;
pub use stats::{CacheStatsSnapshot, LoadHistogram, StatsSnapshot, LOAD_BUCKETS_MICROS};
pub use warm_tally::WarmUp;

/// Renders [`stats()`] in the Prometheus text format, for a `/metrics` endpoint.
///
/// ```
/// let text = stratacache_runtime::prometheus();
/// assert!(text.is_empty() || text.contains("# TYPE stratacache_hits_total counter"));
/// ```
pub fn prometheus() -> String {
    export::render(&registry::stats())
}

/// Invalidates every entry, in every cache, that was stored with tag `tag`.
///
/// O(1) whatever the number of entries: the tag's version is bumped and entries that
/// recorded the old version are never served again. A load that was in flight when
/// this was called does not store a value that survives it. Prefer the
/// `invalidate_tag!` macro, which takes format arguments.
///
/// This process applies it at once. With the Redis tier on, the future also bumps the
/// tag's counter in Redis (entries there become invalid for every process) and tells
/// the other processes. If Redis cannot take it now, it waits in the outbox and is
/// delivered as soon as Redis answers again (see [`OutboxSnapshot`]); the future
/// returns `Ok` either way, so a write handler's `?` never fails because of Redis.
/// (The `Result` stays for errors a later version may report.) Dropping the future
/// does not take the invalidation back: one dropped before it is done goes to the
/// outbox, which delivers it.
pub fn invalidate_tag(tag: &str) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::bump_named(tag);
    send(outbox::Invalidation::tag(tag))
}

/// Invalidates every entry of every cache, here, in Redis and in the other processes
/// (delivered or queued as [`invalidate_tag`] is).
pub fn clear_all() -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::GLOBAL.bump();
    registry::clear_all_stores();
    send(outbox::Invalidation::all())
}

/// Carries an invalidation this process has applied to Redis and the other
/// processes, or to the outbox (also if the future is dropped first).
fn send(
    invalidation: outbox::Invalidation,
) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    let sending = l2::active().map(|l2| outbox::Sending::new(l2, invalidation).deliver());
    async move {
        if let Some(sending) = sending {
            sending.await;
        }
        Ok(())
    }
}

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The decoders of bytes that come from Redis, for the fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzz {
    use crate::l2::codec::PayloadFormat;

    /// Decodes an envelope; true if it was accepted.
    pub fn envelope(bytes: &[u8]) -> bool {
        crate::l2::envelope::Envelope::decode(bytes).is_ok()
    }

    /// Decodes `"SC" | 4 | body | checksum of it`: past the checksum, so that the
    /// fuzzer reaches the parser behind it.
    pub fn sealed_envelope(body: &[u8]) -> bool {
        let mut bytes = b"SC\x04".to_vec();
        bytes.extend_from_slice(body);
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        crate::l2::envelope::Envelope::decode(&bytes).is_ok()
    }

    /// Parses a backplane message; true if it was accepted.
    pub fn message(text: &str) -> bool {
        crate::l2::message::Message::decode(text).is_some()
    }

    /// Decodes a payload as the codec of a shared cache of `V` does.
    pub fn value<V>(bytes: &[u8], json: bool) -> Option<V>
    where
        V: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let format = if json {
            PayloadFormat::Json
        } else {
            PayloadFormat::Postcard
        };
        let codec = crate::l2::codec::serde_codec::<u64, V>();
        (codec.decode_value)(bytes, format)
    }
}
