//! `#[cached(validate = check)]`: a loaded value that fails the check reaches its
//! callers but is not cached, and is counted as `invalid`.

use std::sync::atomic::{AtomicU64, Ordering};

use stratacache::cached;

#[derive(Clone, Debug, PartialEq)]
struct Profile {
    id: u64,
    email: String,
}

fn complete(profile: &Profile) -> bool {
    !profile.email.is_empty()
}

static LOADS: AtomicU64 = AtomicU64::new(0);

/// Profiles with an even id come back half-written (no email) from the database.
#[cached(local, validate = complete, name = "validate.profile")]
async fn profile(id: u64) -> Profile {
    LOADS.fetch_add(1, Ordering::SeqCst);
    let email = if id.is_multiple_of(2) {
        String::new()
    } else {
        format!("{id}@example.com")
    };
    Profile { id, email }
}

static RESULT_LOADS: AtomicU64 = AtomicU64::new(0);

/// Only `Ok` values are checked (an `Err` is never cached anyway).
#[cached(local, validate = complete, name = "validate.fallible")]
async fn fallible(id: u64) -> Result<Profile, String> {
    RESULT_LOADS.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err("down".to_owned()),
        _ => Ok(Profile {
            id,
            email: String::new(),
        }),
    }
}

fn invalid(cache: &str) -> u64 {
    stratacache::stats().cache(cache).map_or(0, |c| c.invalid)
}

#[tokio::test]
async fn an_invalid_value_is_returned_but_not_cached_and_is_counted() {
    let half = profile(2).await;
    assert_eq!(
        half,
        Profile {
            id: 2,
            email: String::new()
        },
        "returned as loaded"
    );
    profile(2).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 2, "not cached: loaded again");
    assert_eq!(invalid("validate.profile"), 2);

    profile(3).await;
    profile(3).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 3, "a valid value is cached");
    assert_eq!(invalid("validate.profile"), 2);

    assert!(fallible(0).await.is_err());
    assert!(fallible(5).await.is_ok());
    assert!(fallible(5).await.is_ok());
    assert_eq!(RESULT_LOADS.load(Ordering::SeqCst), 3);
    assert_eq!(
        invalid("validate.fallible"),
        2,
        "the Err is not a validation"
    );
}
