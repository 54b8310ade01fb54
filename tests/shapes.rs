//! The shapes users write every day: each return shape's call can be spawned (its
//! future is `Send`), and an `Arc` value is shared, not copied, on a hit.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use stratacache::cached;

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = "1m")]
async fn plain(id: u64) -> u64 {
    id
}

#[cached(ttl = "1m")]
async fn optional(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(ttl = "1m")]
async fn with_string_error(id: u64) -> Result<u64, String> {
    Ok(id)
}

#[cached(ttl = "1m")]
async fn with_io_error(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[cached(ttl = "1m")]
async fn with_anyhow_error(id: u64) -> anyhow::Result<u64> {
    Ok(id)
}

#[cached(ttl = "1m")]
async fn with_boxed_error(id: u64) -> Result<u64, Box<dyn Error + Send + Sync>> {
    Ok(id)
}

#[cached(ttl = "1m", stale_while_revalidate = "1m")]
async fn with_boxed_error_refreshed(id: u64) -> Result<u64, Box<dyn Error + Send + Sync>> {
    Ok(id)
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Report {
    lines: Vec<String>,
}

#[cached(ttl = "1m")]
async fn shared_report(id: u64) -> Arc<Report> {
    LOADS.fetch_add(1, SeqCst);
    Arc::new(Report {
        lines: vec![format!("report {id}")],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_return_shape_can_be_spawned() {
    assert_eq!(tokio::spawn(plain(1)).await.unwrap(), 1);
    assert_eq!(tokio::spawn(optional(2)).await.unwrap(), Some(2));
    assert_eq!(tokio::spawn(with_string_error(3)).await.unwrap(), Ok(3));
    assert_eq!(tokio::spawn(with_io_error(4)).await.unwrap().unwrap(), 4);
    assert_eq!(
        tokio::spawn(with_anyhow_error(5)).await.unwrap().unwrap(),
        5
    );
    assert_eq!(tokio::spawn(with_boxed_error(6)).await.unwrap().unwrap(), 6);
    let refreshed = tokio::spawn(with_boxed_error_refreshed(6));
    assert_eq!(refreshed.await.unwrap().unwrap(), 6);
    let report = tokio::spawn(shared_report(7)).await.unwrap();
    assert_eq!(report.lines, ["report 7"]);
}

#[tokio::test]
async fn an_arc_value_is_the_same_allocation_on_every_hit() {
    let first = shared_report(8).await;
    let second = shared_report(8).await;
    assert!(
        Arc::ptr_eq(&first, &second),
        "a hit must not copy the value"
    );
}

static OPTIONAL_LOADS: AtomicUsize = AtomicUsize::new(0);
static OPTIONAL_KEPT_LOADS: AtomicUsize = AtomicUsize::new(0);

/// sqlx's `fetch_optional` shape: ids above 100 do not exist.
#[cached(ttl = "1m")]
async fn find_row(id: u64) -> Result<Option<String>, String> {
    OPTIONAL_LOADS.fetch_add(1, SeqCst);
    Ok((id <= 100).then(|| format!("row {id}")))
}

#[cached(ttl = "1m", cache_none)]
async fn find_row_keeping_none(id: u64) -> Result<Option<String>, String> {
    OPTIONAL_KEPT_LOADS.fetch_add(1, SeqCst);
    Ok((id <= 100).then(|| format!("row {id}")))
}

#[tokio::test]
async fn a_result_of_option_caches_ok_some_and_reloads_ok_none_unless_cache_none() {
    assert_eq!(find_row(1).await, Ok(Some("row 1".into())));
    assert_eq!(find_row(1).await, Ok(Some("row 1".into())));
    assert_eq!(OPTIONAL_LOADS.load(SeqCst), 1, "Ok(Some) is cached");
    assert_eq!(find_row(500).await, Ok(None));
    assert_eq!(find_row(500).await, Ok(None));
    assert_eq!(
        OPTIONAL_LOADS.load(SeqCst),
        3,
        "Ok(None) is not cached, as None is not"
    );

    assert_eq!(find_row_keeping_none(500).await, Ok(None));
    assert_eq!(find_row_keeping_none(500).await, Ok(None));
    assert_eq!(
        OPTIONAL_KEPT_LOADS.load(SeqCst),
        1,
        "cache_none keeps Ok(None)"
    );
    assert_eq!(
        tokio::spawn(find_row(2)).await.unwrap(),
        Ok(Some("row 2".into()))
    );
}

static MACRO_LOADS: AtomicUsize = AtomicUsize::new(0);

/// A cached function written by the user's own `macro_rules!`, its types and tag
/// passed in as fragments: the generated body's names (its alias of the runtime
/// among them) resolve from tokens of both origins.
macro_rules! cached_lookup {
    ($name:ident, $key:ty, $value:ty, $ttl:literal, $tag:literal) => {
        #[cached(ttl = $ttl, tags = [$tag], stale_while_revalidate)]
        async fn $name(id: $key) -> Result<$value, String> {
            MACRO_LOADS.fetch_add(1, SeqCst);
            Ok(<$value>::from(id))
        }
    };
}

cached_lookup!(widened, u32, u64, "1m", "widened:{id}");

#[tokio::test]
async fn a_cached_function_written_by_a_macro_rules_caches_and_invalidates() {
    assert_eq!(widened(7).await, Ok(7));
    assert_eq!(widened(7).await, Ok(7));
    assert_eq!(MACRO_LOADS.load(SeqCst), 1, "the second call is a hit");
    stratacache::invalidate!(widened(7)).await.unwrap();
    assert_eq!(widened(7).await, Ok(7));
    assert_eq!(
        MACRO_LOADS.load(SeqCst),
        2,
        "the invalidation reached the entry"
    );

    // The entry macros, called by the user's macros with fragments.
    macro_rules! forget {
        ($call:expr) => {
            stratacache::invalidate!($call).await.unwrap()
        };
    }
    macro_rules! forget_all {
        ($function:path) => {
            stratacache::clear!($function).await.unwrap()
        };
    }
    forget!(widened(7));
    assert_eq!(widened(7).await, Ok(7));
    assert_eq!(MACRO_LOADS.load(SeqCst), 3, "`invalidate!` of a fragment");
    forget_all!(widened);
    assert_eq!(widened(7).await, Ok(7));
    assert_eq!(MACRO_LOADS.load(SeqCst), 4, "`clear!` of a fragment");
}

static FRAGMENT_LOADS: AtomicUsize = AtomicUsize::new(0);

/// The whole return type and a borrowed argument passed as `$t:ty` fragments, which
/// reach the attribute wrapped in invisible groups.
macro_rules! cached_by_name {
    ($name:ident, $arg:ty, $output:ty, $found:expr, $missing:expr) => {
        #[cached(ttl = "1m", tags = ["name:{name}"])]
        async fn $name(name: $arg) -> $output {
            FRAGMENT_LOADS.fetch_add(1, SeqCst);
            if name.is_empty() {
                $missing
            } else {
                $found(name.len())
            }
        }
    };
}

cached_by_name!(length_or_error, &str, Result<usize, String>, Ok, Err("empty".into()));
cached_by_name!(length_if_any, &str, Option<usize>, Some, None);

#[tokio::test]
async fn a_result_or_an_option_passed_as_a_macro_fragment_caches_only_ok_and_some() {
    let loads = || FRAGMENT_LOADS.load(SeqCst);
    assert_eq!(length_or_error("").await, Err("empty".into()));
    assert_eq!(length_or_error("").await, Err("empty".into()));
    assert_eq!(loads(), 2, "an `Err` is not cached");
    assert_eq!(length_if_any("").await, None);
    assert_eq!(length_if_any("").await, None);
    assert_eq!(loads(), 4, "a `None` is not cached");
    assert_eq!(length_or_error("abc").await, Ok(3));
    assert_eq!(length_if_any("abc").await, Some(3));
    assert_eq!((length_or_error("abc").await, loads()), (Ok(3), 6));
    stratacache::invalidate_tag!("name:{}", "abc")
        .await
        .unwrap();
    assert_eq!(length_if_any("abc").await, Some(3));
    assert_eq!(
        loads(),
        7,
        "the tag of a borrowed argument reached the entry"
    );
}

/// A repository generic over its backend, the way a service swaps a test double for
/// the database.
trait Backend: Send + Sync + 'static {
    const BASE: u64;
    fn loads() -> &'static AtomicUsize;
}

struct Primary;
struct Replica;
static PRIMARY_LOADS: AtomicUsize = AtomicUsize::new(0);
static REPLICA_LOADS: AtomicUsize = AtomicUsize::new(0);

impl Backend for Primary {
    const BASE: u64 = 100;
    fn loads() -> &'static AtomicUsize {
        &PRIMARY_LOADS
    }
}

impl Backend for Replica {
    const BASE: u64 = 200;
    fn loads() -> &'static AtomicUsize {
        &REPLICA_LOADS
    }
}

struct GenericRepo<B>(std::marker::PhantomData<B>);

impl<B: Backend> GenericRepo<B> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }

    #[cached(ttl = "1m")]
    async fn row(&self, id: u64) -> u64 {
        B::loads().fetch_add(1, SeqCst);
        B::BASE + id
    }

    /// The value's type follows the type argument.
    #[cached(ttl = "1m")]
    async fn label(&self, id: u64) -> Option<B::Label>
    where
        B: Labelled,
    {
        Some(B::label(id))
    }
}

trait Labelled {
    type Label: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static;
    fn label(id: u64) -> Self::Label;
}

impl Labelled for Primary {
    type Label = u64;
    fn label(id: u64) -> u64 {
        id
    }
}

impl Labelled for Replica {
    type Label = String;
    fn label(id: u64) -> String {
        format!("replica {id}")
    }
}

#[tokio::test]
async fn each_instantiation_of_a_generic_impl_has_its_own_cache() {
    let (primary, replica) = (GenericRepo::<Primary>::new(), GenericRepo::<Replica>::new());
    assert_eq!(primary.row(1).await, 101);
    assert_eq!(replica.row(1).await, 201, "not the primary's value");
    assert_eq!(primary.row(1).await, 101);
    assert_eq!(replica.row(1).await, 201);
    assert_eq!(
        PRIMARY_LOADS.load(SeqCst),
        1,
        "the primary's second call is a hit"
    );
    assert_eq!(
        REPLICA_LOADS.load(SeqCst),
        1,
        "the replica's second call is a hit"
    );

    stratacache::invalidate!(replica.row(1)).await.unwrap();
    assert_eq!(replica.row(1).await, 201);
    assert_eq!(
        REPLICA_LOADS.load(SeqCst),
        2,
        "the invalidation reached the entry"
    );
    assert_eq!(primary.row(1).await, 101);
    assert_eq!(
        PRIMARY_LOADS.load(SeqCst),
        1,
        "the primary's entry is another"
    );

    assert_eq!(primary.label(3).await, Some(3));
    assert_eq!(replica.label(3).await, Some("replica 3".to_owned()));
}

static KIND_LOADS: AtomicUsize = AtomicUsize::new(0);

/// An argument named by a keyword, as in generated clients (`r#type`, `r#ref`).
#[cached(ttl = "1m", tags = ["kind:{type}", "ref:{r#ref}"], key = "{r#type}/{ref:>4}")]
async fn by_kind(r#type: String, r#ref: u32) -> String {
    KIND_LOADS.fetch_add(1, SeqCst);
    format!("{type} {ref}", type = r#type, ref = r#ref)
}

#[cached(ttl = "1m")]
async fn r#match(pattern: u64) -> u64 {
    KIND_LOADS.fetch_add(1, SeqCst);
    pattern
}

#[tokio::test]
async fn arguments_and_functions_with_raw_names_are_cached_and_invalidated() {
    use stratacache::{contains, invalidate, invalidate_tag};
    assert_eq!(by_kind("a".into(), 7).await, "a 7");
    assert_eq!(by_kind("a".into(), 7).await, "a 7");
    assert_eq!(KIND_LOADS.load(SeqCst), 1);
    invalidate_tag!("kind:{}", "a").await.unwrap();
    assert!(
        !contains!(by_kind("a".into(), 7)).await,
        "`{{type}}` names r#type"
    );
    by_kind("a".into(), 7).await;
    invalidate_tag!("ref:{}", 7).await.unwrap();
    assert!(
        !contains!(by_kind("a".into(), 7)).await,
        "`{{r#ref}}` names r#ref"
    );
    assert_eq!(r#match(3).await, 3);
    invalidate!(r#match(3)).await.unwrap();
    assert!(!contains!(r#match(3)).await);
}

trait Pricing: Send + Sync {
    fn price(&self, units: u64) -> u64;
}

struct Flat;

impl Pricing for Flat {
    fn price(&self, units: u64) -> u64 {
        units * 10
    }
}

static STRATEGY_LOADS: AtomicUsize = AtomicUsize::new(0);

/// The body's value is coerced to the return type, at its tail and at each `return`,
/// as an `async fn`'s is.
#[cached(ttl = "1m", local)]
async fn strategy(region: u8) -> Arc<dyn Pricing> {
    STRATEGY_LOADS.fetch_add(1, SeqCst);
    let _ = region;
    Arc::new(Flat)
}

#[cached(ttl = "1m")]
fn label(id: u64) -> Arc<dyn std::fmt::Display + Send + Sync> {
    Arc::new(id)
}

#[cached(ttl = "1m", stale_while_revalidate)]
async fn checked_units(units: u64) -> Result<u64, Box<dyn Error + Send + Sync>> {
    if units == 0 {
        return Err("no units".into());
    }
    if units == 1 {
        return Err(Box::new(std::io::Error::other("one unit")));
    }
    Err(Box::new(std::io::Error::other(format!("{units} units"))))
}

#[cached(ttl = "1m", batch)]
async fn totals(
    ids: &[u64],
) -> Result<std::collections::HashMap<u64, u64>, Box<dyn Error + Send + Sync>> {
    if ids.contains(&0) {
        Err(Box::new(std::io::Error::other("id 0")))
    } else {
        Ok(ids.iter().map(|id| (*id, id * 2)).collect())
    }
}

// Written on one line on purpose: a one-expression body must not draw
// `unused_braces` from the generated loader (clippy -D warnings runs on this file).
#[rustfmt::skip]
#[cached(ttl = "1m", stale_while_revalidate)]
async fn next_id(id: u64) -> u64 { id + 1 }

/// A body still to be written compiles without a warning.
#[allow(dead_code)]
#[cached(ttl = "1m")]
async fn unwritten(id: u64) -> u64 {
    let _ = id;
    todo!("load {id}")
}

#[tokio::test]
async fn a_value_the_body_coerces_to_the_return_type_is_cached() {
    assert_eq!(strategy(1).await.price(2), 20);
    let (first, second) = (strategy(1).await, strategy(1).await);
    assert!(
        Arc::ptr_eq(&first, &second),
        "a hit returns the same allocation"
    );
    assert_eq!(STRATEGY_LOADS.load(SeqCst), 1);
    assert_eq!(label(4).to_string(), "4");
    assert_eq!(checked_units(0).await.unwrap_err().to_string(), "no units");
    assert_eq!(checked_units(1).await.unwrap_err().to_string(), "one unit");
    assert_eq!(checked_units(3).await.unwrap_err().to_string(), "3 units");
    assert_eq!(totals(&[0, 1]).await.unwrap_err().to_string(), "id 0");
    assert_eq!(totals(&[1, 2]).await.unwrap()[&2], 4);
    assert_eq!(next_id(1).await, 2);
}

/// A service shared behind an `Arc`, its method taking `self: &Arc<Self>`: the
/// background refresh clones the `Arc`, not the service.
struct Catalog {
    version: std::sync::atomic::AtomicU64,
}

impl Catalog {
    #[cached(ttl = "50ms", stale_while_revalidate = "1h", local)]
    async fn price(self: &Arc<Self>, id: u64) -> u64 {
        let service: Arc<Self> = Arc::clone(self);
        service.version.load(SeqCst) * 100 + id
    }
}

#[tokio::test]
async fn a_method_taking_self_as_a_reference_to_an_arc_refreshes_in_the_background() {
    let catalog = Arc::new(Catalog {
        version: std::sync::atomic::AtomicU64::new(1),
    });
    assert_eq!(catalog.price(1).await, 101);
    catalog.version.store(2, SeqCst);
    let started = std::time::Instant::now();
    loop {
        let price = catalog.price(1).await;
        if price == 201 {
            break;
        }
        assert_eq!(price, 101, "the stale value until the refresh lands");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "never refreshed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
