//! `#[cached]` on methods of trait impls, the repository shape of most services:
//! with a native `async fn` in the trait, and with `#[async_trait]` called through
//! `dyn Trait`. `#[cached_impl]` on the impl block puts the methods' hidden siblings
//! in an inherent impl of the type.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use stratacache::{cached, cached_impl, clear, invalidate, invalidate_tag, peek};

trait UserRepo {
    async fn name(&self, id: u64) -> Result<String, String>;
}

#[derive(Default)]
struct PgRepo {
    loads: AtomicUsize,
}

#[cached_impl]
impl UserRepo for PgRepo {
    #[cached(ttl = "1m", tags = ["user:{id}"], local)]
    async fn name(&self, id: u64) -> Result<String, String> {
        self.loads.fetch_add(1, SeqCst);
        Ok(format!("user {id}"))
    }
}

#[tokio::test]
async fn a_method_of_a_trait_impl_is_cached_and_invalidated_by_tag_and_by_entry() {
    let repo = PgRepo::default();
    assert_eq!(repo.name(1).await.unwrap(), "user 1");
    assert_eq!(repo.name(1).await.unwrap(), "user 1");
    assert_eq!(repo.loads.load(SeqCst), 1);
    invalidate_tag!("user:{}", 1).await.unwrap();
    repo.name(1).await.unwrap();
    assert_eq!(
        repo.loads.load(SeqCst),
        2,
        "the tag invalidation reached it"
    );
    assert_eq!(peek!(repo.name(1)).await, Some("user 1".to_owned()));
    invalidate!(repo.name(1)).await.unwrap();
    assert_eq!(peek!(repo.name(1)).await, None, "the entry macros reach it");
    repo.name(1).await.unwrap();
    clear!(PgRepo::name).await.unwrap();
    repo.name(1).await.unwrap();
    assert_eq!(repo.loads.load(SeqCst), 4);
}

#[async_trait::async_trait]
trait OrderRepo: Send + Sync {
    async fn total(&self, id: u64) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
}

#[derive(Default)]
struct PgOrders {
    loads: AtomicUsize,
}

#[cached_impl]
#[async_trait::async_trait]
impl OrderRepo for PgOrders {
    #[cached(ttl = "1m", tags = ["order:{id}"], local)]
    async fn total(&self, id: u64) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        self.loads.fetch_add(1, SeqCst);
        Ok(id * 10)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_trait_impl_is_cached_through_dyn_and_spawnable() {
    let concrete = Arc::new(PgOrders::default());
    let repo: Arc<dyn OrderRepo> = concrete.clone();
    assert_eq!(repo.total(3).await.unwrap(), 30);
    let spawned = {
        let repo = repo.clone();
        tokio::spawn(async move { repo.total(3).await.unwrap() })
    };
    assert_eq!(spawned.await.unwrap(), 30);
    assert_eq!(concrete.loads.load(SeqCst), 1, "the second call was a hit");
    invalidate_tag!("order:{}", 3).await.unwrap();
    repo.total(3).await.unwrap();
    assert_eq!(concrete.loads.load(SeqCst), 2);
    // Through `dyn`, the entry macros name the concrete type's method.
    invalidate!(PgOrders::total(&concrete, 3)).await.unwrap();
    repo.total(3).await.unwrap();
    assert_eq!(concrete.loads.load(SeqCst), 3);
}

/// A trait impl generic over its backend: each instantiation keeps its own entries.
trait Backend: Send + Sync + 'static {
    const BASE: u64;
}

struct Primary;
struct Replica;

impl Backend for Primary {
    const BASE: u64 = 10;
}

impl Backend for Replica {
    const BASE: u64 = 20;
}

trait Scores {
    async fn score(&self, id: u64) -> u64;
}

struct ScoreRepo<B> {
    loads: Arc<AtomicUsize>,
    backend: std::marker::PhantomData<B>,
}

impl<B> ScoreRepo<B> {
    fn new(loads: &Arc<AtomicUsize>) -> Self {
        Self {
            loads: loads.clone(),
            backend: std::marker::PhantomData,
        }
    }
}

#[cached_impl]
impl<B: Backend> Scores for ScoreRepo<B> {
    #[cached(ttl = "1m", local)]
    async fn score(&self, id: u64) -> u64 {
        self.loads.fetch_add(1, SeqCst);
        B::BASE + id
    }
}

#[tokio::test]
async fn each_instantiation_of_a_generic_trait_impl_keeps_its_own_entries() {
    let loads = Arc::new(AtomicUsize::new(0));
    let primary = ScoreRepo::<Primary>::new(&loads);
    let replica = ScoreRepo::<Replica>::new(&loads);
    assert_eq!(primary.score(1).await, 11);
    assert_eq!(replica.score(1).await, 21, "not the primary's entry");
    assert_eq!(primary.score(1).await, 11);
    assert_eq!(loads.load(SeqCst), 2, "one load each");

    invalidate!(replica.score(1)).await.unwrap();
    assert_eq!(replica.score(1).await, 21);
    assert_eq!(loads.load(SeqCst), 3, "the replica's entry was invalidated");
    clear!(ScoreRepo::<Primary>::score).await.unwrap();
    assert_eq!(primary.score(1).await, 11);
    assert_eq!(loads.load(SeqCst), 4, "the primary's cache was cleared");
    assert_eq!(replica.score(1).await, 21);
    assert_eq!(loads.load(SeqCst), 4, "and the replica's was not");
}

/// A repository trait that names its key and error types, as services write them.
#[async_trait::async_trait]
trait AccountRepo: Send + Sync {
    type Id;
    type Error;
    async fn balance(&self, id: Self::Id) -> Result<i64, Self::Error>;
}

#[derive(Default)]
struct PgAccounts {
    loads: AtomicUsize,
}

#[cached_impl]
#[async_trait::async_trait]
impl AccountRepo for PgAccounts {
    type Id = u64;
    type Error = String;

    #[cached(ttl = "1m", tags = ["account:{id}"])]
    async fn balance(&self, id: Self::Id) -> Result<i64, Self::Error> {
        self.loads.fetch_add(1, SeqCst);
        Ok(id as i64 * 100)
    }
}

#[tokio::test]
async fn a_signature_naming_the_traits_associated_types_is_cached() {
    let accounts = PgAccounts::default();
    assert_eq!(accounts.balance(3).await, Ok(300));
    assert_eq!(accounts.balance(3).await, Ok(300));
    assert_eq!(accounts.loads.load(SeqCst), 1);
    assert_eq!(peek!(accounts.balance(3)).await, Some(300));
    invalidate!(accounts.balance(3)).await.unwrap();
    assert_eq!(peek!(accounts.balance(3)).await, None);
    accounts.balance(3).await.unwrap();
    clear!(PgAccounts::balance).await.unwrap();
    accounts.balance(3).await.unwrap();
    assert_eq!(accounts.loads.load(SeqCst), 3);
}

/// A trait whose default method is cached: each implementor gets its own cache, and
/// the trait stays usable as `dyn` (its hidden `clear!` sibling needs `Self: Sized`).
trait Pricing: Sync {
    fn base(&self) -> u64;
    fn loads(&self) -> &AtomicUsize;

    #[cached(ttl = "1m", local)]
    fn price(&self, id: u64) -> u64 {
        self.loads().fetch_add(1, SeqCst);
        self.base() + id
    }
}

/// An `async fn` default method (such a trait has no `dyn` use).
trait Rating: Pricing {
    #[cached(ttl = "1m", local, tags = ["rate:{id}"])]
    async fn rate(&self, id: u64) -> Option<u64> {
        self.loads().fetch_add(1, SeqCst);
        Some(self.base() * id)
    }
}

#[derive(Default)]
struct Retail(AtomicUsize);
#[derive(Default)]
struct Wholesale(AtomicUsize);

impl Pricing for Retail {
    fn base(&self) -> u64 {
        100
    }
    fn loads(&self) -> &AtomicUsize {
        &self.0
    }
}

impl Pricing for Wholesale {
    fn base(&self) -> u64 {
        200
    }
    fn loads(&self) -> &AtomicUsize {
        &self.0
    }
}

impl Rating for Retail {}

fn twice(pricing: &dyn Pricing, id: u64) -> u64 {
    pricing.price(id) + pricing.price(id)
}

#[tokio::test]
async fn a_default_method_of_a_trait_is_cached_per_implementor_and_through_dyn() {
    let (retail, wholesale) = (Retail::default(), Wholesale::default());
    assert_eq!((twice(&retail, 1), twice(&wholesale, 1)), (202, 402));
    assert_eq!((retail.0.load(SeqCst), wholesale.0.load(SeqCst)), (1, 1));

    let through_dyn: &dyn Pricing = &retail;
    invalidate!(through_dyn.price(1)).await.unwrap();
    assert_eq!(twice(&retail, 1), 202);
    assert_eq!(retail.0.load(SeqCst), 2, "invalidated through `dyn`");
    assert_eq!(
        wholesale.0.load(SeqCst),
        1,
        "the other implementor's entry stays"
    );

    assert_eq!(retail.rate(3).await, Some(300));
    assert_eq!(retail.rate(3).await, Some(300));
    assert_eq!(
        retail.0.load(SeqCst),
        3,
        "the async default method caches too"
    );
    clear!(Retail::rate).await.unwrap();
    assert_eq!(retail.rate(3).await, Some(300));
    assert_eq!(retail.0.load(SeqCst), 4, "`clear!` through the implementor");
}
