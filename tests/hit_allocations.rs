//! A hit allocates nothing but the clone of its value: borrowed arguments (`&str`,
//! `&[T]`) are looked up as they are, not copied into an owned key, nor is a key made
//! of one owned argument (`String`), and a function
//! with background refreshes makes its loader's copies only when a load starts.
//! And a call's future stays small: its arguments and one pointer.
//! Counted by a global allocator, on this thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use stratacache::cached;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Polls `call` once: a hit is ready at once.
fn hit<T>(call: impl Future<Output = T>) -> T {
    let mut call = std::pin::pin!(call);
    match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("not a hit"),
    }
}

/// How many allocations `call` makes on this thread.
fn allocations<T>(call: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = call();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[cached(ttl = "1h", tags = ["people", "person:{name}"], local)]
async fn by_name(name: &str) -> String {
    format!("{name:>64}")
}

#[cached(ttl = "1h", local)]
async fn total(ids: &[u64]) -> u64 {
    ids.iter().sum()
}

#[cached(ttl = "1h", tags = ["person:{name}"], local)]
async fn by_owned_name(name: String) -> String {
    format!("{name:>64}")
}

#[cached(ttl = "1h", stale_while_revalidate = "1h", local)]
async fn revalidated_owned(name: String) -> String {
    format!("{name:>64}")
}

#[cached(ttl = "1h", local)]
fn by_owned_name_sync(name: String) -> String {
    format!("{name:>64}")
}

#[cached(ttl = "1h", local)]
async fn by_id(id: u64) -> String {
    format!("{id:064}")
}

#[cached(ttl = "1h", stale_while_revalidate = "1h", local)]
async fn revalidated(name: &str) -> String {
    format!("{name:>64}")
}

#[tokio::test(flavor = "current_thread")]
async fn a_hit_allocates_only_the_clone_of_its_value() {
    by_name("ada").await;
    total(&[1, 2, 3]).await;
    by_id(7).await;
    revalidated("ada").await;
    let (value, count) = allocations(|| hit(by_name("ada")));
    assert_eq!(value.trim(), "ada");
    assert_eq!(count, 1, "a `&str` argument: the value's clone only");
    let (sum, count) = allocations(|| hit(total(&[1, 2, 3])));
    assert_eq!(
        (sum, count),
        (6, 0),
        "a `&[u64]` argument, a u64 value: nothing"
    );
    let (_, count) = allocations(|| hit(by_id(7)));
    assert_eq!(count, 1, "a u64 argument: the value's clone only");
    let (_, count) = allocations(|| hit(revalidated("ada")));
    assert_eq!(
        count, 1,
        "with background refreshes: no copy of the arguments for a loader"
    );
    for name in ["ada", "lin"] {
        by_owned_name(name.to_owned()).await;
        revalidated_owned(name.to_owned()).await;
        by_owned_name_sync(name.to_owned());
    }
    let names = || ["ada", "lin"].map(str::to_owned);
    let ([ada, lin], [ada2, lin2]) = (names(), names());
    let (value, count) = allocations(|| hit(by_owned_name(ada)));
    assert_eq!(
        (value.trim(), count),
        ("ada", 1),
        "a `String` argument: the value's clone only"
    );
    let (_, count) = allocations(|| hit(revalidated_owned(lin)));
    assert_eq!(count, 1, "a `String` argument, background refreshes");
    let (value, count) = allocations(|| by_owned_name_sync(ada2));
    assert_eq!(
        (value.trim(), count),
        ("ada", 1),
        "a `String` argument, a sync function"
    );
    drop(lin2);
    let (_, count) = allocations(|| hit(by_name("grace")).len());
    assert!(count > 1, "a miss does allocate (the counter counts)");
}

/// A call's future holds its arguments and, across its one await, the pointer to a
/// miss's boxed load: not the answer, whose hit was returned before the await. It is
/// moved whole when it is pinned, so this is what every call copies.
#[test]
fn a_call_s_future_holds_its_arguments_and_the_load_s_pointer() {
    let word = std::mem::size_of::<usize>();
    let sizes = [
        ("u64 argument", std::mem::size_of_val(&by_id(7)), 4 * word),
        (
            "&str argument",
            std::mem::size_of_val(&by_name("ada")),
            4 * word,
        ),
        (
            "&str argument, background refreshes",
            std::mem::size_of_val(&revalidated("ada")),
            5 * word,
        ),
    ];
    for (call, size, most) in sizes {
        assert!(size <= most, "{call}: {size} bytes, more than {most}");
    }
}
