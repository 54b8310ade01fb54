//! Engine tests, run against every L1 store (`cargo test -p stratacache-runtime
//! --features moka` adds the moka store).

// `(&&ShareProbe::<T>::new()).share_fn()` is autoref specialisation, not a needless borrow.
#![allow(clippy::needless_borrow)]

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::lead::panic_message;
use super::*;
use crate::shape::{OkOnly, ShareByClone, ShareByRetry, ShareProbe, SomeOnly, Whole};

type Counted = Arc<AtomicUsize>;

fn leak<K, S>(options: CacheOptions) -> Shaped<K, S>
where
    K: CacheKey,
    S: Shape,
    S::Value: CacheValue,
    S::Out: Send,
{
    clock::ensure_ticking(|_| {});
    Shaped {
        cache: Box::leak(Box::new(Cache::new("engine-test", options, None))),
        shape: std::marker::PhantomData,
    }
}

/// A cache used by one function shape, as generated code uses it (naming the shape
/// on every call).
struct Shaped<K: 'static, S: Shape>
where
    S::Value: 'static,
{
    cache: &'static Cache<K, S::Value>,
    shape: std::marker::PhantomData<S>,
}

impl<K, S: Shape<Value: 'static>> Clone for Shaped<K, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, S: Shape<Value: 'static>> Copy for Shaped<K, S> {}

impl<K, S: Shape<Value: 'static>> std::ops::Deref for Shaped<K, S> {
    type Target = Cache<K, S::Value>;
    fn deref(&self) -> &Self::Target {
        self.cache
    }
}

impl<K, S> Shaped<K, S>
where
    K: CacheKey,
    S: Shape + 'static,
    S::Value: CacheValue,
    S::Out: Send + 'static,
{
    fn get_or_load<M, F>(
        self,
        key: K,
        share: ShareFn<S>,
        make: M,
    ) -> impl Future<Output = S::Out> + 'static
    where
        M: FnOnce() -> (Tags, F) + 'static,
        F: Future<Output = S::Out> + 'static,
    {
        self.cache
            .get_or_load::<S, M, F, K>(key, share, make)
            .into_future()
    }

    fn get_or_load_refreshing<M, F>(
        self,
        key: K,
        share: ShareFn<S>,
        make: M,
        timed_out: TimedOutFn<S>,
    ) -> impl Future<Output = S::Out> + Send + 'static
    where
        M: FnOnce() -> (Tags, F) + Send + 'static,
        F: Future<Output = S::Out> + Send + 'static,
    {
        self.cache
            .get_or_load_refreshing::<S, M, F>(key, share, ready(make), timed_out)
            .into_future()
    }
}

/// A loader already made, as `get_or_load_refreshing` asks for one.
fn ready<M>(make: M) -> impl FnOnce() -> M {
    move || make
}

fn counting<T: Send + 'static>(
    calls: &Counted,
    delay: Duration,
    tags: &[&str],
    out: T,
) -> impl FnOnce() -> (Tags, futures_like::Boxed<T>) + Send + 'static {
    let calls = calls.clone();
    let tags: Tags = tags.iter().map(|t| TagName::new(t)).collect();
    move || {
        (
            tags,
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                out
            }),
        )
    }
}

/// Waits (bounded) until `calls` loads have started: the leader is loading.
async fn until_started(calls: &Counted, n: usize) {
    for _ in 0..1000 {
        if calls.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no load started within a second");
}

mod futures_like {
    pub type Boxed<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// The engine on the store the features select: quick_cache, or moka with the
/// `moka` feature (CI runs both).
mod on_the_default_store {
    #[tokio::test]
    async fn miss_then_hit() {
        super::miss_then_hit().await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thousand_callers_one_load() {
        super::thousand_callers_one_load().await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_copies_its_value_for_waiters_only_when_there_are_some() {
        super::a_load_copies_its_value_for_waiters_only_when_there_are_some().await
    }
    #[tokio::test]
    async fn cancelled_leader_hands_over() {
        super::cancelled_leader_hands_over().await
    }
    #[tokio::test]
    async fn panicking_loader_reaches_waiters() {
        super::panicking_loader_reaches_waiters().await
    }
    #[tokio::test]
    async fn errors_shared_not_cached() {
        super::errors_shared_not_cached().await
    }
    #[tokio::test]
    async fn unclonable_errors_retry() {
        super::unclonable_errors_retry().await
    }
    #[tokio::test]
    async fn none_not_cached() {
        super::none_not_cached().await
    }
    #[tokio::test]
    async fn tags_invalidate_only_their_entries() {
        super::tags_invalidate_only_their_entries().await
    }
    #[tokio::test]
    async fn invalidation_during_load_wins() {
        super::invalidation_during_load_wins().await
    }
    #[tokio::test]
    async fn ttl_expires() {
        super::ttl_expires().await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_while_revalidate_refreshes_once() {
        super::stale_while_revalidate_refreshes_once().await
    }
    #[tokio::test]
    async fn sweep_drops_expired_and_invalidated() {
        super::sweep_drops_expired_and_invalidated().await
    }
}

const NO_SHARE: Option<fn(&String) -> String> = None;

async fn miss_then_hit() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let calls = Counted::default();
    for _ in 0..3 {
        let out = cache
            .get_or_load(
                1,
                NO_SHARE,
                counting(&calls, Duration::ZERO, &[], "one".to_string()),
            )
            .await;
        assert_eq!(out, "one");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = cache.snapshot();
    assert_eq!(
        (stats.misses, stats.l1_hits, stats.loads, stats.entries),
        (1, 2, 1, 1)
    );
    // A hit is answered in the call, with no load future behind it; a miss, with one.
    let make = || counting(&calls, Duration::ZERO, &[], "two".to_string());
    let hit = cache
        .cache
        .get_or_load::<Whole<String>, _, _, _>(1, NO_SHARE, make());
    assert!(matches!(hit, Answer::Ready(ref out) if out == "one"));
    let miss = cache
        .cache
        .get_or_load::<Whole<String>, _, _, _>(2, NO_SHARE, make());
    assert!(matches!(miss, Answer::Load(_)));
}

async fn thousand_callers_one_load() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let calls = Counted::default();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let make = counting(&calls, Duration::from_millis(50), &[], "v".to_string());
            tokio::spawn(async move { cache.get_or_load(7, NO_SHARE, make).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "v");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A value that counts its copies.
#[derive(Debug)]
struct Copies(Counted);

impl Clone for Copies {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::SeqCst);
        Self(self.0.clone())
    }
}

async fn a_load_copies_its_value_for_waiters_only_when_there_are_some() {
    let cache = leak::<u64, Whole<Copies>>(CacheOptions::default());
    // What the store copies itself on an insert: none for quick_cache, one for moka.
    let by_store = Counted::default();
    let entry = cache.entry(Copies(by_store.clone()), &cache.stamp(&[]), None);
    cache.store.insert(0, entry);
    let by_store = by_store.load(Ordering::SeqCst);

    let (calls, copies) = (Counted::default(), Counted::default());
    let alone = Copies(copies.clone());
    let no_share = None::<fn(&Copies) -> Copies>;
    let make = counting(&calls, Duration::ZERO, &[], alone);
    cache.get_or_load(1, no_share, make).await;
    // One copy for L1 (and the store's own); the caller keeps the loaded value.
    assert_eq!(copies.load(Ordering::SeqCst), 1 + by_store);

    copies.store(0, Ordering::SeqCst);
    let slow = counting(
        &calls,
        Duration::from_millis(200),
        &[],
        Copies(copies.clone()),
    );
    let leader = tokio::spawn(cache.get_or_load(2, no_share, slow));
    until_started(&calls, 2).await;
    let never = counting(&calls, Duration::ZERO, &[], Copies(copies.clone()));
    let waiter = tokio::spawn(cache.get_or_load(2, no_share, never));
    leader.await.unwrap();
    // Joined the load, or came after it landed: answered either way, by that load.
    let answered = waiter.await.unwrap();
    assert!(Arc::ptr_eq(&answered.0, &copies));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the waiter ran no load");
}

async fn cancelled_leader_hands_over() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let calls = Counted::default();
    let leader = tokio::spawn(cache.get_or_load(
        1,
        NO_SHARE,
        counting(&calls, Duration::from_secs(60), &[], "never".into()),
    ));
    until_started(&calls, 1).await;
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(cache.get_or_load(
                1,
                NO_SHARE,
                counting(&calls, Duration::from_millis(20), &[], "late".into()),
            ))
        })
        .collect();
    // Whether the waiters have joined yet or not, one of them takes over: 2 loads.
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), "late");
    }
    // The cancelled leader's load and exactly one takeover.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn panicking_loader_reaches_waiters() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let started = Counted::default();
    let leader_started = started.clone();
    let make = move || {
        (Tags::new(), async move {
            leader_started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            panic!("database on fire")
        })
    };
    let leader = tokio::spawn(cache.get_or_load(1, NO_SHARE, make));
    until_started(&started, 1).await;
    let calls = Counted::default();
    let waiter = tokio::spawn(cache.get_or_load(
        1,
        NO_SHARE,
        counting(&calls, Duration::ZERO, &[], "x".into()),
    ));
    let leader_panic = leader.await.unwrap_err().into_panic();
    assert_eq!(panic_message(&*leader_panic), "database on fire");
    let waiter_panic = waiter.await.unwrap_err().into_panic();
    assert!(panic_message(&*waiter_panic).contains("database on fire"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the waiter must not have loaded"
    );
    // Nothing poisoned: the next call loads normally.
    assert_eq!(
        cache
            .get_or_load(
                1,
                NO_SHARE,
                counting(&calls, Duration::ZERO, &[], "ok".into())
            )
            .await,
        "ok"
    );
    assert_eq!(cache.snapshot().load_errors, 1);
}

async fn errors_shared_not_cached() {
    type R = Result<u32, String>;
    let cache = leak::<u64, OkOnly<R>>(CacheOptions::default());
    let share = (&&ShareProbe::<R>::new()).share_fn();
    let calls = Counted::default();
    let first = tokio::spawn(cache.get_or_load(
        1,
        share,
        counting(
            &calls,
            Duration::from_millis(30),
            &[],
            Err::<u32, _>("down".to_string()),
        ),
    ));
    until_started(&calls, 1).await;
    let second = cache
        .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], Ok(5)))
        .await;
    assert_eq!(
        second,
        Err("down".to_string()),
        "a concurrent waiter shares the error"
    );
    assert_eq!(first.await.unwrap(), Err("down".to_string()));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Later callers never see it: the next call loads.
    assert_eq!(
        cache
            .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], Ok(5)))
            .await,
        Ok(5)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[derive(Debug, PartialEq)]
struct Opaque;

async fn unclonable_errors_retry() {
    type R = Result<u32, Opaque>;
    let cache = leak::<u64, OkOnly<R>>(CacheOptions::default());
    let share = (&&ShareProbe::<R>::new()).share_fn();
    assert!(share.is_none());
    let calls = Counted::default();
    let first = tokio::spawn(cache.get_or_load(
        1,
        share,
        counting(
            &calls,
            Duration::from_millis(30),
            &[],
            Err::<u32, _>(Opaque),
        ),
    ));
    until_started(&calls, 1).await;
    let second = cache
        .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], Ok(9)))
        .await;
    assert_eq!(first.await.unwrap(), Err(Opaque));
    assert_eq!(
        second,
        Ok(9),
        "a waiter that cannot share the error loads for itself"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn none_not_cached() {
    let cache = leak::<u64, SomeOnly<u32>>(CacheOptions::default());
    let share = (&&ShareProbe::<Option<u32>>::new()).share_fn();
    let calls = Counted::default();
    assert_eq!(
        cache
            .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], None))
            .await,
        None
    );
    assert_eq!(
        cache
            .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], Some(3)))
            .await,
        Some(3)
    );
    assert_eq!(
        cache
            .get_or_load(1, share, counting(&calls, Duration::ZERO, &[], None))
            .await,
        Some(3)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn tags_invalidate_only_their_entries() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let calls = Counted::default();
    let get = |id: u64| {
        cache.get_or_load(
            id,
            NO_SHARE,
            counting(
                &calls,
                Duration::ZERO,
                &[&format!("engine-user:{id}")],
                format!("u{id}"),
            ),
        )
    };
    get(7).await;
    get(8).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    crate::invalidate_tag("engine-user:7").await.unwrap();
    get(7).await;
    get(8).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "only user 7 reloads");
    cache.cache.invalidate(&8).await.unwrap();
    get(8).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    cache.clear().await.unwrap();
    get(7).await;
    get(8).await;
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

async fn invalidation_during_load_wins() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    type Invalidation = Box<dyn Fn(&'static Cache<u64, String>)>;
    let ways: Vec<(&str, Invalidation)> = vec![
        (
            "tag",
            Box::new(|_| drop(crate::invalidate_tag("engine-race"))),
        ),
        ("key", Box::new(|c| drop(c.invalidate(&1)))),
        ("cache", Box::new(|c| drop(c.clear()))),
    ];
    // `clear_all` is process-wide and would disturb tests running beside this one:
    // tests/clear_all.rs checks it in a process of its own.
    for (how, invalidate) in ways {
        let calls = Counted::default();
        let old = tokio::spawn(cache.get_or_load(
            1,
            NO_SHARE,
            counting(
                &calls,
                Duration::from_millis(40),
                &["engine-race"],
                "old".into(),
            ),
        ));
        // The load has read its tag versions and started: now invalidate.
        until_started(&calls, 1).await;
        invalidate(cache.cache);
        let after = cache
            .get_or_load(
                1,
                NO_SHARE,
                counting(&calls, Duration::ZERO, &["engine-race"], "new".into()),
            )
            .await;
        assert_eq!(
            after, "new",
            "{how}: a call after the invalidation joined the older load"
        );
        assert_eq!(old.await.unwrap(), "old");
        let again = cache
            .get_or_load(
                1,
                NO_SHARE,
                counting(&calls, Duration::ZERO, &["engine-race"], "newer".into()),
            )
            .await;
        assert_ne!(
            again, "old",
            "{how}: the older load stored its value over the invalidation"
        );
        cache.cache.invalidate(&1).await.unwrap();
    }
}

async fn ttl_expires() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default().ttl(Duration::from_millis(50)));
    let calls = Counted::default();
    cache
        .get_or_load(
            1,
            NO_SHARE,
            counting(&calls, Duration::ZERO, &[], "a".into()),
        )
        .await;
    cache
        .get_or_load(
            1,
            NO_SHARE,
            counting(&calls, Duration::ZERO, &[], "a".into()),
        )
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    cache
        .get_or_load(
            1,
            NO_SHARE,
            counting(&calls, Duration::ZERO, &[], "b".into()),
        )
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn stale_while_revalidate_refreshes_once() {
    let options = CacheOptions::default()
        .ttl(Duration::from_millis(50))
        .stale_window(Duration::from_secs(60));
    let cache = leak::<u64, Whole<String>>(options);
    let calls = Counted::default();
    cache
        .get_or_load_refreshing(
            1,
            NO_SHARE,
            counting(&calls, Duration::ZERO, &[], "v1".into()),
            None,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    // The refresh is held until every caller has answered, so the test does not
    // depend on how fast the scheduler runs 100 tasks.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let gated = |calls: &Counted| {
        let (calls, gate) = (calls.clone(), gate.clone());
        move || {
            let load = async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await.unwrap();
                "v2".to_string()
            };
            (Tags::new(), load)
        }
    };
    let callers: Vec<_> = (0..100)
        .map(|_| tokio::spawn(cache.get_or_load_refreshing(1, NO_SHARE, gated(&calls), None)))
        .collect();
    for caller in callers {
        let answered = tokio::time::timeout(Duration::from_secs(10), caller).await;
        let answer = answered
            .expect("a caller in the window waited for the refresh")
            .unwrap();
        assert_eq!(
            answer, "v1",
            "a caller in the window missed the stale value"
        );
    }
    // The refresh is spawned by the first stale caller; it may not have run yet.
    until_started(&calls, 2).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "exactly one background refresh"
    );
    gate.add_permits(1);
    let mut refreshed = String::new();
    for _ in 0..200 {
        refreshed = cache
            .get_or_load_refreshing(1, NO_SHARE, gated(&calls), None)
            .await;
        if refreshed == "v2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(refreshed, "v2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(cache.snapshot().stale_served >= 100);
}

async fn sweep_drops_expired_and_invalidated() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default().ttl(Duration::from_millis(20)));
    let calls = Counted::default();
    for id in 0..10 {
        cache
            .get_or_load(
                id,
                NO_SHARE,
                counting(&calls, Duration::ZERO, &[], "v".into()),
            )
            .await;
    }
    assert_eq!(cache.snapshot().entries, 10);
    // quick_cache is swept by us; moka evicts on its own timer wheel (about 1 s).
    let mut entries = u64::MAX;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cache.sweep(clock::precise_ms());
        entries = cache.snapshot().entries;
        if entries == 0 {
            break;
        }
    }
    assert_eq!(entries, 0, "expired entries still held after 3 s");
}

#[test]
fn share_probe_is_usable_from_here() {
    let _ = (&&ShareProbe::<u8>::new()).share_fn();
    let _: Option<fn(&Opaque) -> Opaque> = ShareByRetry::share_fn(&ShareProbe::<Opaque>::new());
    let _: Option<fn(&u8) -> u8> = ShareByClone::share_fn(&&&ShareProbe::<u8>::new());
}

#[test]
fn a_hit_future_stays_small() {
    // The miss path is boxed so that the future of every call (hits included) does not
    // carry the miss path's state; a hit's future is moved when it is pinned.
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    let call = cache.get_or_load(
        1,
        NO_SHARE,
        counting(&Counted::default(), Duration::ZERO, &[], String::new()),
    );
    let size = std::mem::size_of_val(&call);
    assert!(size <= 256, "get_or_load's future is {size} bytes");
}

/// A miss boxes its load future, and each move of it (into the box, into its
/// parents' states) copies all of it: the Redis steps, and what a load found in
/// Redis, are boxed where they are used, so that a local fill does not pay for their
/// size. Inline, the load's future was 4.5 KiB; within 1 KiB its box comes from
/// glibc's per-thread cache (blocks up to 1,032 bytes), at a fraction of the cost.
/// The leader's steps are boxed apart, when the call leads: the same holds of them.
#[test]
fn a_load_future_does_not_carry_the_redis_steps() {
    let cache = leak::<u64, Whole<String>>(CacheOptions::default());
    // As the attribute makes it: the loader's maker owns the arguments, and makes
    // the tags when called (they are not carried in the load's future).
    let id = 1u64;
    let make = move || {
        let tags = crate::__private::tags([format_args!("users"), format_args!("user:{id}")]);
        (tags, async move { id.to_string() })
    };
    let load = cache
        .cache
        .load::<Whole<String>, _, _>(1, NO_SHARE, make, false);
    let size = std::mem::size_of_val(&load);
    assert!(size <= 512, "the load future takes {size} bytes");
    let hatch = super::loader::Hatch::default();
    let flight = Arc::new(crate::flight::Flight::new());
    let lead = super::lead::Lead::new(&cache.cache, 1, flight);
    let steps = cache
        .cache
        .lead_steps::<Whole<String>>(lead, NO_SHARE, &hatch);
    let size = std::mem::size_of_val(&steps);
    assert!(size <= 1024, "the leader's steps take {size} bytes");
}
