//! Runtime of [stratacache](https://docs.rs/stratacache): the registry of caches, the
//! cache-aside engine, tag versions and statistics. Use it through the `stratacache`
//! facade; the `#[cached]` attribute generates calls into [`__private`].

mod backplane;
mod batch_output;
mod clock;
mod config;
mod engine;
mod error;
mod export;
mod flight;
pub mod l1;
mod l2;
mod registry;
mod shape;
mod shared_error;
mod stats;
mod tags;
pub mod this_load;
mod warm;

use std::future::Future;

pub use config::{init, Config};
pub use error::{Error, TimedOut};
pub use export::prometheus;
pub use l2::codec::PayloadFormat;
pub use registry::stats;
pub use shared_error::{ShareableError, SharedError};
pub use stats::{CacheStatsSnapshot, LoadHistogram, StatsSnapshot, LOAD_BUCKETS_MICROS};
pub use warm::WarmUp;

/// Invalidates every entry, in every cache, that was stored with tag `tag`.
///
/// O(1) whatever the number of entries: the tag's version is bumped and entries that
/// recorded the old version are never served again. A load that was in flight when
/// this was called does not store a value that survives it. Prefer the
/// `invalidate_tag!` macro, which takes format arguments.
///
/// This process applies it at once. With the Redis tier on, the future also bumps the
/// tag's counter in Redis (entries there become invalid for every process) and tells
/// the other processes; it fails with [`Error::Redis`] if Redis did not take it.
pub fn invalidate_tag(tag: &str) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::bump_named(tag);
    let remote = l2::active().map(|l2| {
        // The cell records the version this produces, so that this process does not
        // apply its own invalidation a second time when it next reads the counter.
        let cell = tags::held(tag).unwrap_or_default();
        (
            l2,
            (l2::keys::tag(&l2.namespace, tag), cell),
            tag.to_owned(),
        )
    });
    async move {
        match remote {
            Some((l2, bump, tag)) => {
                let message = |version| backplane::Message::Tag { tag, version };
                engine::publish(l2, Some(bump), None, message).await
            }
            None => Ok(()),
        }
    }
}

/// Invalidates every entry of every cache, here, in Redis and in the other processes.
pub fn clear_all() -> impl Future<Output = Result<(), Error>> + Send + 'static {
    tags::GLOBAL.bump();
    registry::clear_all_stores();
    let remote = l2::active().map(|l2| (l2, l2::keys::global_tag(&l2.namespace)));
    async move {
        match remote {
            Some((l2, counter)) => {
                let bump = Some((counter, tags::GLOBAL.clone()));
                engine::publish(l2, bump, None, |version| backplane::Message::All {
                    version,
                })
                .await
            }
            None => Ok(()),
        }
    }
}

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
