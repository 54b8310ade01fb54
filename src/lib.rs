//! # stratacache
//!
//! Multi-level caching for async Rust, driven by one attribute.
//!
//! ```
//! use stratacache::{cached, invalidate_tag};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct User { id: u64, name: String }
//!
//! #[cached(ttl = "15m", tags = ["users", "user:{id}"])]
//! async fn get_user(id: u64) -> Result<User, std::io::Error> {
//!     Ok(User { id, name: format!("user {id}") }) // a database query, in real life
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let user = get_user(7).await?;            // miss: runs the body, caches the `Ok`
//! let again = get_user(7).await?;           // hit: a clone of the cached value
//! invalidate_tag!("user:{}", 7).await?;     // the next call for 7 loads again
//! # assert_eq!(user.name, again.name);
//! # Ok(()) }
//! ```
//!
//! The attribute turns the function's body into the loader of a cache-aside call:
//! look the arguments up in the in-process cache (L1); on a miss run the body once,
//! however many callers wait for the same key, and cache what it returns. The
//! signature is unchanged, so callers do not change.
//!
//! With no set-up everything is in-process. One call turns on the Redis tier (L2):
//! values shared by every process of the service, invalidations that reach all of
//! them, and a Redis outage that is a miss, never a failed call:
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), stratacache::Error> {
//! // STRATACACHE_REDIS_URL=redis://127.0.0.1:6379, STRATACACHE_NAMESPACE=billing
//! stratacache::init(stratacache::Config::from_env())?;
//! # Ok(()) }
//! ```
//!
//! See [`Config`] for timeouts, payload format and limits, and the README's "Using
//! Redis" for the key layout and the failure behaviour.
//!
//! # Attribute arguments
//!
#![doc = include_str!("attribute_arguments.md")]
//!
//! # Rules
//!
//! * The function is an `async fn` (free, an inherent method, a method of a trait
//!   impl marked [`cached_impl`], or a default method in a trait) or a plain `fn`
//!   (in-process only, see [`cached`]), not generic. Its
//!   arguments, converted to owned values (`&str` becomes `String`, `&T` becomes
//!   `T::Owned`), form the key; so they must be `Hash + Eq + Clone + Send + Sync`.
//!   `impl Trait` and `&mut` arguments must be skipped. `self` is never part of the
//!   key: one cache serves every instance, so what tells instances apart (a tenant)
//!   must be an argument.
//! * The cached value is the return value; `Result<T, E>` caches only `Ok(T)`,
//!   `Option<T>` only `Some(T)` and `Result<Option<T>, E>` only `Ok(Some(T))`, as the
//!   signature spells them (a `Result` or an `Option` behind a type alias is a compile
//!   error naming the type to write). It must
//!   be `Clone + Send + Sync + 'static` (a hit returns a clone: put large values
//!   behind `Arc`, whose hits share one allocation), and, unless `local`,
//!   `Serialize + DeserializeOwned`.
//! * A call's future is `Send` whenever the body's is, whatever the return type.
//! * With `stale_while_revalidate`, `refresh_ahead` or `timeout`, loads run in a
//!   spawned tokio task, so the body must be `Send + 'static` once its arguments are
//!   owned: reference arguments are converted with `ToOwned`, and a `&self` method's
//!   `Self` must be `Clone` (a `self: &Arc<Self>` method clones the `Arc`).
//! * Every mistake is a compile error on the offending token, and the function is
//!   still emitted unchanged, so only the real error shows.
//!
//! # Concurrent calls
//!
//! Concurrent calls for one missing key run the body once; the others wait for its
//! result (no lock is held across an `.await`). If the running caller is cancelled
//! the next waiter takes over; if the body panics, the waiters panic with its
//! message. An `Err` or `None` is handed to the callers that were waiting when it
//! came (by clone, when the return type is `Clone`; otherwise each waiter runs the
//! body in turn) and never to later callers. A body may call its own function for
//! other keys (a memoized recursion loads each key once); a body that calls it with
//! the key it is loading panics, naming the cache, rather than wait for itself
//! forever.
//!
//! # Invalidation
//!
//! * [`invalidate_tag!`]`("user:{}", id)`: every entry stored with that tag, in every
//!   cache. O(1) whatever the number of entries: tags are version counters.
//! * [`invalidate!`]`(get_user(7))`: one entry, named by a call with its arguments
//!   (`invalidate!(repo.get(7))` for a method).
//! * [`clear!`]`(get_user)`: every entry of one function (`clear!(Repo::get)`).
//! * [`clear_all`]`()`: everything.
//! * [`put!`], [`refresh!`]: replace one entry with a new value (see below).
//!
//! All return a future of `Result<(), Error>`: ready at once and always `Ok` in
//! in-process mode, so the same code works when a Redis tier is added. A load that
//! was in flight when an invalidation was issued never stores a value that outlives
//! it, and calls made after the invalidation do not share that load.
//!
//! # Entry operations
//!
//! Named like [`invalidate!`], by a call of the cached function with its arguments:
//!
//! * [`put!`]`(get_user(7), user)`: write-through. Stores `user` (the cached value:
//!   `T` for a function returning `Result<T, E>` or `Option<T>`) here and in Redis,
//!   under the call's tags, and tells the other processes to drop their copy. A load
//!   of that key already in flight may no longer store its older value.
//! * [`refresh!`]`(get_user(7))`: makes the call, loading now even if a fresh value
//!   is held anywhere; the new value replaces it here, in Redis and in the other
//!   processes. Returns what the call returns.
//! * [`peek!`]`(get_user(7))`: the fresh value from L1 or Redis, or `None`; never
//!   loads, and counts no hit or miss. [`contains!`] is `peek!(..).is_some()`.
//! * [`warm_up!`]`(ids, |id| get_user(id))`: loads each entry not already held, at
//!   most 16 at once (`, concurrency = 4` to change it), and returns a [`WarmUp`]
//!   report; `warm_up!(get_users(&ids))` warms a batch function with one call.
//!
//! ```
//! use stratacache::{cached, contains, peek, put, refresh};
//!
//! #[cached(ttl = "5m", tags = ["user:{id}"])]
//! async fn user_name(id: u64) -> Option<String> {
//!     Some(format!("user {id}")) // from the database
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), stratacache::Error> {
//! // After `UPDATE users SET name = 'Ada' WHERE id = 7`:
//! put!(user_name(7), "Ada".to_owned()).await?;
//! assert_eq!(user_name(7).await.as_deref(), Some("Ada"));
//! assert!(contains!(user_name(7)).await);
//! assert_eq!(peek!(user_name(8)).await, None);
//! assert_eq!(refresh!(user_name(7)).await.as_deref(), Some("user 7"));
//! let report = stratacache::warm_up!(1..=10u64, |id| user_name(id)).await;
//! assert_eq!((report.loaded, report.present), (9, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # Batch functions
//!
//! With `batch`, one argument is the list of keys (`&[K]`, `Vec<K>`, `&Vec<K>`, a
//! set, or `impl IntoIterator<Item = K>`; the other arguments must be `skip`ped and
//! `Clone`) and the return is a map from key to value (`HashMap<K, V>`,
//! `BTreeMap<K, V>`, `Vec<(K, V)>`, or a `Result` of one). A call looks each key up
//! in L1, reads the rest from Redis in one `MGET` (one per hash slot on a cluster),
//! runs the body **once** with the keys still missing (the argument rebound to just
//! those), stores each value as its own entry and returns the merged map. A key the
//! body does not return is not cached (asked for again next time) unless
//! `cache_none`. Concurrent calls that overlap load each key once. In `tags`, the key
//! argument stands for one key. A batch function and a single-key function with the
//! same `name`, key type and value type share entries (and `invalidate!`, `put!`
//! etc. go through the single-key one). Not with a batch: `stale_while_revalidate`,
//! `stale_if_error`, `refresh_ahead`, `timeout`, `lock`, `cache_err`, `key`.
//!
//! ```
//! use std::collections::HashMap;
//! use stratacache::cached;
//!
//! #[cached(ttl = "5m", tags = ["user:{ids}"], batch)]
//! async fn user_names(ids: &[u64]) -> HashMap<u64, String> {
//!     // SELECT id, name FROM users WHERE id = ANY($1), with only the missing ids
//!     ids.iter().map(|id| (*id, format!("user {id}"))).collect()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! user_names(&[1, 2]).await;
//! let names = user_names(&[1, 2, 3]).await; // the body runs with `ids == [3]`
//! assert_eq!(names.len(), 3);
//! # }
//! ```
//!
//! # Statistics
//!
//! [`stats()`] returns a serializable snapshot per cache: hits by level, misses,
//! loads, load errors, stale values served, invalidations, entries and load latency
//! (p50, p99). Its `Display` is a table, and [`prometheus()`] renders it in the
//! Prometheus text format for a `/metrics` endpoint.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Caches a function: its body becomes the loader of a cache-aside call. The rules
/// are under [Rules](crate#rules); the arguments:
///
#[doc = include_str!("attribute_arguments.md")]
///
///
/// On an `async fn`, the cache is in-process and, once [`init`] has a Redis URL,
/// shared through Redis:
///
/// ```
/// use stratacache::cached;
///
/// #[cached(ttl = "10m", tags = ["user:{id}"])]
/// async fn user_name(id: u64) -> Result<Option<String>, std::io::Error> {
///     Ok((id < 100).then(|| format!("user {id}"))) // `Ok(None)` is not cached
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() { assert_eq!(user_name(7).await.unwrap().as_deref(), Some("user 7")); }
/// ```
///
/// On a plain `fn`, the cache is in-process only; concurrent callers of one key on
/// other threads wait for the one load, no runtime needed:
///
/// ```
/// use stratacache::cached;
///
/// #[cached(ttl = "1h", capacity = 1_000)]
/// fn slug(title: String) -> String {
///     title.to_lowercase().replace(' ', "-")
/// }
/// assert_eq!(slug("Hello World".into()), "hello-world");
/// ```
///
/// On the methods of a trait impl, with [`cached_impl`] on the impl block.
pub use stratacache_macros::cached;

/// Lets `#[cached]` go on the methods of a trait impl (native `async fn` in the trait,
/// or `#[async_trait]` written below it): the methods' hidden siblings, which the
/// entry macros call, go into an inherent impl of the same type.
///
/// ```
/// use stratacache::{cached, cached_impl, invalidate};
///
/// trait Prices {
///     async fn price(&self, sku: u64) -> Result<u64, String>;
/// }
/// struct Catalog;
///
/// #[cached_impl]
/// impl Prices for Catalog {
///     #[cached(ttl = "5m", tags = ["sku:{sku}"])]
///     async fn price(&self, sku: u64) -> Result<u64, String> {
///         Ok(sku * 100)
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let catalog = Catalog;
/// assert_eq!(catalog.price(3).await, Ok(300));
/// invalidate!(catalog.price(3)).await.unwrap();
/// # }
/// ```
pub use stratacache_macros::cached_impl;
pub use stratacache_runtime::{
    block_on, clear_all, flush_invalidations, flush_writes, init, invalidate_tag, prometheus,
    stats, CacheStatsSnapshot, Config, Error, LoadHistogram, PayloadFormat, Secret, ShareableError,
    SharedError, StatsSnapshot, TimedOut, WarmUp,
};

/// Invalidation driven by PostgreSQL `LISTEN`/`NOTIFY` (cargo feature `postgres`):
/// see the README's "Writes from anywhere".
#[cfg(feature = "postgres")]
pub use stratacache_runtime::postgres;

#[doc(hidden)]
pub use stratacache_runtime::__private;

/// The entry macros' implementations, reached through the `macro_rules!` wrappers
/// below so that their expansion names this crate by `$crate`: a user who renamed
/// the dependency (and wrote `crate = "..."` in `#[cached]`) needs nothing more.
#[doc(hidden)]
pub mod __macros {
    pub use stratacache_macros::{clear, contains, invalidate, peek, put, refresh, warm_up};
}

/// Invalidates one entry of a cached function, named by a call with its arguments:
/// `invalidate!(get_user(7)).await?`, `invalidate!(repo.get_user(7)).await?`.
///
/// The entry is dropped here at once, and a load of it in flight here will not store
/// its value. In Redis it is replaced by a tombstone (a miss for every reader, for a
/// minute or until a load writes over it), so that a load in another process that
/// began before the invalidation cannot write its older value back; the other
/// processes drop their copy when the message reaches them, or at their next resync
/// if it was lost.
///
/// Returns a future of `Result<(), stratacache::Error>`: `Ok` even when Redis is
/// down (the invalidation waits in the outbox).
#[macro_export]
macro_rules! invalidate {
    ($($input:tt)*) => { $crate::__macros::invalidate!($crate; $($input)*) };
}

/// Write-through: stores a value for one entry, here and in Redis, and tells the
/// other processes: `put!(get_user(7), user).await?`.
#[macro_export]
macro_rules! put {
    ($($input:tt)*) => { $crate::__macros::put!($crate; $($input)*) };
}

/// Makes the call, loading now whatever is cached: `refresh!(get_user(7)).await`.
///
/// The loaded value replaces the held one, here, in Redis and in the other
/// processes. If the load finds nothing to cache (a `None` or `Ok(None)` that is not
/// cached, a value the loader skipped with `this_load::skip_caching` or `validate`
/// refused), the held value is dropped all the same, everywhere, as `invalidate!`
/// drops it. A failed load (an `Err` that is not cached, a panic) says nothing about
/// the data: the held value stays.
///
/// On a sync function the call is made, and the value reloaded, where the macro
/// stands; the future it returns is ready:
///
/// ```
/// #[stratacache::cached(ttl = "1h")]
/// fn rate(currency: String) -> u64 {
///     currency.len() as u64
/// }
///
/// let fresh = stratacache::block_on(stratacache::refresh!(rate("EUR".into())));
/// assert_eq!(fresh, 3);
/// ```
#[macro_export]
macro_rules! refresh {
    ($($input:tt)*) => { $crate::__macros::refresh!($crate; $($input)*) };
}

/// The cached value of one entry, never loading: `peek!(get_user(7)).await`.
#[macro_export]
macro_rules! peek {
    ($($input:tt)*) => { $crate::__macros::peek!($crate; $($input)*) };
}

/// Whether any level holds a fresh value for one entry: `contains!(get_user(7)).await`.
#[macro_export]
macro_rules! contains {
    ($($input:tt)*) => { $crate::__macros::contains!($crate; $($input)*) };
}

/// Loads entries ahead of traffic, with bounded concurrency, and reports what it did:
/// `warm_up!(ids, |id| get_user(id)).await`, `warm_up!(get_users(&ids)).await`.
#[macro_export]
macro_rules! warm_up {
    ($($input:tt)*) => { $crate::__macros::warm_up!($crate; $($input)*) };
}

/// Invalidates every entry of one cached function: `clear!(get_user).await?`,
/// `clear!(Repo::get).await?`.
#[macro_export]
macro_rules! clear {
    ($($input:tt)*) => { $crate::__macros::clear!($crate; $($input)*) };
}

/// Decisions a loader makes about its own result, from inside a cached function's
/// body: a ttl that depends on the value, tags known only once it is loaded, or not
/// caching it at all.
///
/// ```
/// use std::time::Duration;
/// use stratacache::{cached, this_load};
///
/// #[cached(ttl = "10m", local)]
/// async fn session(token: String) -> Option<u64> {
///     let (user, expires_in) = (7, Duration::from_secs(30)); // from the auth service
///     this_load::set_ttl(expires_in); // never cache past the session's own expiry
///     this_load::add_tag(format!("user:{user}"));
///     if token.starts_with("test-") {
///         this_load::skip_caching();
///     }
///     Some(user)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(session("abc".into()).await, Some(7));
/// assert!(!this_load::skip_caching(), "outside a load these do nothing");
/// # }
/// ```
///
/// Outside a load (a function that is not cached, or a task the loader spawned) these
/// do nothing and return `false`. A tag added here is read when the load ends, not
/// before it starts like the attribute's tags: an invalidation of it that lands while
/// the load runs may be missed. Put tags in the attribute when the arguments name them.
/// An added tag travels with the value: it is recorded in the Redis copy, and a
/// process (or a batch call) that reads that copy keeps it under the same tag, so
/// invalidating the tag reaches every copy.
pub mod this_load {
    pub use stratacache_runtime::this_load::{add_tag, set_ttl, skip_caching};
}

/// Invalidates every entry stored with a tag, taking `format!` arguments:
/// `invalidate_tag!("users")`, `invalidate_tag!("user:{}", id)`.
///
/// Returns a future of `Result<(), stratacache::Error>`.
#[macro_export]
macro_rules! invalidate_tag {
    ($($format:tt)+) => {
        $crate::invalidate_tag(&::std::format!($($format)+))
    };
}
