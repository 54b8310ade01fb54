//! Invalidation driven by the database (cargo feature `postgres`): a listener that
//! `LISTEN`s on a PostgreSQL channel and turns each notification into
//! [`invalidate_tag`](crate::invalidate_tag), so a write made anywhere (psql, a
//! migration, another service) drops the cached values it changes, in every process.
//!
//! A notification's payload is JSON: `{"tags": ["user:7", "users"]}`. A trigger sends
//! it; the README's "Writes from anywhere" shows one.
//!
//! PostgreSQL does not keep notifications for a listener that is away: after a
//! dropped connection, or a first connection that only succeeded after failed
//! attempts, the listener (backing off up to 5 s between attempts) `LISTEN`s and then
//! invalidates every tag it is responsible for
//! ([`PgInvalidation::on_reconnect_invalidate`]), because whatever was sent meanwhile
//! is lost. A connection that dies silently (a network partition, a frozen server)
//! sends no error: the listener queries its connection every
//! [`health_check`](PgInvalidation::health_check) interval, and one that does not
//! answer within it counts as lost.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the connection must answer a query, and how long it has to.
const HEALTH_CHECK: Duration = Duration::from_secs(10);

/// A `LISTEN`er that invalidates tags named by the database. Build it, then
/// [`spawn`](Self::spawn) it inside a tokio runtime:
///
/// ```no_run
/// # use stratacache_runtime as stratacache;
/// # async fn run() {
/// stratacache::postgres::PgInvalidation::new("postgres://postgres@127.0.0.1:5432/test")
///     .channel("stratacache")
///     .on_reconnect_invalidate(["users"])
///     .spawn();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PgInvalidation {
    url: String,
    channel: String,
    on_reconnect: Vec<String>,
    health_check: Duration,
}

#[derive(serde::Deserialize)]
struct Notification {
    tags: Vec<String>,
}

impl PgInvalidation {
    /// Listens through `url` (a libpq-style connection string) on channel
    /// `stratacache`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channel: "stratacache".to_owned(),
            on_reconnect: Vec::new(),
            health_check: HEALTH_CHECK,
        }
    }

    /// How often the connection must answer a query, and how long it has to (10 s
    /// by default): a connection that died without a word (a network partition)
    /// counts as lost after at most twice this. It also bounds each connection
    /// attempt. A zero interval is taken as one millisecond.
    pub fn health_check(mut self, every: Duration) -> Self {
        self.health_check = every.max(Duration::from_millis(1));
        self
    }

    /// The channel to `LISTEN` on.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Tags invalidated each time the listener connects after it could not listen
    /// for a while: a lost connection, or failed attempts before the first one
    /// succeeded (not after a first connection made at once). Whatever the database
    /// announced while the listener was away is lost, so everything it covers goes.
    /// Give the tags that every value the channel speaks of carries (`"users"` for
    /// `user:{id}` values tagged `users` too).
    pub fn on_reconnect_invalidate<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.on_reconnect = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Runs the listener until the runtime shuts down (or the handle is aborted).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        // Whether notifications may have been missed: set by a failed attempt as by
        // a lost connection, so the first connection catches up too if it was late.
        let mut missed = false;
        // Attempts failed in a row: only the first is a warning, since a database
        // down for an hour would otherwise log one every `MAX_BACKOFF`.
        let mut failed = 0u64;
        loop {
            match self.listen(missed).await {
                Ok(()) => {
                    (backoff, failed) = (Duration::from_millis(100), 0);
                    tracing::warn!(channel = %self.channel, "stratacache: lost the PostgreSQL listener connection; reconnecting");
                }
                Err(error) if failed == 0 => {
                    failed = 1;
                    tracing::warn!(channel = %self.channel, %error, "stratacache: cannot listen on PostgreSQL; retrying, quietly, until it can")
                }
                Err(error) => {
                    failed += 1;
                    tracing::debug!(channel = %self.channel, %error, failed, "stratacache: cannot listen on PostgreSQL; retrying")
                }
            }
            missed = true;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: `LISTEN`, catch up if notifications may have been missed,
    /// then apply notifications until the connection ends or stops answering (`Ok`).
    async fn listen(&self, missed: bool) -> Result<(), Unheard> {
        let mut config: tokio_postgres::Config = self.url.parse()?;
        if config.get_application_name().is_none() {
            // So an operator (or a test) can tell this process's listener apart.
            config.application_name(format!("stratacache listener {}", std::process::id()));
        }
        // A server that accepts the connection and then says nothing (frozen) must
        // not hold the listener either.
        let connecting =
            tokio::time::timeout(self.health_check, config.connect(tokio_postgres::NoTls));
        let (client, mut connection) = connecting.await.map_err(|_| Unheard::Silent)??;
        let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(notification) = message {
                    let _ = sender.send(notification.payload().to_owned());
                }
            }
        });
        // Aborted when this connection is given up, however that happens.
        let _driver = AbortOnDrop(driver);
        let listen = format!("LISTEN \"{}\"", self.channel.replace('"', "\"\""));
        tokio::time::timeout(self.health_check, client.batch_execute(&listen))
            .await
            .map_err(|_| Unheard::Silent)??;
        tracing::info!(channel = %self.channel, "stratacache: listening for invalidations on PostgreSQL");
        if missed {
            for tag in &self.on_reconnect {
                apply(tag).await;
            }
        }
        let mut health = tokio::time::interval(self.health_check);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                payload = notifications.recv() => match payload {
                    Some(payload) => self.apply_notification(&payload).await,
                    None => return Ok(()),
                },
                _ = health.tick() => {
                    let answered = tokio::time::timeout(self.health_check, client.simple_query("")).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn apply_notification(&self, payload: &str) {
        match serde_json::from_str::<Notification>(payload) {
            Ok(notification) => {
                for tag in &notification.tags {
                    apply(tag).await;
                }
            }
            Err(error) => {
                tracing::warn!(%payload, %error, "stratacache: ignored a PostgreSQL notification that is not {{\"tags\": [..]}}")
            }
        }
    }
}

/// Why the listener could not listen.
#[derive(Debug)]
enum Unheard {
    Failed(tokio_postgres::Error),
    /// No answer within the health-check interval.
    Silent,
}

impl From<tokio_postgres::Error> for Unheard {
    fn from(error: tokio_postgres::Error) -> Self {
        Unheard::Failed(error)
    }
}

impl std::fmt::Display for Unheard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unheard::Failed(error) => write!(f, "{error}"),
            Unheard::Silent => f.write_str("PostgreSQL did not answer within the health check"),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn apply(tag: &str) {
    if let Err(error) = crate::invalidate_tag(tag).await {
        // Already applied in this process; Redis takes it from the outbox later.
        tracing::debug!(tag, %error, "stratacache: a database-driven invalidation waits for Redis");
    }
}
