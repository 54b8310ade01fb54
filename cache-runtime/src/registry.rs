//! The process-wide registry: cache name -> cache. Caches live for the whole process
//! (they back `static`s in generated code), so they are leaked once and handed out
//! as `&'static`.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, OnceLock};

use parking_lot::RwLock;

use crate::clock;
use crate::engine::{Cache, CacheKey, CacheOptions, CacheValue};

use crate::l2::codec::Codec;
use crate::stats::{CacheStatsSnapshot, StatsSnapshot};
use crate::tags::{self, TagCell};

/// What the registry needs of a cache whatever its key and value types.
trait Registered: Send + Sync {
    fn as_any(&self) -> &(dyn Any + Send + Sync);
    fn snapshot(&self) -> CacheStatsSnapshot;
    fn sweep(&self, now: u64);
    fn clear_store(&self);
    fn evict_encoded(&self, key: &[u8]);
    fn tag_cell(&self) -> Arc<TagCell>;
}

impl<K, V> Registered for Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
    fn snapshot(&self) -> CacheStatsSnapshot {
        Cache::snapshot(self)
    }
    fn sweep(&self, now: u64) {
        Cache::sweep(self, now)
    }
    fn clear_store(&self) {
        Cache::clear_store(self)
    }
    fn evict_encoded(&self, key: &[u8]) {
        Cache::evict_encoded(self, key)
    }
    fn tag_cell(&self) -> Arc<TagCell> {
        Cache::tag_cell(self)
    }
}

static CACHES: LazyLock<RwLock<BTreeMap<String, &'static dyn Registered>>> =
    LazyLock::new(Default::default);

/// The cache called `name`, created with `options` on first use (the first function
/// to use a name sets its options). Functions that name the same cache with the same
/// key and cached value types share its entries, whatever their return types.
pub fn cache<K, V>(
    name: &str,
    options: CacheOptions,
    codec: Option<Codec<K, V>>,
) -> &'static Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    start_clock();
    if let Some(cache) = lookup::<K, V>(name) {
        return cache;
    }
    let mut caches = CACHES.write();
    let mut registered_name = name.to_owned();
    if caches.contains_key(name) {
        // Same name, other types: sharing is impossible, and failing the call would
        // make the cache the reason a request fails. Keep the caches apart under
        // `name#2`, `name#3`..., reusing the one of these types if it exists, so that
        // every function of these types (and its `invalidate!`) finds the same one.
        for n in 1.. {
            let candidate = if n == 1 {
                name.to_owned()
            } else {
                format!("{name}#{n}")
            };
            match caches.get(&candidate) {
                Some(existing) => {
                    if let Some(cache) = existing.as_any().downcast_ref::<Cache<K, V>>() {
                        return cache;
                    }
                }
                None => {
                    registered_name = candidate;
                    break;
                }
            }
        }
        tracing::error!(
            cache = name,
            renamed = %registered_name,
            "two cached functions use one cache name with different key or value types; \
             give them distinct `name`s"
        );
    }
    let cache: &'static Cache<K, V> = Box::leak(Box::new(Cache::new(
        registered_name.clone(),
        options,
        codec,
    )));
    caches.insert(registered_name, cache);
    cache
}

fn lookup<K, V>(name: &str) -> Option<&'static Cache<K, V>>
where
    K: CacheKey,
    V: CacheValue,
{
    let caches = CACHES.read();
    let any: &'static (dyn Any + Send + Sync) = caches.get(name)?.as_any();
    any.downcast_ref()
}

/// What generated code knows of its cache: name, options, and the codec unless `local`.
pub type CacheSpec<K, V> = (String, CacheOptions, Option<Codec<K, V>>);

/// Holds one function's cache, found once through the registry; generated code keeps
/// one in a `static` so a call costs one atomic load, a pointer comparison and a
/// type-id comparison.
///
/// A method of a generic impl has one `static` for all its instantiations, and one
/// cache each (its default name carries the type arguments: `app::Repo<Pg>::get`).
/// The slot holds the cache of the instantiation that called first; the others are
/// found by name through the registry once, as the entry macros find them, and kept
/// in a short list beside it.
pub struct Slot {
    first: OnceLock<Held>,
    others: RwLock<Vec<Held>>,
}

struct Held {
    cache: &'static (dyn Any + Send + Sync),
    /// The path of the function instance that filled the slot
    /// ([`Instantiation`]).
    instantiation: &'static str,
}

/// Which instance of a function's code is calling: the path, type arguments
/// included, of a closure in its body. Distinct instances have distinct paths.
#[derive(Clone, Copy)]
pub struct Instantiation(pub(crate) &'static str);

impl Instantiation {
    /// The instance whose body holds `marker`.
    #[inline(always)]
    pub fn of<M>(_marker: M) -> Self {
        Self(std::any::type_name::<M>())
    }
}

impl Slot {
    /// An empty slot, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self {
            first: OnceLock::new(),
            others: RwLock::new(Vec::new()),
        }
    }

    /// The function's cache, created through the registry on the first call. `init`
    /// is a function pointer, not a closure type, so this is instantiated once per key
    /// and value type rather than once per cached function.
    #[inline]
    pub fn get<K, V>(
        &self,
        caller: Instantiation,
        init: fn() -> CacheSpec<K, V>,
    ) -> &'static Cache<K, V>
    where
        K: CacheKey,
        V: CacheValue,
    {
        let held = match self.first.get() {
            Some(held) => held,
            None => self.init::<K, V>(caller, init),
        };
        // Equal addresses mean equal paths: constant strings are merged whole or by
        // their tails, never one at the start of a longer one, so the lengths go
        // uncompared (and the type check still guards the cast). A copy of the same
        // path made elsewhere only costs the slower comparison below.
        if std::ptr::eq(held.instantiation.as_ptr(), caller.0.as_ptr()) {
            if let Some(cache) = held.cache.downcast_ref() {
                return cache;
            }
        }
        self.other_caller(held, caller, init)
    }

    #[cold]
    fn init<K, V>(&self, caller: Instantiation, init: fn() -> CacheSpec<K, V>) -> &Held
    where
        K: CacheKey,
        V: CacheValue,
    {
        self.first.get_or_init(|| Held {
            cache: named(init),
            instantiation: caller.0,
        })
    }

    #[cold]
    fn other_caller<K, V>(
        &self,
        first: &Held,
        caller: Instantiation,
        init: fn() -> CacheSpec<K, V>,
    ) -> &'static Cache<K, V>
    where
        K: CacheKey,
        V: CacheValue,
    {
        let held_by = |held: &Held| -> Option<&'static Cache<K, V>> {
            let cache = held.cache.downcast_ref()?;
            (held.instantiation == caller.0).then_some(cache)
        };
        if let Some(cache) = held_by(first) {
            return cache;
        }
        if let Some(cache) = self.others.read().iter().find_map(held_by) {
            return cache;
        }
        let cache = named(init);
        self.others.write().push(Held {
            cache,
            instantiation: caller.0,
        });
        cache
    }
}

/// The cache of a cached function, found by name through the registry: what the
/// function's siblings (`invalidate!`, `clear!` and the other entry macros) use, so the
/// function keeps the one `static`. A map lookup per entry operation, beside its
/// Redis round trip.
pub fn named<K, V>(spec: fn() -> CacheSpec<K, V>) -> &'static Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    let (name, options, codec) = spec();
    cache::<K, V>(&name, options, codec)
}

fn each(mut f: impl FnMut(&'static dyn Registered)) {
    // Copy the handles out so no registry lock is held while caches are touched.
    let caches: Vec<_> = CACHES.read().values().copied().collect();
    caches.into_iter().for_each(&mut f);
}

/// Starts the coarse clock and the sweeper, once per process: with the first cache,
/// or with `init`, whichever comes first (a process that only invalidates has no
/// cache, and its Redis tier still needs the time).
pub(crate) fn start_clock() {
    clock::ensure_ticking(sweep_all);
}

fn sweep_all(now: u64) {
    each(|cache| cache.sweep(now));
    tags::sweep_unused();
    #[cfg(feature = "metrics")]
    crate::export::publish_to_metrics_facade(stats());
}

pub(crate) fn clear_all_stores() {
    each(|cache| cache.clear_store());
}

fn registered(name: &str) -> Option<&'static dyn Registered> {
    CACHES.read().get(name).copied()
}

/// Another process cleared this cache, taking its Redis counter to `version`.
pub(crate) fn invalidated_remotely(name: &str, version: u64) {
    if let Some(cache) = registered(name) {
        cache.tag_cell().invalidated_at(version);
        cache.clear_store();
    }
}

/// Drops the L1 of the cache called `name`, and the loads in flight that began
/// before, if this process holds it; its tag's cell, or a cell of its own for a
/// process that never used the cache (a tool clearing it for the others).
pub(crate) fn clear_named(name: &str) -> Arc<TagCell> {
    match registered(name) {
        Some(cache) => {
            drop_l1(cache);
            cache.tag_cell()
        }
        None => Arc::new(TagCell::default()),
    }
}

/// This process missed a change of some entry of this cache (`entry_changes.rs`):
/// drops its L1, and the loads in flight that began before.
pub(crate) fn missed_entry_changes(name: &str) {
    if let Some(cache) = registered(name) {
        drop_l1(cache);
    }
}

/// Drops what `cache` holds here, and dooms its loads in flight: their stamps
/// carry the tag's old epoch.
fn drop_l1(cache: &dyn Registered) {
    cache.tag_cell().bump();
    cache.clear_store();
}

/// Another process invalidated this entry: evict it here.
pub(crate) fn evict_encoded(name: &str, key: &[u8]) {
    if let Some(cache) = registered(name) {
        cache.evict_encoded(key);
    }
}

/// Every cache's implicit tag, for a resync.
pub(crate) fn cache_tags() -> Vec<(String, Arc<TagCell>)> {
    CACHES
        .read()
        .iter()
        .map(|(name, cache)| (name.clone(), cache.tag_cell()))
        .collect()
}

/// A snapshot of every cache used so far in this process.
pub fn stats() -> StatsSnapshot {
    let mut caches = Vec::new();
    each(|cache| caches.push(cache.snapshot()));
    StatsSnapshot {
        caches,
        outbox: crate::outbox::snapshot(),
        unauthenticated_messages: crate::stats::unauthenticated_messages(),
        invalidations_made_again: crate::stats::invalidations_made_again(),
    }
}

/// The default cache name of a function: its path as the compiler spells it, taken
/// from the path of a marker item nested in it. Methods so get their type's path
/// (`app::Repo::get`), and two `get` methods in one module get two caches.
pub fn default_name(marker_path: &str, fn_name: &str) -> String {
    // `marker_path` is `<path of the function>[::{{closure}}...]::<marker>`: the body
    // of an `async fn` is a closure to the compiler.
    let mut path = split_last_segment(marker_path).map_or("", |(head, _)| head);
    while let Some((head, _)) = split_last_segment(path).filter(|(_, last)| last.starts_with("{{"))
    {
        path = head;
    }
    // The function's own type arguments (`impl Trait` arguments make some) are left
    // out with its segment: one cache serves them all. Its impl's stay in the parent
    // (`app::Repo<app::Pg>`): each instantiation has its own.
    let parent = split_last_segment(path).map_or("", |(head, _)| head);
    // A trait impl's method is `<app::Repo as app::UserRepo>::get` to the compiler;
    // its siblings, in an inherent impl, are `app::Repo::...`: both name `app::Repo::get`.
    let parent = match parent.strip_prefix('<').and_then(|p| p.split_once(" as ")) {
        Some((self_type, _)) if parent.ends_with('>') => self_type,
        _ => parent,
    };
    if parent.is_empty() {
        fn_name.to_owned()
    } else {
        format!("{parent}::{fn_name}")
    }
}

/// `path` split at its last `::` outside type arguments:
/// `app::Repo<app::Pg>::get<alloc::vec::Vec<u64>>` into `app::Repo<app::Pg>` and
/// `get<alloc::vec::Vec<u64>>`.
fn split_last_segment(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut depth = 0usize;
    for at in (1..bytes.len()).rev() {
        match bytes[at] {
            // `->` in a function pointer type closes nothing.
            b'>' if bytes[at - 1] != b'-' => depth += 1,
            b'<' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes[at - 1] == b':' => {
                return Some((&path[..at - 1], &path[at + 1..]));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_replaces_marker_and_function_segments() {
        assert_eq!(
            default_name("app::Repo::get::__marker", "get"),
            "app::Repo::get"
        );
        assert_eq!(
            default_name("app::Repo::__stratacache_get::__marker", "get"),
            "app::Repo::get"
        );
        assert_eq!(
            default_name("app::get::{{closure}}::__marker", "get"),
            "app::get"
        );
        assert_eq!(default_name("f::__marker", "f"), "f");
        assert_eq!(
            default_name(
                "<app::PgRepo as app::UserRepo>::get::{{closure}}::{{closure}}::{{closure}}",
                "get"
            ),
            "app::PgRepo::get"
        );
        // The marker generated code uses: a closure inside the spec closure.
        assert_eq!(
            default_name("app::get::{{closure}}::{{closure}}::{{closure}}", "get"),
            "app::get"
        );
        assert_eq!(
            default_name(
                "app::Repo::__stratacache_entry_get::{{closure}}::{{closure}}",
                "get"
            ),
            "app::Repo::get"
        );
    }

    #[test]
    fn default_name_keeps_the_impls_type_arguments_and_drops_the_functions() {
        let marker = "app::Repo<app::Pg>::get::{{closure}}::{{closure}}";
        assert_eq!(default_name(marker, "get"), "app::Repo<app::Pg>::get");
        let marker = "app::load<alloc::vec::Vec<u64>>::{{closure}}::{{closure}}";
        assert_eq!(default_name(marker, "load"), "app::load");
        let marker = "app::load<fn() -> u64, [u8; 2]>::{{closure}}::{{closure}}";
        assert_eq!(default_name(marker, "load"), "app::load");
        let marker = "<app::Repo<app::Pg> as app::UserRepo>::get::{{closure}}";
        assert_eq!(default_name(marker, "get"), "app::Repo<app::Pg>::get");
    }

    #[test]
    fn same_name_same_types_share_and_other_types_are_kept_apart() {
        let a = cache::<u64, u32>("registry-test", CacheOptions::default(), None);
        let b = cache::<u64, u32>("registry-test", CacheOptions::default(), None);
        assert!(std::ptr::eq(a, b));
        let c = cache::<String, u32>("registry-test", CacheOptions::default(), None);
        assert_eq!(c.name(), "registry-test#2");
        assert!(stats().cache("registry-test#2").is_some());
        let again = cache::<String, u32>("registry-test", CacheOptions::default(), None);
        assert!(
            std::ptr::eq(c, again),
            "the second function of those types must find the same cache"
        );
        let third = cache::<u8, u8>("registry-test", CacheOptions::default(), None);
        assert_eq!(third.name(), "registry-test#3");
    }
}
