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
use super::replace;
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
        // Without a secret this process could only write it back unsigned, which
        // every process holding one would then refuse: leave it as it is.
        if decoded.mac.is_some() && self.protection.signer().is_none() {
            return None;
        }
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
        let px = replace::key_life_ms(slid.keep_until_ms, now, self.tombstone_ttl).unwrap_or(0);
        Some((slid.encode(self.protection.signer()), px))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::l2::codec::PayloadFormat;
    use crate::l2::envelope::Flags;
    use crate::l2::protection::Protection;
    use crate::l2::secrets::Secrets;
    use crate::l2::Settings;

    fn l2(secret: Option<&str>) -> L2 {
        let settings = Settings {
            namespace: "t".into(),
            timeout: Duration::from_millis(100),
            max_payload: 1 << 20,
            format: PayloadFormat::Postcard,
            protection: Protection {
                secrets: secret.and_then(Secrets::parse),
                ..Protection::default()
            },
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(1),
            lock_hold: Duration::from_secs(1),
            lock_wait: Duration::from_secs(1),
            tombstone_ttl: Duration::from_secs(60),
            tls_root_cert: None,
        };
        // Lazy: nothing connects.
        L2::new(&["redis://127.0.0.1:1".to_owned()], false, settings).unwrap()
    }

    fn entry(fresh_until_ms: u64, signer: Option<&Secrets>) -> Vec<u8> {
        Envelope {
            format: PayloadFormat::Postcard,
            flags: Flags::default(),
            fingerprint: 1,
            created_ms: 0,
            fresh_until_ms,
            stale_until_ms: fresh_until_ms,
            keep_until_ms: fresh_until_ms,
            key: b"k",
            tags: Vec::new(),
            payload: b"v",
        }
        .encode(signer)
    }

    #[tokio::test]
    async fn an_entry_is_extended_once_per_quarter_ttl_and_never_unsigned_over_signed() {
        let (now, ttl) = (1_000_000, 1_000);
        let plain = l2(None);
        let (bytes, px) = plain
            .slid(&entry(now + 500, None), ttl, now)
            .expect("half a ttl left: extended");
        let slid = Envelope::decode(&bytes).unwrap().envelope;
        assert_eq!(
            (slid.fresh_until_ms, slid.keep_until_ms),
            (now + ttl, now + ttl)
        );
        assert_eq!(px, 60_000, "its key is kept for a tombstone's life");
        assert!(
            plain.slid(&entry(now + 900, None), ttl, now).is_none(),
            "extended in the last ttl/4"
        );
        assert!(
            plain.slid(&entry(now, None), ttl, now).is_none(),
            "expired: not revived"
        );

        let k1 = Secrets::parse("k1").unwrap();
        let signed = entry(now + 500, Some(&k1));
        assert!(
            plain.slid(&signed, ttl, now).is_none(),
            "no secret: a signed entry is left alone"
        );
        let holder = l2(Some("k1"));
        let (bytes, _) = holder
            .slid(&signed, ttl, now)
            .expect("the holder of the secret extends it");
        assert_eq!(
            Envelope::decode(&bytes).unwrap().signer(&k1),
            Some(0),
            "signed again"
        );
    }
}
