//! Writing an entry only over what its load saw, and the tombstone an entry's
//! invalidation leaves in its place.
//!
//! A load reads the entry's key before its loader runs (step 1) and writes its value
//! back after (step 6). If another process invalidated the entry, `put!` a value in
//! it or refreshed it in between, the load's value is older than that change: written
//! over it with a plain `SET`, it would stand in Redis, for every process, until its
//! ttl, the invalidation's message having come too late to stop the write. So the
//! write-back is a compare-and-set: it lands only while the key still holds what the
//! read saw ([`Prior`]). An invalidation cannot leave the key empty, as an empty key
//! is also what a load that began before it may have seen: it writes a tombstone
//! (unique to that invalidation), which reads as a miss, for
//! [`Config::tombstone_ttl`](crate::Config::tombstone_ttl). A load writes back only
//! within half of that after its read ([`WriteUnder`](super::entry::WriteUnder)), so
//! the tombstone of an invalidation made after the read outlives the write: without
//! that bound, a load longer than the tombstone's life would find the key empty, as
//! its read did, and write its older value there.
//!
//! A value written over the key (a `put!`, a `refresh!`, a load's write-back over a
//! tombstone) replaces what such a load read just as a tombstone does, so its key
//! lives in Redis at least as long ([`key_life_ms`]), past the entry's own end if
//! need be: an entry that can no longer serve reads as a miss, but still holds the
//! key. Dropped at its own end, a short-lived entry left the key empty again, and a
//! load that read it empty before the write, in a process that missed the write's
//! message, wrote its older value there for every process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64;

use crate::times::NEVER;

/// What the read before a load found at the entry's key, which its write-back may
/// replace; or, for `put!`, anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Prior {
    Absent,
    /// A value, known by its length and last bytes: an envelope's last bytes are a
    /// checksum of all the others, a tombstone's a number unique to it. (Comparing
    /// those, not the whole value, keeps a large value off the wire a second time.)
    Held {
        len: usize,
        tail: [u8; TAIL],
    },
    /// Replace whatever is there (`put!`: the caller's value is the newest).
    Anything,
}

/// How many last bytes identify a value: an envelope's checksum.
const TAIL: usize = 8;

impl Prior {
    /// What a read found: `None` is an absent key.
    pub(crate) fn of(bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => Self::Absent,
            Some(bytes) => {
                let last = &bytes[bytes.len().saturating_sub(TAIL)..];
                let mut tail = [0; TAIL];
                tail[..last.len()].copy_from_slice(last);
                Self::Held {
                    len: bytes.len(),
                    tail,
                }
            }
        }
    }

    /// The last bytes `GETRANGE key -8 -1` answers for the value: all of a short one.
    fn tail(&self) -> &[u8] {
        match self {
            Self::Held { len, tail } => &tail[..(*len).min(TAIL)],
            Self::Absent | Self::Anything => &[],
        }
    }
}

/// Sets `KEYS[1]` to `ARGV[3]` (with `PX ARGV[4]` unless 0) only if it holds a value
/// of length `ARGV[1]` (0: none) ending in `ARGV[2]` (its last [`TAIL`] bytes); 1 if
/// it did. `STRLEN` and `GETRANGE` read no more than that of the value held.
const SET_IF_UNCHANGED: &str = "local len = redis.call('STRLEN', KEYS[1]) \
    if len ~= tonumber(ARGV[1]) then return 0 end \
    if len > 0 and redis.call('GETRANGE', KEYS[1], -8, -1) ~= ARGV[2] then return 0 end \
    if ARGV[4] == '0' then redis.call('SET', KEYS[1], ARGV[3]) \
    else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end \
    return 1";

/// The command that writes `bytes` at `key` over `prior` (see the module's doc); it
/// answers 0 if the key had changed, anything else if it wrote ([`wrote`]).
pub(crate) fn write_command(
    key: &str,
    bytes: &[u8],
    ttl_ms: Option<u64>,
    prior: &Prior,
) -> redis::Cmd {
    let px = ttl_ms.map_or(0, |ttl| ttl.max(1));
    let (len, tail): (usize, &[u8]) = match prior {
        Prior::Anything => {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(bytes);
            if px > 0 {
                cmd.arg("PX").arg(px);
            }
            return cmd;
        }
        Prior::Absent => (0, prior.tail()),
        Prior::Held { len, .. } => (*len, prior.tail()),
    };
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SET_IF_UNCHANGED)
        .arg(1)
        .arg(key)
        .arg(len)
        .arg(tail)
        .arg(bytes)
        .arg(px);
    cmd
}

/// The `PX` of an entry written at `now_ms` that can serve (as a fallback too) until
/// `keep_until_ms`: never less than a tombstone's life (see the module's doc);
/// `None` for an entry with no end.
pub(crate) fn key_life_ms(keep_until_ms: u64, now_ms: u64, tombstone_ttl: Duration) -> Option<u64> {
    let tombstone_ms = u64::try_from(tombstone_ttl.as_millis()).unwrap_or(u64::MAX);
    (keep_until_ms != NEVER).then(|| keep_until_ms.saturating_sub(now_ms).max(tombstone_ms))
}

/// Whether a [`write_command`] wrote.
pub(crate) fn wrote(reply: &redis::Value) -> bool {
    !matches!(reply, redis::Value::Int(0))
}

/// Starts every tombstone: an envelope's magic with a format version no envelope has,
/// so a reader of any version takes it for a value it cannot use, never for a value.
const TOMBSTONE: &[u8; 8] = b"SC\xffgone:";

/// `allow-oom`: an invalidation must go through while Redis is full (as the
/// counters' bump does); a tombstone is smaller than most values it replaces.
const SET_TOMBSTONE: &str = "#!lua flags=allow-oom\n\
    return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])";

/// The command that replaces the entry at `key` by a tombstone of its own for `ttl`.
pub(crate) fn tombstone_command(key: &str, instance: u64, ttl: Duration) -> redis::Cmd {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SET_TOMBSTONE)
        .arg(1)
        .arg(key)
        .arg(tombstone(instance, MADE.fetch_add(1, Ordering::Relaxed)))
        .arg(crate::clock::to_ms(ttl).max(1));
    cmd
}

/// The `count`th tombstone of process `instance`. Its last [`TAIL`] bytes, which a
/// [`Prior`] compares, hash both: no other invalidation in the fleet ends the same.
pub(crate) fn tombstone(instance: u64, count: u64) -> Vec<u8> {
    let unique = [instance.to_le_bytes(), count.to_le_bytes()].concat();
    let mut tombstone = TOMBSTONE.to_vec();
    tombstone.extend_from_slice(&unique);
    tombstone.extend_from_slice(&xxh3_64(&unique).to_le_bytes());
    tombstone
}

/// True for what an entry's invalidation left: a miss, and not a bad value.
pub(crate) fn is_tombstone(bytes: &[u8]) -> bool {
    bytes.starts_with(TOMBSTONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prior_is_a_values_length_and_last_bytes() {
        assert_eq!(Prior::of(None), Prior::Absent);
        assert_eq!(
            Prior::of(Some(b"0123456789")),
            Prior::Held {
                len: 10,
                tail: *b"23456789"
            }
        );
        assert_eq!(Prior::of(Some(b"0123456789")).tail(), b"23456789");
        let short = Prior::of(Some(b"abc"));
        assert_eq!(short.tail(), b"abc", "what GETRANGE -8 -1 answers for it");
    }

    #[test]
    fn tombstones_are_told_apart_from_envelopes_and_from_each_other() {
        let first = tombstone(7, 5);
        assert!(is_tombstone(&first));
        for other in [tombstone(7, 6), tombstone(8, 5)] {
            assert!(is_tombstone(&other));
            assert_ne!(
                Prior::of(Some(&first)),
                Prior::of(Some(&other)),
                "a second invalidation, here or in another process, changes what a load saw"
            );
        }
        assert!(!is_tombstone(b"SC\x04"), "an envelope");
        assert!(!is_tombstone(b""));
    }

    #[test]
    fn a_written_key_lives_at_least_a_tombstones_life() {
        let tombstone = Duration::from_secs(60);
        let now = 1_000_000;
        assert_eq!(key_life_ms(now + 300, now, tombstone), Some(60_000));
        assert_eq!(key_life_ms(now + 90_000, now, tombstone), Some(90_000));
        assert_eq!(key_life_ms(NEVER, now, tombstone), None);
    }
}
