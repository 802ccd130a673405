//! [`Limited`]: the future that a call of a `#[concurrency_limit]` function returns. It waits
//! for the call's permit, then runs the body, and in between can be handed over: its
//! [`admitted`](Limited::admitted) waits for the permit in the caller's task and returns the
//! future that runs the body, so that a producer waits its turn before it spawns.
//!
//! The future goes through three stages. *Waiting*: the admission, `Call::admit`, which
//! holds the call's guard and the body's closure (the arguments) while it waits for the
//! permit, and then makes the body's future. *Admitted*: what the admission gave, a
//! [`Started`]: the admission's outcome, which holds the permit (or the refusal that
//! `max_wait` or `queue` gave), and the body's future, which runs while the permit is held.
//! *Done*. Nothing is moved out of a pinned stage: each stage is replaced whole.
//!
//! The expansion names the admission as an `impl Future` of its signature, and the outcome
//! and the body's future as `impl` types inside its output: every type that decides whether
//! the future is `Send` is then one the compiler can see through, as it does for an
//! `async fn`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{Admitted, Handle, Key, Refused};
use crate::error::LimitError;

/// What the admission of a call gives: a permit, or, under `max_wait` or `queue`, perhaps a
/// refusal. Not a public API.
#[doc(hidden)]
pub trait Outcome {
    /// The refusal, if the call was refused.
    fn refusal(&self) -> Option<LimitError>;
}

impl<H: Handle, K: Key> Outcome for Admitted<H, K> {
    #[inline]
    fn refusal(&self) -> Option<LimitError> {
        None
    }
}

impl<H: Handle, K: Key> Outcome for Result<Admitted<H, K>, Refused<H, K>> {
    #[inline]
    fn refusal(&self) -> Option<LimitError> {
        self.as_ref().err().map(Refused::error)
    }
}

/// How a refusal becomes the function's output. Not a public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`max_wait` and `queue` need a function that returns `Result<T, E>` with \
               `E: From<LimitError>`, not `{Output}`",
    label = "a call refused a permit returns `Err(E::from(LimitError))` here"
)]
pub trait Refuse<Output> {
    /// The output of a call refused with `error`.
    fn refuse(error: LimitError) -> Output;
}

/// For a function without `max_wait` or `queue`, whose calls are never refused. Not a public
/// API.
#[doc(hidden)]
#[derive(Debug)]
pub enum NeverRefused {}

impl<Output> Refuse<Output> for NeverRefused {
    fn refuse(error: LimitError) -> Output {
        unreachable!("limit-runtime: a call without `max_wait` or `queue` was refused: {error}")
    }
}

/// For a function with `max_wait` or `queue`: a refusal is `Err(E::from(error))`. Not a
/// public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum ErrFrom {}

impl<T, E: From<LimitError>> Refuse<Result<T, E>> for ErrFrom {
    fn refuse(error: LimitError) -> Result<T, E> {
        Err(E::from(error))
    }
}

pin_project! {
    /// A call that its admission has just decided: its outcome (the permit, or a refusal) and
    /// its body's future, not polled yet.
    struct Started<O, B> {
        // Before `outcome`: a body dropped before completion (a cancelled call) is dropped
        // while the call still holds its permit, as an `async fn`'s locals are.
        #[pin]
        body: B,
        // Taken when the call completes: the permit is given back then, and a call without
        // its outcome is done. (The tag costs nothing: `Waiting` is the largest stage.)
        outcome: Option<O>,
    }
}

/// The call's state machine, behind [`Limited`]: the expansion returns
/// `Limited<impl Spec<Output = T>>`, one opaque type, so that the compiler sees through it to
/// decide whether the call's future is `Send`, exactly as it does for an `async fn`. Not a
/// public API.
#[doc(hidden)]
pub trait Spec {
    /// The body's output.
    type Output;
    /// Drives the admission. Ready once the call is admitted or refused.
    fn poll_admission(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
    /// Moves an admitted (or refused) call out, to run elsewhere; the pinned one is left done.
    fn take_admitted(self: Pin<&mut Self>) -> Self;
    /// Runs the call: waits for the permit if it has not, then runs the body.
    fn poll_call(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

pin_project! {
    /// The call's state machine: the admission `A` (an `async fn` of `Call`), the closure `F`
    /// that makes the body's future `B` once the call is admitted, and `R`, which turns a
    /// refusal into the body's output. Not a public API.
    #[doc(hidden)]
    pub struct Machine<A, F, B, R>
    where
        A: Future,
    {
        #[pin]
        stage: Stage<A, F, Started<A::Output, B>>,
        refuse: PhantomData<fn() -> R>,
    }
}

pin_project! {
    #[project = StageProj]
    #[project_replace = StageReplace]
    enum Stage<A, F, S> {
        // The admission, waiting for the permit, and beside it the body's closure, which holds
        // the arguments: so a waiting call's future is the admission's size plus the
        // arguments', as an `async fn` that awaits a permit is.
        Waiting {
            #[pin]
            admission: A,
            then: F,
        },
        // Admitted in the task of `admitted()`, and not polled since: it can still move.
        Admitted {
            started: S,
        },
        // Pinned, and running the body.
        Running {
            #[pin]
            started: S,
        },
        Done,
    }
}

impl<A, F, B, R> Machine<A, F, B, R>
where
    A: Future,
    A::Output: Outcome,
    F: FnOnce() -> B,
    B: Future,
    R: Refuse<B::Output>,
{
    /// A call that waits for `admission`, then runs the body that `then` makes. Not a public
    /// API.
    #[doc(hidden)]
    pub fn new(admission: A, then: F) -> Self {
        Self {
            stage: Stage::Waiting { admission, then },
            refuse: PhantomData,
        }
    }

    /// Polls the admission, and once it is ready, makes the body's future: what comes back is
    /// the stage the call is in next, or `None` while it waits.
    #[inline]
    fn admit(
        mut stage: Pin<&mut Stage<A, F, Started<A::Output, B>>>,
        cx: &mut Context<'_>,
    ) -> Poll<Started<A::Output, B>> {
        let StageProj::Waiting { admission, .. } = stage.as_mut().project() else {
            unreachable!("limit-runtime: the call is waiting");
        };
        let outcome = std::task::ready!(admission.poll(cx));
        let StageReplace::Waiting { then, .. } = stage.project_replace(Stage::Done) else {
            unreachable!("limit-runtime: the call was waiting");
        };
        Poll::Ready(Started {
            body: then(),
            outcome: Some(outcome),
        })
    }
}

impl<A, F, B, R> Spec for Machine<A, F, B, R>
where
    A: Future,
    A::Output: Outcome,
    F: FnOnce() -> B,
    B: Future,
    R: Refuse<B::Output>,
{
    type Output = B::Output;

    fn poll_admission(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut stage = self.project().stage;
        if let StageProj::Waiting { .. } = stage.as_mut().project() {
            let started = std::task::ready!(Self::admit(stage.as_mut(), cx));
            stage.as_mut().project_replace(Stage::Admitted { started });
        }
        Poll::Ready(())
    }

    fn take_admitted(self: Pin<&mut Self>) -> Self {
        let stage = match self.project().stage.project_replace(Stage::Done) {
            StageReplace::Admitted { started } => Stage::Admitted { started },
            StageReplace::Waiting { .. } | StageReplace::Running { .. } | StageReplace::Done => {
                Stage::Done
            }
        };
        Self {
            stage,
            refuse: PhantomData,
        }
    }

    #[inline]
    fn poll_call(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        let mut stage = self.project().stage;
        match stage.as_mut().project() {
            // `Self::admit` and taking the admitted call leave the stage `Done`, which
            // `project_replace` overwrites without a call to drop it.
            StageProj::Waiting { .. } => {
                let started = std::task::ready!(Self::admit(stage.as_mut(), cx));
                stage.as_mut().project_replace(Stage::Running { started });
            }
            StageProj::Admitted { .. } => {
                let StageReplace::Admitted { started } = stage.as_mut().project_replace(Stage::Done)
                else {
                    unreachable!("limit-runtime: the stage was `Admitted`");
                };
                stage.as_mut().project_replace(Stage::Running { started });
            }
            StageProj::Running { .. } => {}
            StageProj::Done => {
                panic!("a `#[concurrency_limit]` call's future was polled after it completed")
            }
        }
        let StageProj::Running { started } = stage.as_mut().project() else {
            unreachable!("limit-runtime: the stage is `Running`");
        };
        let started = started.project();
        let Some(outcome) = started.outcome else {
            panic!("a `#[concurrency_limit]` call's future was polled after it completed")
        };
        let output = match outcome.refusal() {
            // The refused call counts as in flight until its error is made.
            Some(error) => R::refuse(error),
            None => std::task::ready!(started.body.poll(cx)),
        };
        // The body's future has finished (or never ran); dropping the outcome gives the
        // permit back, then ends the call. The stage stays `Running`, done.
        *started.outcome = None;
        Poll::Ready(output)
    }
}

pin_project! {
    /// The future of a call of a `#[concurrency_limit]` function (a free function or an
    /// inherent method): it waits for the call's permit, in the order calls were made, then
    /// runs the body while holding it.
    ///
    /// Await it as the function's future. Or await its [`admitted`](Self::admitted) first, in
    /// the task that makes the calls, to wait there for the permit and get back a future that
    /// holds it: see there.
    ///
    /// The expansion returns `Limited<impl Spec<Output = T>>` (`cargo expand` shows it):
    /// a future of output `T`, as the `async fn` was.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Limited<S> {
        #[pin]
        call: S,
    }
}

impl<S: Spec> Limited<S> {
    /// The future of one call. Not a public API.
    #[doc(hidden)]
    pub fn new(call: S) -> Self {
        Self { call }
    }

    /// Waits for the call's permit here, in the caller's task, and returns the future that
    /// holds it and runs the body when polled.
    ///
    /// Calls wait in the order they start waiting, first come first served: so a producer
    /// that awaits `admitted()` before each `spawn` starts its calls in its own order, and
    /// while every permit is taken it waits instead of piling up tasks. At most `limit + 1`
    /// calls exist at once: `limit` running, and the one its producer is waiting for.
    ///
    /// ```
    /// use limit_runtime::{concurrency_limit, drain};
    /// use std::sync::Mutex;
    ///
    /// static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    ///
    /// #[concurrency_limit(1)]
    /// async fn job(id: u32) {
    ///     STARTED.lock().unwrap().push(id);
    ///     tokio::task::yield_now().await;
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// for id in 0..8 {
    ///     // Waits while the previous job runs; then the spawned task holds the permit.
    ///     tokio::spawn(job(id).admitted().await);
    /// }
    /// drain().await;
    /// assert_eq!(*STARTED.lock().unwrap(), [0, 1, 2, 3, 4, 5, 6, 7]);
    /// # }
    /// ```
    ///
    /// It honours the function's options: under `max_wait` it waits at most that long, and
    /// a refused call's future returns its `Err` without running the body. Dropping the
    /// future of `admitted()` while it waits gives up the place in line, and the call.
    ///
    /// Offered on the futures of free functions and inherent methods. A method of a trait
    /// impl returns this type too, but code that calls it through the trait (or a generic
    /// bound) sees only the trait's `impl Future`; a method of an `#[async_trait]` impl
    /// returns the trait's boxed future.
    pub fn admitted(self) -> Admit<S> {
        Admit { call: self.call }
    }
}

pin_project! {
    /// The future of [`Limited::admitted`]: it waits for the call's permit, and gives back the
    /// call, holding it.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Admit<S> {
        #[pin]
        call: S,
    }
}

impl<S: Spec> Future for Admit<S> {
    type Output = Limited<S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Limited<S>> {
        let mut call = self.project().call;
        std::task::ready!(call.as_mut().poll_admission(cx));
        Poll::Ready(Limited::new(call.take_admitted()))
    }
}

impl<S> std::fmt::Debug for Admit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admit").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for Limited<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited").finish_non_exhaustive()
    }
}

impl<S: Spec> Future for Limited<S> {
    type Output = S::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<S::Output> {
        self.project().call.poll_call(cx)
    }
}
