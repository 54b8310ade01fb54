//! One failed load answers every caller that waited on it, even when the error type
//! is not `Clone`: each waiter gets a copy with the same `Display` and the same
//! `source()` chain, captured from the leader's error, and the leader's own caller
//! gets the original.
//!
//! # What a copy keeps
//! The messages of the error and of every source below it, so `{}`, `{:#}` (anyhow's
//! chain) and walking `source()` read the same. An `io::Error` copy keeps its
//! `kind()`. Downcasting a copy to the original type fails: it downcasts to
//! [`SharedError`] instead (for `io::Error`, through `get_ref()`), whose `message()`
//! is the original's `Display`. Backtraces and OS error codes are not copied.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// An error type whose value can answer several callers of one failed load.
///
/// Implemented for `anyhow::Error`, `Box<dyn Error + Send + Sync>` and
/// `std::io::Error`; a `Clone` error needs nothing (it is cloned). Implement it for
/// an error type of your own that cannot be `Clone`, so that a failing load runs once
/// for all its waiters instead of once per waiter:
///
/// ```
/// # use stratacache_runtime as stratacache;
/// use stratacache::{ShareableError, SharedError};
///
/// #[derive(Debug)]
/// enum RepoError {
///     Db(SharedError),
///     NotFound(u64),
/// }
///
/// impl ShareableError for RepoError {
///     fn share(&self) -> Self {
///         match self {
///             RepoError::Db(error) => RepoError::Db(error.clone()),
///             RepoError::NotFound(id) => RepoError::NotFound(*id),
///         }
///     }
/// }
/// # let _ = RepoError::NotFound(1).share();
/// ```
pub trait ShareableError {
    /// A copy for one more caller of the failed load.
    fn share(&self) -> Self;
}

/// A copy of an error: its message and its chain of sources, as they displayed.
#[derive(Debug, Clone)]
pub struct SharedError {
    message: Arc<str>,
    source: Option<Arc<SharedError>>,
}

impl SharedError {
    /// Captures `error` and every source below it.
    pub fn capture(error: &dyn StdError) -> Self {
        Self {
            message: error.to_string().into(),
            source: error.source().map(|source| Arc::new(Self::capture(source))),
        }
    }

    /// The original error's `Display`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl ShareableError for anyhow::Error {
    fn share(&self) -> Self {
        anyhow::Error::new(SharedError::capture(self.as_ref()))
    }
}

impl ShareableError for Box<dyn StdError + Send + Sync> {
    fn share(&self) -> Self {
        Box::new(SharedError::capture(&**self))
    }
}

impl ShareableError for std::io::Error {
    fn share(&self) -> Self {
        // `io::Error::source` of a custom error is its payload's source, so the copy's
        // chain starts below the message, as the original's does.
        let captured = SharedError::capture(self);
        std::io::Error::new(self.kind(), captured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(error: &(dyn StdError + 'static)) -> Vec<String> {
        std::iter::successors(Some(error), |e| (*e).source())
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_anyhow_copy_displays_and_chains_like_the_original() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let original = anyhow::Error::new(io).context("loading user 7");
        let copy = original.share();
        assert_eq!(format!("{copy:#}"), format!("{original:#}"));
        assert_eq!(chain(copy.as_ref()), chain(original.as_ref()));
        assert_eq!(chain(copy.as_ref()), ["loading user 7", "refused"]);
        assert!(copy.downcast_ref::<SharedError>().is_some());
    }

    #[test]
    fn boxed_and_io_copies_keep_message_source_and_kind() {
        let inner = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow disk");
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(inner);
        let copy = boxed.share();
        assert_eq!(chain(&*copy), chain(&*boxed));

        let wrapped = std::io::Error::other(anyhow::anyhow!("pool exhausted"));
        let copy = wrapped.share();
        assert_eq!(copy.to_string(), "pool exhausted");
        assert_eq!(copy.kind(), std::io::ErrorKind::Other);
        assert_eq!(chain(&copy), chain(&wrapped));
        let os = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(os.share().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(os.share().to_string(), os.to_string());
    }
}
