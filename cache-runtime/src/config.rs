//! The settings of the process-wide cache: [`Config`], [`Config::from_env`]
//! (`init` turns them on).

use std::time::Duration;

use crate::l2::codec::PayloadFormat;

/// Settings of the process-wide cache. Setters return `Self`:
///
/// ```
/// use std::time::Duration;
/// # use stratacache_runtime as stratacache;
/// use stratacache::Config;
///
/// let config = Config::new()
///     .redis_url("redis://127.0.0.1:6379")
///     .namespace("billing")
///     .l2_timeout(Duration::from_millis(100));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// One Redis URL, or several comma-separated node URLs of a Redis Cluster.
    pub redis_url: Option<String>,
    /// Treat `redis_url` as a Redis Cluster even when it names one seed node (several
    /// comma-separated URLs always mean a cluster); `STRATACACHE_REDIS_CLUSTER` in
    /// [`Config::from_env`]. A node of a cluster reached without it is treated as down,
    /// with an error that says so.
    pub cluster: bool,
    /// Prefix of every Redis key and of the invalidation channel (default `stratacache`).
    pub namespace: String,
    /// Bound on every Redis call; past it the call is a miss (default 250 ms).
    pub l2_timeout: Duration,
    /// Values whose payload is larger are not written to Redis (default 4 MiB).
    pub max_payload: usize,
    /// Payload format written to Redis (default postcard; readers accept both).
    pub payload_format: PayloadFormat,
    /// Tell other processes about invalidations over Redis pub/sub (default on).
    pub backplane: bool,
    /// How often tag versions are re-read from Redis, bounding how long a lost
    /// invalidation message can leave a stale value in L1 (default 10 s).
    pub resync_interval: Duration,
    /// Consecutive Redis failures that open the circuit (default 5).
    pub breaker_threshold: u32,
    /// How long the circuit stays open before one probe call (default 1 s).
    pub breaker_cooldown: Duration,
    /// `#[cached(lock)]`: how long a process may hold a key's load lock (default 5 s;
    /// if it dies, the lock frees itself after this).
    pub lock_hold: Duration,
    /// `#[cached(lock)]`: how long other processes wait for the holder's value before
    /// loading anyway (default 5 s).
    pub lock_wait: Duration,
    /// How many invalidations may wait for Redis in the outbox before they fold into
    /// one namespace-wide invalidation (default 10,000).
    pub outbox_capacity: usize,
    /// How long `invalidate!` leaves a tombstone at the entry's key in Redis (default
    /// 60 s). A load that read Redis before the invalidation must not write its
    /// older value over the tombstone, nor, once it expired, into the empty key: so a
    /// load writes back only if it ends within half this time of its read. A longer
    /// load still answers its callers and fills L1; the other processes load for
    /// themselves. Raise it if loads routinely take more than 30 s, in every process
    /// of the fleet: a process's loads go by its own setting, the tombstones it meets
    /// by the invalidating process's. A value written over an entry (a load, `put!`,
    /// `refresh!`) replaces what such a load read as a tombstone does, so every key
    /// the cache writes lives in Redis at least this long too, past its entry's end
    /// if need be (an entry past its end reads as a miss): lower it to spare Redis
    /// memory in a fleet whose entries live much less than a minute.
    pub tombstone_ttl: Duration,
    /// Off by default. With `Some(d)`, a process that has not synced with Redis (a
    /// resync of its tag versions) for longer than `d` drops its whole L1, and again
    /// every `d` until it syncs: a process cut off from invalidations serves no L1
    /// value older than about `d`. The price: while Redis is unreachable, every
    /// process reloads everything every `d`, the load the cache normally spares the
    /// database. `d` must exceed `resync_interval` (a healthy process syncs that often).
    pub max_unsynced: Option<Duration>,
    /// A CA certificate, PEM, that `rediss://` servers are verified against instead
    /// of the system's trust store (a private CA). Needs the `tls` feature.
    pub tls_root_cert: Option<Vec<u8>>,
    /// Comma-separated secrets: the first signs (and encrypts) what this process
    /// writes to Redis, every one verifies (and decrypts) what it reads. See the
    /// README's "Security model". Not shown by `Debug`.
    pub secret: Option<Secret>,
    /// Encrypt payloads in Redis (default off; needs `secret`). A cache may say
    /// otherwise with `#[cached(encrypt = ..)]`.
    pub encrypt: bool,
    /// Compress (snappy) payloads of at least this many bytes (default 1 KiB; `None`
    /// never). A cache may say otherwise with `#[cached(compress = ..)]`.
    pub compress_above: Option<usize>,
    /// At most this many loader runs of one cached function at once in this
    /// process, for functions that do not say `max_loads` (default unbounded).
    pub max_loads: Option<usize>,
}

/// The secret list of [`Config::secret`], redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            redis_url: None,
            cluster: false,
            namespace: "stratacache".to_owned(),
            l2_timeout: Duration::from_millis(250),
            max_payload: 4 << 20,
            payload_format: PayloadFormat::Postcard,
            backplane: true,
            resync_interval: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(1),
            lock_hold: Duration::from_secs(5),
            lock_wait: Duration::from_secs(5),
            outbox_capacity: 10_000,
            tombstone_ttl: Duration::from_secs(60),
            max_unsynced: None,
            tls_root_cert: None,
            secret: None,
            encrypt: false,
            compress_above: Some(crate::l2::protection::DEFAULT_COMPRESS_ABOVE),
            max_loads: None,
        }
    }
}

/// `STRATACACHE_ENCRYPT`'s value. Fails closed: a value that is neither yes nor no
/// encrypts (and `init` refuses to start without a secret), rather than write values
/// in clear because of a typo.
/// A flag from the environment variable `name`; a value that is neither on nor off
/// is logged as an error and taken as on (see [`Config::from_env`]).
fn env_flag(name: &str, value: &str) -> bool {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => true,
        "false" | "0" | "no" | "off" | "" => false,
        _ => {
            tracing::error!(
                value,
                "stratacache: {name} is neither true/1/yes/on nor false/0/no/off; taken as on"
            );
            true
        }
    }
}

impl Config {
    /// The defaults: in-process only until a Redis URL is set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `STRATACACHE_REDIS_URL` (one URL, or comma-separated cluster nodes),
    /// `STRATACACHE_NAMESPACE`, `STRATACACHE_REDIS_CA_FILE` (a PEM file, see
    /// [`Config::tls_root_cert`]; unreadable is logged and ignored),
    /// `STRATACACHE_SECRET` (see [`Config::secret`]), and two flags:
    /// `STRATACACHE_ENCRYPT` and `STRATACACHE_REDIS_CLUSTER` (one URL naming a Redis
    /// Cluster, such as a cloud provider's configuration endpoint: see
    /// [`Config::cluster`]). A flag is on for `true`, `1`, `yes` or `on`, in any case,
    /// and off for `false`, `0`, `no`, `off` or empty; anything else is logged as an
    /// error and turns it on, since a mistyped `True` must not leave values in clear.
    /// Unset means the default.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(url) = std::env::var("STRATACACHE_REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            config.redis_url = Some(url);
        }
        if let Some(namespace) = std::env::var("STRATACACHE_NAMESPACE")
            .ok()
            .filter(|n| !n.trim().is_empty())
        {
            config.namespace = namespace;
        }
        if let Some(path) = std::env::var_os("STRATACACHE_REDIS_CA_FILE") {
            match std::fs::read(&path) {
                Ok(pem) => config.tls_root_cert = Some(pem),
                Err(error) => {
                    tracing::error!(%error, path = ?path, "stratacache: cannot read STRATACACHE_REDIS_CA_FILE")
                }
            }
        }
        if let Some(secret) = std::env::var("STRATACACHE_SECRET")
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            config = config.secret(secret);
        }
        if let Ok(encrypt) = std::env::var("STRATACACHE_ENCRYPT") {
            config.encrypt = env_flag("STRATACACHE_ENCRYPT", &encrypt);
        }
        if let Ok(cluster) = std::env::var("STRATACACHE_REDIS_CLUSTER") {
            config.cluster = env_flag("STRATACACHE_REDIS_CLUSTER", &cluster);
        }
        config
    }

    /// Signs every value and invalidation message this process writes, and refuses
    /// those not signed by one of these secrets. A comma-separated list: the first
    /// signs, all verify, so keys rotate without a flag day (README: "Security
    /// model"). Use long random strings; they are stretched by HKDF, not by a
    /// password hash.
    ///
    /// ```
    /// # use stratacache_runtime as stratacache;
    /// use stratacache::Config;
    /// let config = Config::new().secret("new-key,old-key").encrypt(true);
    /// assert!(!format!("{config:?}").contains("new-key"));
    /// ```
    pub fn secret(mut self, secrets: impl Into<String>) -> Self {
        self.secret = Some(Secret(secrets.into()));
        self
    }
    /// Encrypts payloads in Redis (XChaCha20-Poly1305 under a key derived from the
    /// first secret). Needs [`Config::secret`]: `init` refuses it without one.
    pub fn encrypt(mut self, encrypt: bool) -> Self {
        self.encrypt = encrypt;
        self
    }
    /// At most `n` loader runs of one cached function at once in this process (a
    /// bulkhead before the database), for the functions that do not give their own
    /// `#[cached(max_loads = ..)]`. Applies from `init` on, even in-process only.
    pub fn max_loads(mut self, n: usize) -> Self {
        self.max_loads = Some(n);
        self
    }
    /// Compresses payloads of at least `bytes` (snappy); `None` turns compression off.
    pub fn compress_above(mut self, bytes: Option<usize>) -> Self {
        self.compress_above = bytes;
        self
    }

    /// `redis://[user:password@]host:port[/db]` (AUTH from the URL), or `rediss://` with
    /// the `tls` feature.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }
    /// Seed nodes of a Redis Cluster (any of its nodes; the client learns the rest):
    ///
    /// ```
    /// # use stratacache_runtime as stratacache;
    /// use stratacache::Config;
    /// let config = Config::new().redis_cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]);
    /// assert_eq!(config.redis_url.as_deref(), Some("redis://10.0.0.1:6379,redis://10.0.0.2:6379"));
    /// ```
    pub fn redis_cluster<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        self.redis_url = Some(nodes.join(","));
        self.cluster = true;
        self
    }
    /// Verifies `rediss://` servers against this CA certificate (PEM) instead of the
    /// system's trust store. Needs the `tls` feature.
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_cert = Some(pem.into());
        self
    }
    /// Prefix of every Redis key and of the invalidation channel.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
    /// Bound on every Redis call; past it the call is a miss. More than zero:
    /// `init` refuses zero.
    pub fn l2_timeout(mut self, timeout: Duration) -> Self {
        self.l2_timeout = timeout;
        self
    }
    /// Values whose payload is larger are not written to Redis.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }
    /// The payload format written to Redis (readers accept both).
    pub fn payload_format(mut self, format: PayloadFormat) -> Self {
        self.payload_format = format;
        self
    }
    /// Turns the cross-process invalidation messages on or off.
    pub fn backplane(mut self, enabled: bool) -> Self {
        self.backplane = enabled;
        self
    }
    /// How often tag versions are re-read from Redis (the bound on a lost message).
    /// More than zero: `init` refuses zero.
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }
    /// The fleet-wide load lock of `#[cached(lock)]` functions: hold and wait bounds.
    pub fn lock(mut self, hold: Duration, wait: Duration) -> Self {
        self.lock_hold = hold;
        self.lock_wait = wait;
        self
    }
    /// See [`Config::outbox_capacity`].
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.outbox_capacity = capacity;
        self
    }
    /// See [`Config::tombstone_ttl`]. At least 2 ms: `init` refuses less.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.tombstone_ttl = ttl;
        self
    }
    /// See [`Config::max_unsynced`]: bounds how stale L1 may get while this process
    /// cannot hear of invalidations, at the price of reloading while it cannot.
    pub fn max_unsynced(mut self, bound: Duration) -> Self {
        self.max_unsynced = Some(bound);
        self
    }
    /// Consecutive failures that open a circuit, and how long it stays open. A
    /// failure is an outage (unreachable, timed out, loading, a cluster or master
    /// down), not a command Redis refused while serving the others (out of memory,
    /// a read-only replica, no permission).
    pub fn breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_cooldown = cooldown;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::env_flag;

    fn encrypt_flag(value: &str) -> bool {
        env_flag("STRATACACHE_ENCRYPT", value)
    }

    #[test]
    fn the_encrypt_flag_reads_any_case_and_fails_closed() {
        for on in ["true", "TRUE", "True", " 1 ", "yes", "On"] {
            assert!(encrypt_flag(on), "{on:?}");
        }
        for off in ["false", "FALSE", "0", "no", "Off", "", "  "] {
            assert!(!encrypt_flag(off), "{off:?}");
        }
        for mistyped in ["ture", "enabled", "2"] {
            assert!(
                encrypt_flag(mistyped),
                "{mistyped:?} must not leave values in clear"
            );
        }
    }
}
