//! A crate that denies strict lints, rustc's and clippy's (pedantic, nursery and the
//! `shadow_*` restriction lints), still compiles with every shape of cached function:
//! what the attribute generates must not trip the user's lints. rustc's run with
//! `cargo test`, clippy's with the workspace's `cargo clippy --all-targets`.
#![deny(
    warnings,
    unused_results,
    unused_qualifications,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    elided_lifetimes_in_paths,
    unused_lifetimes,
    redundant_lifetimes,
    let_underscore_drop,
    unit_bindings,
    clippy::pedantic,
    clippy::nursery,
    clippy::shadow_unrelated,
    clippy::shadow_reuse,
    clippy::shadow_same,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::as_conversions,
    clippy::default_numeric_fallback,
    clippy::clone_on_ref_ptr,
    clippy::let_underscore_must_use,
    clippy::used_underscore_binding,
    clippy::used_underscore_items,
    clippy::pattern_type_mismatch,
    clippy::str_to_string
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use stratacache::cached;

static LOADS: AtomicU64 = AtomicU64::new(0);

fn loaded() -> u64 {
    LOADS.fetch_add(1, SeqCst)
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Row {
    id: u64,
    name: String,
}

#[cached(ttl = "1m", tags = ["row:{id}"])]
async fn row(id: u64) -> Result<Row, String> {
    let _ = loaded();
    Ok(Row {
        id,
        name: String::from("row"),
    })
}

#[cached(ttl = "1m", tags = ["name:{name}"], stale_while_revalidate)]
async fn by_name(name: &str, mut limit: u8) -> Option<Row> {
    let _ = loaded();
    limit = limit.saturating_add(1);
    Some(Row {
        id: u64::from(limit),
        name: String::from(name),
    })
}

#[cached(ttl = "1m")]
async fn by_owned_name(name: String) -> usize {
    let _ = loaded();
    name.len()
}

#[cached(ttl = "1m", tags = ["length:{name}"])]
fn length(name: &str) -> usize {
    let _ = loaded();
    name.len()
}

#[derive(Clone, Debug)]
struct Repo {
    base: u64,
}

#[cached(ttl = "1m", batch, skip(repo, step), tags = ["row:{ids}"])]
async fn rows(repo: &Repo, mut step: u64, mut ids: Vec<u64>) -> HashMap<u64, u64> {
    let _ = loaded();
    step = step.saturating_mul(2);
    ids.sort_unstable();
    ids.iter().map(|id| (*id, repo.base + id * step)).collect()
}

impl Repo {
    #[cached(ttl = "1m", stale_while_revalidate, tags = ["row:{id}"])]
    async fn offset(&self, id: u64, label: &str) -> Option<String> {
        let _ = loaded();
        Some(format!("{label} {}", self.base + id))
    }
}

#[tokio::test]
async fn every_shape_compiles_under_strict_lints_and_caches() {
    let repo = Repo { base: 100 };
    for _ in 0..2_u8 {
        assert_eq!(row(1).await.map(|found| found.id), Ok(1));
        assert_eq!(by_name("a", 1).await.map(|found| found.id), Some(2));
        assert_eq!(by_owned_name(String::from("abc")).await, 3);
        assert_eq!(length("abcd"), 4);
        assert_eq!(rows(&repo, 1, vec![2, 1]).await.get(&2), Some(&104));
        assert_eq!(repo.offset(1, "at").await.as_deref(), Some("at 101"));
    }
    assert_eq!(LOADS.load(SeqCst), 6, "the second round was all hits");
}
