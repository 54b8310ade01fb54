use std::fmt;

/// An error from setting up stratacache or from an invalidation.
///
/// Cached calls never return it: a Redis fault there is a miss. Invalidations do,
/// because a caller that changed data needs to know when other processes may still
/// serve the old value.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used (a malformed Redis URL, say).
    Config(String),
    /// `init` was called a second time.
    AlreadyInitialized,
    /// `init` was called outside a tokio runtime.
    NoRuntime,
    /// Redis did not take the invalidation. This process has applied it; other
    /// processes and Redis may keep the old value until it expires. Retry it.
    Redis(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => write!(f, "stratacache configuration: {message}"),
            Error::AlreadyInitialized => f.write_str("stratacache::init was already called"),
            Error::NoRuntime => {
                f.write_str("stratacache::init must be called inside a tokio runtime")
            }
            Error::Redis(message) => write!(f, "invalidation not delivered to Redis: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The error of a `#[cached(timeout = "..", hard_timeout)]` call whose load took
/// longer than the timeout with no kept value to answer with. The load goes on in the
/// background and caches its value for the next call. Implement
/// `From<TimedOut>` for the function's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimedOut {
    /// The cache whose load timed out.
    pub cache: String,
    /// The timeout that passed.
    pub after: std::time::Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the load of cache `{}` took longer than {:?}",
            self.cache, self.after
        )
    }
}

impl std::error::Error for TimedOut {}
