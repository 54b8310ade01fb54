//! `sliding` in Redis: a process whose hit extends a value in L1 extends the entry
//! in Redis too, at most once per ttl/4 per key, so the other processes see it as
//! fresh for as long as anyone reads it. The envelope's times are rewritten (and the
//! envelope signed again) and its `PX` moved; the payload is not touched, so no
//! value type is needed here.
//!
//! The rewrite is a compare-and-set: it lands only if the entry is still the bytes
//! that were read, so a value written meanwhile (a load, a `put!`) is never replaced
//! by the older one.

use super::envelope::Envelope;
use super::{unix_ms, Fault, L2};
use crate::times::NEVER;

/// Replaces `KEYS[1]` by `ARGV[2]` (with `PX ARGV[3]` unless 0) only if it holds `ARGV[1]`.
const REPLACE_IF_UNCHANGED: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
     if ARGV[3] == '0' then return redis.call('set', KEYS[1], ARGV[2]) end \
     return redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3]) else return false end";

impl L2 {
    /// Extends the entry at `entry_key` to be fresh until now + `ttl_ms`, unless it
    /// was extended in the last ttl/4, has expired, or cannot be trusted.
    pub(crate) async fn slide(&self, entry_key: &str, ttl_ms: u64) -> Result<(), Fault> {
        let Some(old) = self.mget(&[entry_key]).await?.pop().flatten() else {
            return Ok(());
        };
        let Some(new) = self.slid(&old, ttl_ms, unix_ms()) else {
            return Ok(());
        };
        let (bytes, px) = new;
        self.call(Some(entry_key), |mut connection| async move {
            redis::cmd("EVAL")
                .arg(REPLACE_IF_UNCHANGED)
                .arg(1)
                .arg(entry_key)
                .arg(&old)
                .arg(&bytes)
                .arg(px)
                .query_async::<redis::Value>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    /// The entry `old` with its times moved so it is fresh until `now + ttl_ms`,
    /// and its `PX` (0: none); `None` if it needs or allows no extension.
    fn slid(&self, old: &[u8], ttl_ms: u64, now: u64) -> Option<(Vec<u8>, u64)> {
        let decoded = Envelope::decode(old).ok()?;
        self.protection.authenticate(&decoded).ok()?;
        let envelope = decoded.envelope;
        let extended_to = now.saturating_add(ttl_ms);
        let recently = envelope.fresh_until_ms >= extended_to - ttl_ms / 4;
        if recently || now >= envelope.fresh_until_ms {
            return None;
        }
        let shift = extended_to - envelope.fresh_until_ms;
        let moved = |time: u64| {
            if time == NEVER {
                NEVER
            } else {
                time.saturating_add(shift)
            }
        };
        let slid = Envelope {
            fresh_until_ms: extended_to,
            stale_until_ms: moved(envelope.stale_until_ms),
            keep_until_ms: moved(envelope.keep_until_ms),
            ..envelope
        };
        let px = match slid.keep_until_ms {
            NEVER => 0,
            keep => keep - now,
        };
        Some((slid.encode(self.protection.signer()), px))
    }
}
