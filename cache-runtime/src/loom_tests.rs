//! The flights and the tag-version protocol, model-checked: loom runs each test under
//! every interleaving of the threads' operations on the flights lock, the flight's
//! landing and the tag counters (up to `LOOM_MAX_PREEMPTIONS` preemptions, default
//! 3 here).
//!
//! ```sh
//! RUSTFLAGS="--cfg stratacache_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p stratacache-runtime --lib loom -- --nocapture
//! ```
//!
//! Each test plays the engine's protocol with the real [`Flights`], [`Flight`] and
//! [`TagCell`]: join or lead under the lock, land through
//! [`Locked::store_and_retire`] (the landing skipped when [`Locked::is_watched`]
//! says nobody else holds the flight), doom on an invalidation. L1 is a map behind
//! the same kind of lock (quick_cache itself is not instrumented for loom). Under
//! loom the flight's `Notify` is `sync.rs`'s model of tokio's (same
//! `notify_waiters` semantics, on loom's mutex), so every step of a wake-up is
//! interleaved and a lost wake-up, or a landing skipped while a waiter holds the
//! flight, shows as a deadlock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use loom::future::block_on;
use loom::thread;

use crate::flight::{Flight, Landed, Origin};
use crate::flights::{Flights, Locked};
use crate::sync::{AtomicU64 as ModelCounter, Mutex};
use crate::tags::{self, Stamps, TagCell, TagStamp};

const KEY: u64 = 1;

/// L1 in the model: key -> (value, the stamps it was stored under).
type Store = Arc<Mutex<HashMap<u64, (u64, Stamps)>>>;

struct Model {
    flights: Flights<u64, u64>,
    store: Store,
    tag: Arc<TagCell>,
    loads: ModelCounter,
}

impl Model {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            flights: Flights::default(),
            store: Store::default(),
            tag: Arc::new(TagCell::default()),
            loads: ModelCounter::new(0),
        })
    }

    /// A value L1 may serve: stored, and no tag it was stored under moved.
    fn servable(&self) -> Option<u64> {
        let store = self.store.lock();
        let (value, stamps) = store.get(&KEY)?;
        tags::all_current(stamps).then_some(*value)
    }

    fn stamps(&self) -> Stamps {
        vec![TagStamp::new(self.tag.clone())].into()
    }

    /// A landing, as the engine's: store and retire under the lock, then wake, unless
    /// nobody besides the leader holds the flight (then the landing is not made).
    fn land(&self, flight: &Arc<Flight<u64>>, stamps: &Stamps, value: u64) {
        let mut locked: Locked<'_, u64, u64> = self.flights.lock();
        let store = || {
            self.store.lock().insert(KEY, (value, stamps.clone()));
        };
        locked.store_and_retire(&KEY, flight, stamps, store);
        let watched = locked.is_watched(flight);
        drop(locked);
        if watched {
            flight.land::<()>(Landed::Value(value, Origin::Loader));
        }
    }

    /// A cancelled or panicking leader, as the engine's drop guard: retire, then hand
    /// the load on to whoever holds the flight.
    fn abandon(&self, flight: &Arc<Flight<u64>>, landed: Landed<u64, ()>) {
        let mut locked = self.flights.lock();
        locked.retire(&KEY, flight);
        let watched = locked.is_watched(flight);
        drop(locked);
        if watched {
            flight.land(landed);
        }
    }

    /// One call: join the flight in progress, take the value L1 holds, or lead a
    /// load of `value` (abandoning it if `abandon` is set); again on a retry.
    fn call(&self, value: u64, abandon: Option<Landed<u64, ()>>) -> Option<u64> {
        let mut abandon = abandon;
        loop {
            let (flight, leads) = {
                let mut locked = self.flights.lock();
                if let Some(flight) = locked.joinable(&KEY) {
                    (flight, false)
                } else if let Some(value) = self.servable() {
                    return Some(value);
                } else {
                    (locked.lead(KEY, Flight::new()), true)
                }
            };
            if leads {
                let stamps = self.stamps();
                flight.set_stamps(stamps.clone());
                if let Some(landed) = abandon.take() {
                    self.abandon(&flight, landed);
                    return None;
                }
                self.loads.fetch_add(1, Ordering::Relaxed);
                self.land(&flight, &stamps, value);
                return Some(value);
            }
            match block_on(flight.wait::<()>(None)) {
                Landed::Value(value, _) => return Some(value),
                Landed::Panicked(_) => return None,
                Landed::Retry | Landed::Absent | Landed::Shared(_) => continue,
            }
        }
    }
}

/// Runs `test` under every interleaving loom explores, and reports how many (the
/// count is this test's own: the test harness runs tests in parallel).
fn model(name: &str, test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let explored = Arc::new(AtomicUsize::new(0));
    let counter = explored.clone();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        test();
    });
    let explored = explored.load(Ordering::Relaxed);
    println!("loom: {name}: {explored} interleavings");
}

#[test]
fn loom_one_load_per_key_however_many_callers_miss_at_once() {
    model("one load per key", || {
        let model = Model::new();
        let others: Vec<_> = (0..2)
            .map(|_| {
                let model = model.clone();
                thread::spawn(move || model.call(7, None))
            })
            .collect();
        assert_eq!(model.call(7, None), Some(7));
        for other in others {
            assert_eq!(other.join().unwrap(), Some(7));
        }
        assert_eq!(
            model.loads.load(Ordering::Relaxed),
            1,
            "one load for three callers"
        );
    });
}

/// A load that has recorded its tags' versions lands its value while another thread
/// runs `invalidate`: once `invalidate` has returned, the value is never servable.
fn race_a_landing_with(name: &str, invalidate: fn(&Model)) {
    model(name, move || {
        let model = Model::new();
        let flight = model.flights.lock().lead(KEY, Flight::new());
        let stamps = model.stamps();
        flight.set_stamps(stamps.clone());
        let invalidation = {
            let model = model.clone();
            thread::spawn(move || {
                invalidate(&model);
                assert_eq!(
                    model.servable(),
                    None,
                    "served after the invalidation returned"
                );
            })
        };
        model.land(&flight, &stamps, 7);
        invalidation.join().unwrap();
        assert_eq!(
            model.servable(),
            None,
            "the load's value survived the invalidation"
        );
        assert!(
            model.flights.lock().joinable(&KEY).is_none(),
            "an invalidated load is never joined"
        );
    });
}

#[test]
fn loom_no_value_lands_after_an_invalidation_of_its_tag_has_returned() {
    race_a_landing_with("tag invalidation", |model| model.tag.bump());
}

#[test]
fn loom_no_value_lands_after_an_invalidation_of_its_key_has_returned() {
    // `invalidate!`: doom the load in flight and evict, under the lock.
    race_a_landing_with("key invalidation", |model| {
        let mut locked = model.flights.lock();
        locked.doom(&KEY);
        model.store.lock().remove(&KEY);
    });
}

#[test]
fn loom_a_waiter_is_never_stranded_when_its_leader_is_cancelled() {
    model("cancelled leader", || {
        let model = Model::new();
        let waiter = {
            let model = model.clone();
            thread::spawn(move || model.call(8, None))
        };
        let _ = model.call(7, Some(Landed::Retry));
        // The waiter either joined the cancelled load and led the next one, or came
        // after it and led its own: either way it finishes with a value.
        assert_eq!(waiter.join().unwrap(), Some(8));
    });
}

#[test]
fn loom_a_waiter_is_never_stranded_when_its_leader_panics() {
    model("panicking leader", || {
        let model = Model::new();
        let waiter = {
            let model = model.clone();
            thread::spawn(move || model.call(8, None))
        };
        let _ = model.call(7, Some(Landed::Panicked("boom".into())));
        // Joined: it hears of the panic (`None`, as the engine re-raises it); came
        // after: it led its own load.
        let answer = waiter.join().unwrap();
        assert!(matches!(answer, None | Some(8)), "{answer:?}");
        assert!(model.loads.load(Ordering::Relaxed) <= 1);
    });
}
