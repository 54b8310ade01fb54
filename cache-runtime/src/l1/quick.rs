//! The default store: quick_cache's unsynchronized cache behind our own sharded
//! read-write locks. `quick_cache::sync::Cache::get` can only return a clone of the
//! whole stored entry; reading under our own read lock lets a hit check the entry's
//! freshness and tags in place and clone only the value.
//!
//! A key is hashed once per call: the hash picks the shard and travels with the key
//! into quick_cache's table ([`Hashed`], [`Probe`]), whose hasher passes it through.

use std::hash::{BuildHasher, Hash, Hasher};

use parking_lot::RwLock;
use quick_cache::unsync::Cache;

use super::{Entry, L1Store};

type Shard<K, V> = RwLock<
    Cache<
        Hashed<K>,
        Entry<V>,
        quick_cache::UnitWeighter,
        PassHash,
        quick_cache::unsync::DefaultLifecycle<Hashed<K>, Entry<V>>,
    >,
>;

/// The default store: quick_cache shards behind our own read-write locks.
pub struct QuickStore<K, V> {
    shards: Box<[Shard<K, V>]>,
    hasher: KeyHasher,
}

/// The hash of a key, for its shard and its place in the shard: foldhash, seeded at
/// random once per process (a key chosen to collide in one process's table does not
/// in another's).
struct KeyHasher {
    /// Made once: making it folds the seed with a constant, which a hasher made per
    /// lookup would do on every hit.
    state: foldhash::fast::FixedState,
}

impl KeyHasher {
    fn new() -> Self {
        static SEED: std::sync::LazyLock<u64> =
            std::sync::LazyLock::new(|| std::hash::RandomState::new().hash_one(0x5eed_cafe_u64));
        Self {
            state: foldhash::fast::FixedState::with_seed(*SEED),
        }
    }

    #[inline(always)]
    fn hash<Q: ?Sized + Hash>(&self, key: &Q) -> u64 {
        self.state.hash_one(key)
    }
}

/// A stored key and its hash: quick_cache hashes stored keys again when its table
/// grows and when it evicts, and then reads the hash instead of computing it.
/// Costs 8 bytes an entry.
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K> Hash for Hashed<K> {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: Eq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

/// A lookup's key, borrowed, with its hash.
struct Probe<'a, Q: ?Sized> {
    hash: u64,
    key: &'a Q,
}

impl<Q: ?Sized> Hash for Probe<'_, Q> {
    #[inline(always)]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K, Q> quick_cache::Equivalent<Hashed<K>> for Probe<'_, Q>
where
    Q: ?Sized + quick_cache::Equivalent<K>,
{
    #[inline(always)]
    fn equivalent(&self, stored: &Hashed<K>) -> bool {
        self.key.equivalent(&stored.key)
    }
}

/// quick_cache's hasher: the hash a [`Hashed`] or a [`Probe`] carries, as it is.
#[derive(Clone, Copy, Default)]
struct PassHash;

impl BuildHasher for PassHash {
    type Hasher = PassHasher;

    #[inline(always)]
    fn build_hasher(&self) -> PassHasher {
        PassHasher(0)
    }
}

/// See [`PassHash`]. Only `write_u64` is ever called; other writes are folded in, so
/// the hasher stays a hasher whatever calls it.
struct PassHasher(u64);

impl Hasher for PassHasher {
    #[inline(always)]
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<K: Hash + Eq, V> QuickStore<K, V> {
    #[inline(always)]
    fn probe<'a, Q: ?Sized + Hash>(&self, key: &'a Q) -> (&Shard<K, V>, Probe<'a, Q>) {
        // Bits 32 and up pick the shard: quick_cache's table uses the low bits for a
        // place and the top seven as a tag, so each keeps its full spread.
        let hash = self.hasher.hash(key);
        let index = (hash >> 32) as usize & (self.shards.len() - 1);
        (&self.shards[index], Probe { hash, key })
    }
}

/// Enough shards for the cores to rarely meet on one lock, and for a sweep to visit
/// at most about `SWEPT_PER_SHARD` entries at a time.
fn shard_count(capacity: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let for_cores = (cores * 4).next_power_of_two().clamp(4, 64);
    let for_sweeps = capacity.div_ceil(SWEPT_PER_SHARD).next_power_of_two() as usize;
    for_cores
        .max(for_sweeps.min(MAX_SHARDS))
        .min(capacity.max(1).next_power_of_two() as usize)
}

const SWEPT_PER_SHARD: u64 = 1 << 15;
const MAX_SHARDS: usize = 1024;

impl<K, V> L1Store<K, V> for QuickStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn with_capacity(capacity: u64) -> Self {
        let count = shard_count(capacity);
        let per_shard = capacity.div_ceil(count as u64).max(1) as usize;
        let hasher = KeyHasher::new();
        let shard = || {
            let lifecycle = Default::default();
            let cache = Cache::with(
                per_shard,
                per_shard as u64,
                quick_cache::UnitWeighter,
                PassHash,
                lifecycle,
            );
            RwLock::new(cache)
        };
        Self {
            shards: (0..count).map(|_| shard()).collect(),
            hasher,
        }
    }

    #[inline(always)]
    fn read<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V>) -> R) -> Option<R>
    where
        Q: ?Sized + Hash + quick_cache::Equivalent<K>,
    {
        let (shard, probe) = self.probe(key);
        shard.read().get(&probe).map(read)
    }

    #[inline(always)]
    fn read_some<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V>) -> Option<R>) -> Option<R>
    where
        Q: ?Sized + Hash + quick_cache::Equivalent<K>,
    {
        let (shard, probe) = self.probe(key);
        shard.read().get(&probe).and_then(read)
    }

    fn insert(&self, key: K, entry: Entry<V>) {
        let (shard, probe) = self.probe(&key);
        let hash = probe.hash;
        shard.write().insert(Hashed { hash, key }, entry);
    }

    fn remove(&self, key: &K) {
        let (shard, probe) = self.probe(key);
        shard.write().remove(&probe);
    }

    fn remove_if(&self, key: &K, doomed: impl FnOnce(&Entry<V>) -> bool) {
        let (shard, probe) = self.probe(key);
        shard.write().remove_if(&probe, doomed);
    }

    fn update(&self, key: &K, change: impl FnOnce(&mut Entry<V>)) {
        let (shard, probe) = self.probe(key);
        if let Some(mut entry) = shard.write().get_mut(&probe) {
            change(&mut entry);
        }
    }

    fn parts(&self) -> usize {
        self.shards.len()
    }

    fn retain_part(&self, part: usize, keep: impl Fn(&Entry<V>) -> bool) {
        // One shard at a time, so a sweep never blocks the whole cache.
        self.shards[part].write().retain(|_, entry| keep(entry));
    }

    fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().clear();
        }
    }

    fn len(&self) -> u64 {
        self.shards.iter().map(|s| s.read().len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, L1Store};
    use super::QuickStore;
    use crate::times::Times;

    #[test]
    fn passes_the_store_contract() {
        super::super::contract::run::<QuickStore<u64, u32>>();
    }

    #[test]
    fn a_large_store_is_swept_one_bounded_shard_at_a_time() {
        let store = QuickStore::<u64, u32>::with_capacity(2_000_000);
        assert_eq!(store.parts(), 64, "2e6 entries: shards of at most 32768");
        let dead = Times {
            fresh_until: 0,
            stale_until: 0,
            keep_until: 0,
            refresh_at: 0,
        };
        for key in 0..10_000 {
            let stamps = Default::default();
            store.insert(
                key,
                Entry {
                    value: 0,
                    times: dead.into(),
                    stamps,
                },
            );
        }
        store.retain_part(0, |entry| entry.times.keep_until() > 0);
        let left = store.len();
        assert!(
            (9_700..10_000).contains(&left),
            "one part holds about 1/64 of the entries; {left} left"
        );
        for part in 1..store.parts() {
            store.retain_part(part, |entry| entry.times.keep_until() > 0);
        }
        assert_eq!(store.len(), 0);
    }
}
