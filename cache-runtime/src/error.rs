use std::fmt;

/// An error from setting up stratacache.
///
/// A Redis fault never surfaces as an error of a cached call (it is a miss) nor of an
/// invalidation (it waits in the outbox and is delivered when Redis answers).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used (a malformed Redis URL, say).
    Config(String),
    /// `init` was called a second time.
    AlreadyInitialized,
    /// `init` was called outside a tokio runtime.
    NoRuntime,
    /// A Redis operation failed, where one is reported (announcing a refreshed
    /// entry to the other processes, internally): which operation, and why.
    Redis {
        /// What was asked of Redis, as "publish an entry's invalidation".
        operation: &'static str,
        /// The fault: the Redis client's error, a timeout, or an open circuit.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(message) => write!(f, "stratacache configuration: {message}"),
            Error::AlreadyInitialized => f.write_str("stratacache::init was already called"),
            Error::NoRuntime => {
                f.write_str("stratacache::init must be called inside a tokio runtime")
            }
            Error::Redis { operation, .. } => write!(f, "Redis failed to {operation}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_error_names_the_operation_and_keeps_its_source() {
        let cause = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
        let error = Error::Redis {
            operation: "publish an entry's invalidation",
            source: Box::new(cause),
        };
        assert_eq!(
            error.to_string(),
            "Redis failed to publish an entry's invalidation"
        );
        let source = std::error::Error::source(&error).expect("a source");
        assert_eq!(source.to_string(), "broken pipe");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
