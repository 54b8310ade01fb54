//! Turning the Redis tier on: [`init`] checks a [`Config`] and starts the tier's
//! connection and tasks. Without `init`, or with no Redis URL, everything stays
//! in-process.

use std::time::Duration;

use crate::config::{Config, Secret};
use crate::l2::protection::Protection;
use crate::l2::secrets::Secrets;
use crate::l2::{self, Settings, L2};
use crate::{backplane, outbox, registry, Error};

/// Turns on the Redis tier for this process. Call it once, early, inside a tokio
/// runtime. Its own tasks (the backplane, the outbox) run on a thread of their own, so
/// they outlive that runtime: a test's, or one made only to call `init`. Cached calls
/// may run on other runtimes, which may end before the process (each
/// `#[tokio::test]`'s): their connection is replaced when its runtime has ended. It
/// does not wait for Redis: a server that is down now is reached when it comes up, and until
/// then calls answer from L1 and the loaders. Cached functions called before `init`
/// work, in-process.
///
/// With no `redis_url`, this does nothing and returns `Ok`.
pub fn init(config: Config) -> Result<(), Error> {
    crate::engine::bulkhead::set_default(config.max_loads);
    let Some(url) = config.redis_url.as_deref() else {
        return Ok(());
    };
    tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let urls: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(Error::Config(format!("invalid Redis URL: {url:?}")));
    }
    let settings = settings_of(&config)?;
    let l2 = L2::new(&urls, config.cluster, settings)
        .map_err(|e| Error::Config(format!("invalid Redis URL: {e}")))?;
    let l2 = l2::activate(l2).ok_or(Error::AlreadyInitialized)?;
    let tasks = crate::background::tasks_runtime()
        .map_err(|e| Error::Config(format!("cannot start the Redis tier's thread: {e}")))?;
    // The breaker and the resync need the time, cache or no cache.
    registry::start_clock();
    outbox::set_capacity(config.outbox_capacity);
    tasks.spawn(outbox::run(l2));
    if l2.is_cluster() {
        tasks.spawn(l2.follow_slot_map());
    }
    if config.backplane {
        tasks.spawn(backplane::run(l2, config.resync_interval));
        if let Some(bound) = config.max_unsynced {
            let bound = bound.max(config.resync_interval + Duration::from_millis(100));
            tasks.spawn(backplane::drop_l1_while_unsynced(bound));
        }
    }
    tracing::info!(
        namespace = %config.namespace,
        cluster = l2.is_cluster(),
        "stratacache: Redis tier on"
    );
    Ok(())
}

/// The Redis tier's settings, once `config` is checked: what `init` refuses, it
/// refuses here.
fn settings_of(config: &Config) -> Result<Settings, Error> {
    // A zero resync interval would end the backplane's task at its start (and with
    // it every invalidation from other processes); a zero timeout, every Redis call.
    if config.resync_interval.is_zero() || config.l2_timeout.is_zero() {
        return Err(Error::Config(
            "resync_interval and l2_timeout must be more than zero".to_owned(),
        ));
    }
    // Redis takes a tombstone's life in whole milliseconds, and half of it must
    // leave a load some time to write back.
    if config.tombstone_ttl < Duration::from_millis(2) {
        return Err(Error::Config(
            "tombstone_ttl must be at least 2 ms".to_owned(),
        ));
    }
    let secrets = match &config.secret {
        None => None,
        Some(Secret(list)) => Some(
            Secrets::parse(list)
                .ok_or_else(|| Error::Config("the secret list names no secret".to_owned()))?,
        ),
    };
    if config.encrypt && secrets.is_none() {
        return Err(Error::Config(
            "encryption needs a secret: set Config::secret or STRATACACHE_SECRET".to_owned(),
        ));
    }
    Ok(Settings {
        namespace: config.namespace.clone(),
        timeout: config.l2_timeout,
        max_payload: config.max_payload,
        format: config.payload_format,
        protection: Protection {
            secrets,
            encrypt: config.encrypt,
            compress_above: config.compress_above,
        },
        breaker_threshold: config.breaker_threshold,
        breaker_cooldown: config.breaker_cooldown,
        lock_hold: config.lock_hold,
        lock_wait: config.lock_wait,
        tombstone_ttl: config.tombstone_ttl,
        tls_root_cert: config.tls_root_cert.clone(),
    })
}
