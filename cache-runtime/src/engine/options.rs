//! Per-function settings, built by generated code from the attribute's arguments.

use std::time::Duration;

/// Per-function settings, from the attribute's arguments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// How long a value is fresh; `None` keeps it until evicted or invalidated.
    pub ttl: Option<Duration>,
    /// How long past its ttl a value may be served while it is refreshed.
    pub stale_window: Option<Duration>,
    /// The in-process bound, in entries.
    pub capacity: u64,
    /// In-process only: never written to a shared tier.
    pub local: bool,
    /// Shape version of the value, part of shared-tier keys.
    pub version: u32,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            stale_window: None,
            capacity: 10_000,
            local: false,
            version: 0,
        }
    }
}

impl CacheOptions {
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = Some(window);
        self
    }
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}
