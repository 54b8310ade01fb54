//! Step 3, the loader's own part: a cached function's body is polled here, inside the
//! load's span, with its `this_load` overrides and its flights listed (`reentry`), its
//! panic caught as an outcome.
//!
//! A single-key load's steps are generic over key, value and shape only: they ask for
//! the loader through a [`Hatch`], and [`drive`], the one piece generic over the
//! function's loader, answers in the same poll. So each cached function adds a small
//! driver to the build, not a copy of the pipeline, and an edit of its body
//! recompiles that driver alone.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::lead::Outcome;
use super::Tags;
use crate::this_load::{self, Overrides};

/// Where a load's steps ask for their loader, and get its tags and its outcome back.
/// The steps and the driver take turns on one task, so the lock is never contended.
pub(super) struct Hatch<Out> {
    state: parking_lot::Mutex<State<Out>>,
}

enum State<Out> {
    Idle,
    /// The steps lead a load: make the loader, inside the load's span.
    Make(tracing::Span),
    Made(Tags),
    /// The steps' turn to run the loader (of this flight): poll it until it ends.
    Run(usize),
    Ran(Outcome<Out>, Overrides),
}

/// What the steps ask of the driver.
enum Request {
    Make(tracing::Span),
    Run(usize),
}

impl<Out> Default for Hatch<Out> {
    fn default() -> Self {
        Self {
            state: parking_lot::Mutex::new(State::Idle),
        }
    }
}

impl<Out> Hatch<Out> {
    /// The loader's tags; the driver makes the loader inside `span` and keeps it.
    pub(super) fn make<'a>(&'a self, span: &'a tracing::Span) -> impl Future<Output = Tags> + 'a {
        self.ask(
            || State::Make(span.clone()),
            |state| match state {
                State::Made(tags) => Ok(tags),
                asked => Err(asked),
            },
        )
    }

    /// The loader's outcome and overrides, once the driver has polled it to its end;
    /// `flight` is the load's, listed while the loader is polled.
    pub(super) fn run(
        &self,
        flight: usize,
    ) -> impl Future<Output = (Outcome<Out>, Overrides)> + '_ {
        self.ask(
            move || State::Run(flight),
            |state| match state {
                State::Ran(outcome, overrides) => Ok((outcome, overrides)),
                asked => Err(asked),
            },
        )
    }

    /// Posts `request`, then waits for the answer `take` accepts. Pending registers no
    /// waker: the driver answers a request before its own poll returns, or polls the
    /// loader, which registers the waker.
    fn ask<'a, R>(
        &'a self,
        request: impl Fn() -> State<Out> + 'a,
        take: impl Fn(State<Out>) -> Result<R, State<Out>> + 'a,
    ) -> impl Future<Output = R> + 'a {
        std::future::poll_fn(move |_| {
            let mut state = self.state.lock();
            if let State::Idle = *state {
                *state = request();
                return Poll::Pending;
            }
            match take(std::mem::replace(&mut *state, State::Idle)) {
                Ok(answer) => Poll::Ready(answer),
                Err(asked) => {
                    *state = asked;
                    Poll::Pending
                }
            }
        })
    }

    /// The steps' request, if they wait for one: the load's span moves to the driver.
    fn request(&self) -> Option<Request> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Idle) {
            State::Make(span) => Some(Request::Make(span)),
            // A run stays asked for until the driver answers it.
            State::Run(flight) => {
                *state = State::Run(flight);
                Some(Request::Run(flight))
            }
            unasked => {
                *state = unasked;
                None
            }
        }
    }

    fn answer(&self, answer: State<Out>) {
        *self.state.lock() = answer;
    }
}

/// Polls `steps` to their end, making the loader and polling it when they ask through
/// `hatch`. `make` is called at most once: a call leads at most one load.
pub(super) fn drive<'a, T, Out, M, F>(
    mut steps: Pin<&'a mut impl Future<Output = T>>,
    hatch: &'a Hatch<Out>,
    make: M,
) -> impl Future<Output = T> + 'a
where
    M: FnOnce() -> (Tags, F) + 'a,
    F: Future<Output = Out> + 'a,
    Out: 'a,
{
    let mut make = Some(make);
    // Boxed: pinned inside the load's future instead, it saves an allocation per miss
    // but makes the future every call builds larger.
    let mut loader: Option<Pin<Box<F>>> = None;
    let mut span = tracing::Span::none();
    let mut overrides = None;
    // This frame stays on the stack while the loader runs, through every level of a
    // memoized recursion: the loader is made, and the steps answered, out of line.
    std::future::poll_fn(move |cx| loop {
        if let Poll::Ready(out) = steps.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        // The steps wait for an answer, or for something else (Redis, another load).
        match hatch.request() {
            None => return Poll::Pending,
            Some(Request::Make(load_span)) => {
                span = load_span;
                let make = make.take().expect("a call makes one loader");
                loader = Some(make_in(hatch, make, &span));
            }
            Some(Request::Run(flight)) => {
                let loader = loader.as_mut().expect("the loader is made before it runs");
                match poll_loader(loader.as_mut(), cx, &[flight], &span, &mut overrides) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(outcome) => answer_ran(hatch, outcome, &mut overrides),
                }
            }
        }
    })
}

/// Makes the loader inside the load's span, answers the steps with its tags, and
/// boxes it (out of line: see [`drive`]).
#[inline(never)]
fn make_in<Out, M, F>(hatch: &Hatch<Out>, make: M, span: &tracing::Span) -> Pin<Box<F>>
where
    M: FnOnce() -> (Tags, F),
{
    let (tags, made) = span.in_scope(make);
    hatch.answer(State::Made(tags));
    Box::pin(made)
}

/// Answers the steps with the loader's outcome and this load's overrides (out of
/// line: see [`drive`]).
#[inline(never)]
fn answer_ran<Out>(hatch: &Hatch<Out>, outcome: Outcome<Out>, overrides: &mut Option<Overrides>) {
    hatch.answer(State::Ran(outcome, overrides.take().unwrap_or_default()));
}

/// A batch's loader, run as a single key's is (its batch loader is generic already).
pub(super) async fn run_in_span<F: Future>(
    loader: F,
    flights: &[usize],
    span: &tracing::Span,
) -> (Outcome<F::Output>, Overrides) {
    let mut loader = Box::pin(loader);
    let mut overrides = None;
    let outcome =
        std::future::poll_fn(|cx| poll_loader(loader.as_mut(), cx, flights, span, &mut overrides))
            .await;
    (outcome, overrides.unwrap_or_default())
}

fn poll_loader<Out>(
    loader: Pin<&mut (dyn Future<Output = Out> + '_)>,
    cx: &mut Context<'_>,
    flights: &[usize],
    span: &tracing::Span,
    overrides: &mut Option<Overrides>,
) -> Poll<Outcome<Out>> {
    let _entered = span.enter();
    let polled = super::reentry::polling(flights, || {
        this_load::poll_in(overrides, || {
            panic::catch_unwind(AssertUnwindSafe(|| loader.poll(cx)))
        })
    });
    match polled {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
        Err(payload) => Poll::Ready(Err(payload)),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::pin;

    use super::*;

    /// Polls `future` to its end, at most ten times: a driver that stops answering
    /// fails the test rather than hanging it.
    fn run_bounded<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        (0..10)
            .find_map(|_| match future.as_mut().poll(&mut cx) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            })
            .expect("the driver finished within ten polls")
    }

    /// Pending once, then ready: a loader that waits.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    #[test]
    fn the_driver_makes_the_loader_once_when_asked_and_polls_it_to_its_end() {
        let (hatch, span, made) = (Hatch::default(), tracing::Span::none(), Cell::new(0));
        let steps = pin!(async {
            let tags = hatch.make(&span).await;
            let (outcome, _) = hatch.run(7).await;
            (tags.len(), outcome.expect("the loader returned"))
        });
        let make = || {
            made.set(made.get() + 1);
            (Tags::new(), async {
                yield_once().await;
                42
            })
        };
        let out = run_bounded(drive(steps, &hatch, make));
        assert_eq!(out, (0, 42));
        assert_eq!(made.get(), 1);
    }

    #[test]
    fn steps_that_never_ask_never_make_the_loader() {
        let hatch = Hatch::<u32>::default();
        let steps = pin!(async {
            yield_once().await;
            5
        });
        let make = || -> (Tags, std::future::Ready<u32>) { panic!("made a loader") };
        assert_eq!(run_bounded(drive(steps, &hatch, make)), 5);
    }

    #[test]
    fn a_panicking_loader_is_handed_to_the_steps_as_its_outcome() {
        let (hatch, span) = (Hatch::default(), tracing::Span::none());
        let steps = pin!(async {
            hatch.make(&span).await;
            let (outcome, _) = hatch.run(7).await;
            outcome.map_err(|payload| super::super::lead::panic_message(&*payload).to_owned())
        });
        let make = || (Tags::new(), async { panic!("the loader failed") });
        let out: Result<u32, String> = run_bounded(drive(steps, &hatch, make));
        assert_eq!(out, Err("the loader failed".to_owned()));
    }
}
