//! Batch calls: many keys, one loader call. Every key is looked up in L1; the keys
//! still missing are read from Redis in one `MGET`; the keys Redis lacks too are
//! claimed one flight each (so a concurrent call, batch or single, joins rather than
//! loads them again) and go to the loader together. Each value is stored as its own
//! entry, exactly as a single-key call would store it.
//!
//! Reading Redis before claiming (a single-key call claims first) spares a batch a
//! flight per key it finds there; concurrent readers of one key may each read it,
//! but only one loads it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic;
use std::sync::Arc;

use futures_util::future::join_all;

use super::lead::{panic_message, Keep, Outcome, Settled};
use super::reentry;
use super::shared_many::Missing;
use super::{Cache, CacheKey, CacheValue, Seen, Tags};
use crate::batch_output::{Absence, BatchOutput, PlainMap};
use crate::flight::{Flight, Landed, Origin};
use crate::l2::entry::{Target, WriteUnder};
use crate::stats::Counter;
use crate::tags::Stamps;
use crate::warm_tally::Tally;

type Claimed<K, V> = Vec<(K, Arc<Flight<V>>)>;
type ClaimedMissing<K, V> = Vec<(Missing<K>, Arc<Flight<V>>)>;
/// Where a loaded key's value goes in Redis, and what it is written under.
type WriteBack = Option<(Target, WriteUnder)>;
/// The values step 6 owes Redis: where each goes, and what it is written under.
type Writes<V> = Vec<(Target, V, WriteUnder)>;
/// [`Writes`] and their keys, in order, as
/// [`Flights::key_hash`](crate::flights::Flights::key_hash) gives them.
type WritesByKey<V> = (Writes<V>, Vec<u64>);
/// A landing readied for a batch's flight (by its index): outcome and entry to store.
type Landing<V> = (usize, Landed<V, ()>, Option<Keep<V>>);

/// The flights a batch call leads: each is landed exactly once, as `Retry` for the
/// waiters if the call is dropped or returns early. Landings are made together (one
/// lock, one clock reading) when the call has a set of them ready.
struct BatchLead<'a, K: CacheKey, V: CacheValue> {
    cache: &'a Cache<K, V>,
    flights: Vec<(K, Arc<Flight<V>>, Option<Stamps>)>,
    ready: Vec<Landing<V>>,
}

impl<K: CacheKey, V: CacheValue> BatchLead<'_, K, V> {
    fn land(&mut self, index: usize, landed: Landed<V, ()>, keep: Option<Keep<V>>) {
        if self.flights[index].2.take().is_some() {
            self.ready.push((index, landed, keep));
        }
    }

    /// Lands a value, copying it into the flight only if someone waits on it (the
    /// flight is held here and in the flights map, and by each waiter). A caller that
    /// joins at this very instant gets `Retry`, goes round and finds the stored entry.
    fn land_value(&mut self, index: usize, value: &V, origin: Origin, keep: Option<Keep<V>>) {
        let waited = Arc::strong_count(&self.flights[index].1) > 2;
        let landed = if waited {
            Landed::Value(value.clone(), origin)
        } else {
            Landed::Retry
        };
        self.land(index, landed, keep);
    }

    /// Makes the landings readied so far.
    fn flush(&mut self) {
        let flights = &self.flights;
        self.cache.land_many(
            self.ready
                .drain(..)
                .map(|(index, landed, keep)| (&flights[index].0, &flights[index].1, landed, keep)),
        );
    }
}

impl<K: CacheKey, V: CacheValue> Drop for BatchLead<'_, K, V> {
    fn drop(&mut self) {
        for index in 0..self.flights.len() {
            self.land(index, Landed::Retry, None);
        }
        self.flush();
    }
}

impl<K, V> Cache<K, V>
where
    K: CacheKey,
    V: CacheValue,
{
    /// A batch call: the value of every key, from L1, Redis or one call of `load`
    /// with the keys still missing. `tags_of` gives a key's tags. An error output of
    /// the loader is returned as is (nothing is cached); keys it does not return are
    /// cached or not as `A` says.
    pub async fn get_many<O, A, T, L, F>(&'static self, keys: Vec<K>, tags_of: T, load: L) -> O
    where
        O: BatchOutput<Key = K>,
        A: Absence<O::Item, Value = V>,
        T: Fn(&K) -> Tags,
        L: Fn(Vec<K>) -> F,
        F: Future<Output = O>,
    {
        let tally = super::entry_ops::take_tally();
        let mut answered: Vec<(K, V)> = Vec::with_capacity(keys.len());
        let mut seen: HashSet<K, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(keys.len(), Default::default());
        let mut pending: Vec<K> = Vec::with_capacity(keys.len());
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            match self.lookup(&key) {
                Seen::Fresh(value) | Seen::Refresh(value) => {
                    self.stats.bump(Counter::L1Hit);
                    Tally::add(&tally, |t| &t.present, 1);
                    answered.push((key, value));
                }
                Seen::Stale(_) | Seen::Gone => pending.push(key),
            }
        }
        // A key whose flight's leader gave up (cancelled, or its outcome was for
        // another function) goes round again, from Redis.
        while !pending.is_empty() {
            let missing = self
                .read_many(pending, &tags_of, &mut answered, &tally)
                .await;
            let (led, followed) = self.claim(missing, &mut answered, &tally);
            let leading = self.lead_many::<O, A, L, F>(led, &load, &tally);
            let following = self.follow_many(followed, &tally);
            let (loaded, (found, retry)) = futures_util::future::join(leading, following).await;
            match loaded {
                Ok(loaded) => answered.extend(loaded),
                Err(error) => return error,
            }
            answered.extend(found);
            pending = retry;
        }
        let pairs = answered
            .into_iter()
            .filter_map(|(key, value)| A::present(value).map(|item| (key, item)));
        O::from_map(O::Map::from_pairs(pairs))
    }

    /// Under one lock: joins a flight for each key that has one, answers the keys a
    /// flight just stored, and leads the rest.
    fn claim(
        &self,
        missing: Vec<Missing<K>>,
        answered: &mut Vec<(K, V)>,
        tally: &Option<Arc<Tally>>,
    ) -> (ClaimedMissing<K, V>, Claimed<K, V>) {
        let (mut led, mut followed) = (Vec::with_capacity(missing.len()), Vec::new());
        let mut flights = self.flights.lock();
        for one in missing {
            if let Some(flight) = flights.joinable(&one.key) {
                followed.push((one.key, flight));
                continue;
            }
            if let Seen::Fresh(value) | Seen::Refresh(value) = self.lookup(&one.key) {
                self.stats.bump(Counter::L1Hit);
                Tally::add(tally, |t| &t.present, 1);
                answered.push((one.key, value));
                continue;
            }
            let flight = Flight::new();
            flight.set_stamps(one.stamps.clone());
            let flight = flights.lead(one.key.clone(), flight);
            led.push((one, flight));
        }
        (led, followed)
    }

    async fn follow_many(
        &self,
        followed: Claimed<K, V>,
        tally: &Option<Arc<Tally>>,
    ) -> (Vec<(K, V)>, Vec<K>) {
        let landings = join_all(followed.iter().map(|(_, flight)| flight.wait::<()>(None))).await;
        let (mut found, mut retry) = (Vec::new(), Vec::new());
        for ((key, _), landed) in followed.into_iter().zip(landings) {
            match landed {
                Landed::Value(value, origin) => {
                    self.count(origin);
                    let loaded = origin == Origin::Loader;
                    Tally::add(
                        tally,
                        if loaded {
                            |t| &t.loaded
                        } else {
                            |t| &t.present
                        },
                        1,
                    );
                    found.push((key, value));
                }
                Landed::Absent => {
                    self.stats.bump(Counter::Miss);
                    Tally::add(tally, |t| &t.failed, 1);
                }
                Landed::Shared(()) | Landed::Retry => retry.push(key),
                Landed::Panicked(message) => {
                    self.stats.bump(Counter::Miss);
                    panic!("the loader of cache `{}` panicked: {message}", self.name)
                }
            }
        }
        (found, retry)
    }

    /// The leader's part for the keys this call claimed (none of them fresh in
    /// Redis): the named steps of a load, as a single-key call runs them (`run_loader`,
    /// `settle_overrides`), for all of them at once: 3. one loader call, 4. settle,
    /// 5. land each in L1, 6. write them back, in the background.
    async fn lead_many<O, A, L, F>(
        &'static self,
        led: ClaimedMissing<K, V>,
        load: &L,
        tally: &Option<Arc<Tally>>,
    ) -> Result<Vec<(K, V)>, O>
    where
        O: BatchOutput<Key = K>,
        A: Absence<O::Item, Value = V>,
        L: Fn(Vec<K>) -> F,
        F: Future<Output = O>,
    {
        if led.is_empty() {
            return Ok(Vec::new());
        }
        let (mut lead, write_backs) = self.batch_lead(led);
        let missing: Vec<K> = lead.flights.iter().map(|(key, ..)| key.clone()).collect();
        let span = self.load_span();
        span.record("answered_by", "loader");
        span.record("keys", missing.len());
        let flights: Vec<usize> = lead
            .flights
            .iter()
            .map(|(_, flight, _)| reentry::flight_id(flight))
            .collect();
        let run = super::loader::run_in_span(load(missing), &flights, &span);
        let (outcome, overrides, took) = self.run_loader(run, &span).await;
        span.record("micros", took.as_micros() as u64);
        let returned = self.settle_many::<O>(&mut lead, outcome, &span, tally)?;
        let settled = self.settle_overrides(overrides);
        // Read before the landings check which flights were doomed: see `write_back_many`.
        let writes_before = self.flights.writes();
        let (answered, (writes, keys)) =
            self.land_many_loaded::<O, A>(&mut lead, write_backs, returned, &settled, tally);
        let lifetime = settled.written_lifetime(&self.options);
        self.write_back_many(writes, keys, lifetime, settled.added, writes_before)
            .await;
        Ok(answered)
    }

    /// The flights a batch leads, and where each key's value goes in Redis.
    fn batch_lead(&self, led: ClaimedMissing<K, V>) -> (BatchLead<'_, K, V>, Vec<WriteBack>) {
        let mut lead = BatchLead {
            cache: self,
            flights: Vec::with_capacity(led.len()),
            ready: Vec::with_capacity(led.len()),
        };
        let mut write_backs = Vec::with_capacity(led.len());
        for (missing, flight) in led {
            lead.flights
                .push((missing.key, flight, Some(missing.stamps)));
            write_backs.push(missing.write_back);
        }
        (lead, write_backs)
    }

    /// Step 4: the loader's map by key, or its error for the caller (every waiter
    /// retries), or its panic for everyone.
    fn settle_many<O>(
        &self,
        lead: &mut BatchLead<'_, K, V>,
        outcome: Outcome<O>,
        span: &tracing::Span,
        tally: &Option<Arc<Tally>>,
    ) -> Result<HashMap<K, O::Item, foldhash::fast::RandomState>, O>
    where
        O: BatchOutput<Key = K>,
    {
        let failed = |outcome: &str| {
            span.record("outcome", outcome);
            self.stats.bump(Counter::LoadError);
            Tally::add(tally, |t| &t.failed, lead.flights.len());
        };
        match outcome {
            Ok(out) => match out.into_map() {
                Ok(map) => {
                    span.record("outcome", "ok");
                    Ok(map.into_pairs().collect())
                }
                Err(error) => {
                    failed("error");
                    for _ in &lead.flights {
                        self.stats.bump(Counter::Miss);
                    }
                    Err(error)
                }
            },
            Err(payload) => {
                failed("panic");
                let message: Arc<str> = panic_message(&*payload).into();
                for index in 0..lead.flights.len() {
                    lead.land(index, Landed::Panicked(message.clone()), None);
                }
                panic::resume_unwind(payload);
            }
        }
    }

    /// Step 5: each key's value (or its absence) landed for the waiters and kept in L1
    /// under its stamps and the tags the loader added; returns the answers and the
    /// writes step 6 owes Redis.
    fn land_many_loaded<O, A>(
        &self,
        lead: &mut BatchLead<'_, K, V>,
        write_backs: Vec<WriteBack>,
        mut returned: HashMap<K, O::Item, foldhash::fast::RandomState>,
        settled: &Settled,
        tally: &Option<Arc<Tally>>,
    ) -> (Vec<(K, V)>, WritesByKey<V>)
    where
        O: BatchOutput<Key = K>,
        A: Absence<O::Item, Value = V>,
    {
        let (mut answered, mut writes, mut keys) = (Vec::new(), Vec::new(), Vec::new());
        for (index, write_back) in write_backs.into_iter().enumerate() {
            self.stats.bump(Counter::Miss);
            let key = lead.flights[index].0.clone();
            let value = match returned.remove(&key).map(A::store).or_else(A::absent) {
                Some(value) => value,
                None => {
                    Tally::add(tally, |t| &t.failed, 1);
                    lead.land(index, Landed::Absent, None);
                    continue;
                }
            };
            let has_value = A::present(value.clone()).is_some();
            Tally::add(
                tally,
                if has_value {
                    |t| &t.loaded
                } else {
                    |t| &t.failed
                },
                1,
            );
            let recorded = lead.flights[index].2.clone().expect("not landed yet");
            let keep = settled.keep(&value, &recorded);
            lead.land_value(index, &value, Origin::Loader, keep);
            if settled.skip {
                answered.push((key, value));
                continue;
            }
            // Not over a `put!`, `refresh!` or `invalidate!` of the key (see `pipeline.rs`).
            if let (Some((target, under)), false) = (write_back, lead.flights[index].1.is_doomed())
            {
                writes.push((target, value.clone(), under));
                keys.push(self.flights.key_hash(&key));
            }
            answered.push((key, value));
        }
        lead.flush();
        (answered, (writes, keys))
    }
}
