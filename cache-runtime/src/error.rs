use std::fmt;

/// An error from a cache operation such as [`invalidate_tag`](crate::invalidate_tag).
///
/// In-process (L1-only) mode has no failure to report: its operations always
/// return `Ok`. The type exists, and operations return `Result`, so that code written
/// now keeps compiling when a Redis tier, whose operations can fail, is turned on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {}

impl fmt::Display for Error {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl std::error::Error for Error {}
