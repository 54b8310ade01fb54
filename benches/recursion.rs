//! Stack per level of a memoized recursion (`fib(n)` calling `fib(n - 1)` and
//! `fib(n - 2)`), the shape the `cached` crate's users memoize: stratacache's
//! `#[cached]` sync `fn` and `async fn` beside the `cached` crate's and a plain
//! recursion. Every level below the first is a miss whose loader runs inside the
//! caller's miss, so what a miss keeps on the stack while its loader runs decides how
//! deep a recursion fits in a thread (a tokio worker has 2 MiB).
//!
//! `cargo bench --bench recursion` (seconds). The figure is the distance from the top
//! of the thread's stack to the deepest local, over the depth: exact for a build, so
//! one run is enough.

use std::cell::Cell;
use std::hint::black_box;

const DEPTH: u64 = 2_000;

thread_local!(static DEEPEST: Cell<usize> = const { Cell::new(usize::MAX) });

/// Notes how deep the stack is here.
#[inline(never)]
fn note_depth() {
    let here = 0u8;
    let at = black_box(&here) as *const u8 as usize;
    DEEPEST.with(|deepest| deepest.set(deepest.get().min(at)));
}

#[stratacache::cached(ttl = "1h", local)]
fn strata_fib(n: u64) -> u64 {
    note_depth();
    if n < 2 {
        n
    } else {
        strata_fib(n - 1).wrapping_add(strata_fib(n - 2))
    }
}

#[stratacache::cached(ttl = "1h", local)]
async fn strata_async_fib(n: u64) -> u64 {
    note_depth();
    if n < 2 {
        n
    } else {
        let first = Box::pin(strata_async_fib(n - 1)).await;
        first.wrapping_add(Box::pin(strata_async_fib(n - 2)).await)
    }
}

#[cached::macros::cached]
fn cached_crate_fib(n: u64) -> u64 {
    note_depth();
    if n < 2 {
        n
    } else {
        cached_crate_fib(n - 1).wrapping_add(cached_crate_fib(n - 2))
    }
}

#[cached::macros::cached]
async fn cached_crate_async_fib(n: u64) -> u64 {
    note_depth();
    if n < 2 {
        n
    } else {
        let first = Box::pin(cached_crate_async_fib(n - 1)).await;
        first.wrapping_add(Box::pin(cached_crate_async_fib(n - 2)).await)
    }
}

/// The same recursion, unmemoized, one branch deep (it would never end otherwise).
fn plain_fib(n: u64) -> u64 {
    note_depth();
    if n < 2 {
        n
    } else {
        plain_fib(n - 1).wrapping_add(black_box(1))
    }
}

/// Bytes of stack per level of `run`, on a fresh thread with room for all of them.
fn per_level(run: fn(u64)) -> usize {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let top = 0u8;
            let top = black_box(&top) as *const u8 as usize;
            run(DEPTH);
            (top - DEEPEST.with(Cell::get)) / DEPTH as usize
        })
        .expect("a thread")
        .join()
        .expect("the recursion")
}

fn on_tokio(run: fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64>>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    black_box(runtime.block_on(run(DEPTH)));
}

/// A subject's name, and its recursion run to a depth.
type Subject = (&'static str, fn(u64));

fn main() {
    let subjects: [Subject; 5] = [
        ("stratacache, sync fn", |n| {
            black_box(strata_fib(n));
        }),
        ("stratacache, async fn", |_| {
            on_tokio(|n| Box::pin(strata_async_fib(n)))
        }),
        ("cached crate, sync fn", |n| {
            black_box(cached_crate_fib(n));
        }),
        ("cached crate, async fn", |_| {
            on_tokio(|n| Box::pin(cached_crate_async_fib(n)))
        }),
        ("plain fn", |n| {
            black_box(plain_fib(n));
        }),
    ];
    println!("stack per level of a memoized recursion {DEPTH} deep:");
    for (name, run) in subjects {
        let bytes = per_level(run);
        let fits = (2 << 20) / bytes.max(1);
        println!("  {name:<24} {bytes:>6} B  ({fits} levels in a 2 MiB stack)");
    }
}
