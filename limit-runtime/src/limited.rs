//! [`Limited`]: the future that a call of a `#[concurrency_limit]` function returns. It waits
//! for the call's permit, then runs the body, and in between can be handed over: its
//! [`admitted`](Limited::admitted) waits for the permit in the caller's task and returns the
//! future that runs the body, so that a producer waits its turn before it spawns.
//!
//! The call goes through these stages ([`Machine`]):
//!
//! - *Fresh*: the call's guard, and the body's closure, which holds the arguments. The first
//!   poll tries the fast path. A call that finds a permit goes straight to *Running*, with no
//!   wait future ever made: so an uncontended call costs what it did when the whole call was
//!   one `async` block.
//! - *Waiting*: the wait in line (`Call::wait`), beside the body's closure. A shrink of the
//!   limit can send a waiting call to the front of the line: then *at the front*, the wait there
//!   (`AtFront::wait`). Two futures, so that each knows its place from its type and holds
//!   nothing beside the call.
//! - *Admitted*: the body's future, made by the closure from the permit, not polled yet. Only
//!   `admitted()` stops here: its future can still move, into `tokio::spawn`.
//! - *Running*: the body's future, pinned and polled. It holds the permit, so the permit is
//!   given back when the body ends, as in an `async fn`.
//!
//! Each stage is replaced whole (`project_replace`): nothing pinned ever moves. The expansion
//! returns `Limited<impl Spec<Output = T>>`: one opaque type, which the compiler sees through
//! to decide whether the future is `Send`, exactly as for an `async fn`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{Admitted, AtFront, Call, Claim, Handle, Refused, Step};

/// A call's guard, before admission: what [`Machine`] needs of `Call`. Not a public API.
#[doc(hidden)]
pub trait Entered {
    /// The guard of the admitted call.
    type Admitted;
    /// The fast path; see `Call::poll_fast`.
    fn poll_fast(&self, cx: &mut Context<'_>) -> Poll<bool>;
    /// The guard of a call the fast path admitted.
    fn into_admitted(self) -> Self::Admitted;
}

impl<H: Handle, K: Claim> Entered for Call<H, K> {
    type Admitted = Admitted<H, K>;

    #[inline]
    fn poll_fast(&self, cx: &mut Context<'_>) -> Poll<bool> {
        Call::poll_fast(self, cx)
    }

    #[inline]
    fn into_admitted(self) -> Admitted<H, K> {
        Call::into_admitted(self)
    }
}

/// What the body's closure receives: the permit (`Admitted`), or under `max_wait` or `queue`,
/// the permit or the refusal (`Result<Admitted, Refused>`). Not a public API.
#[doc(hidden)]
pub trait Outcome<P> {
    /// The outcome of a call admitted on the fast path.
    fn admitted(permit: P) -> Self;
}

impl<H: Handle, K: Claim> Outcome<Admitted<H, K>> for Admitted<H, K> {
    #[inline]
    fn admitted(permit: Self) -> Self {
        permit
    }
}

impl<H: Handle, K: Claim> Outcome<Admitted<H, K>> for Result<Admitted<H, K>, Refused<H, K>> {
    #[inline]
    fn admitted(permit: Admitted<H, K>) -> Self {
        Ok(permit)
    }
}

/// The call's state machine, behind [`Limited`]. Not a public API.
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

/// What a wait in line comes to: the outcome (the permit, or a refusal), or a call sent to
/// the front of the line, which waits on there. Not a public API.
#[doc(hidden)]
pub trait Waited {
    /// The outcome.
    type Outcome;
    /// A call waiting at the front of the line.
    type Front;
    /// Which of the two.
    fn step(self) -> Result<Self::Outcome, Self::Front>;
}

impl<H: Handle, K: Claim> Waited for Step<H, K> {
    type Outcome = Admitted<H, K>;
    type Front = AtFront<H, K>;

    #[inline]
    fn step(self) -> Result<Admitted<H, K>, AtFront<H, K>> {
        match self {
            Step::Admitted(admitted) => Ok(admitted),
            Step::Front(front) => Err(front),
        }
    }
}

/// A wait under `max_wait` or `queue` (`Call::wait_with`) waits at the front itself.
impl<H: Handle, K: Claim> Waited for Result<Admitted<H, K>, Refused<H, K>> {
    type Outcome = Self;
    type Front = Never;

    #[inline]
    fn step(self) -> Result<Self, Never> {
        Ok(self)
    }
}

/// No value: the front of a wait that never gets there. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum Never {}

/// The front wait of a wait that never gets there. Not a public API.
#[doc(hidden)]
#[expect(
    clippy::needless_pass_by_value,
    reason = "it takes what `Waited::Front` is, and there is no such value"
)]
pub fn never_front<O>(never: Never) -> std::future::Pending<O> {
    match never {}
}

pin_project! {
    /// The call's state machine: the call's guard `C`; the wait in line `A` that `W` makes of
    /// it, and the wait at the front `D` that `V` makes if a shrink sends the call there;
    /// and the closure `F` that makes the body's future `B` from the outcome. Not a public
    /// API.
    #[doc(hidden)]
    pub struct Machine<C, W, A, V, D, F, B> {
        #[pin]
        stage: Stage<C, W, A, V, D, F, B>,
    }
}

pin_project! {
    #[project = StageProj]
    #[project_replace = StageReplace]
    enum Stage<C, W, A, V, D, F, B> {
        Fresh {
            call: C,
            wait: W,
            front: V,
            then: F,
        },
        Waiting {
            #[pin]
            admission: A,
            front: V,
            then: F,
        },
        AtFront {
            #[pin]
            admission: D,
            then: F,
        },
        Admitted {
            body: B,
        },
        Running {
            #[pin]
            body: B,
        },
        Done,
    }
}

impl<C, W, A, V, D, F, B> Machine<C, W, A, V, D, F, B>
where
    C: Entered,
    W: FnOnce(C) -> A,
    A: Future,
    A::Output: Waited,
    V: FnOnce(<A::Output as Waited>::Front) -> D,
    D: Future<Output = <A::Output as Waited>::Outcome>,
    <A::Output as Waited>::Outcome: Outcome<C::Admitted>,
    F: FnOnce(<A::Output as Waited>::Outcome) -> B,
    B: Future,
{
    /// The call `call`: on the fast path, or waiting in line with `wait` (and at the front
    /// with `front`), and then `then` makes its body's future. Not a public API.
    #[doc(hidden)]
    pub fn new(call: C, wait: W, front: V, then: F) -> Self {
        Self {
            stage: Stage::Fresh {
                call,
                wait,
                front,
                then,
            },
        }
    }

    /// Drives the call until it has its permit (or its refusal), and returns its body's
    /// future, not polled yet. The stage is left `Done`, to be replaced by the caller.
    ///
    /// The fast path is here, inline and straight-line; waiting is out of line, in `wait`.
    #[inline]
    fn admit(mut stage: Pin<&mut Stage<C, W, A, V, D, F, B>>, cx: &mut Context<'_>) -> Poll<B> {
        if let StageProj::Fresh { call, .. } = stage.as_mut().project() {
            let admitted = std::task::ready!(call.poll_fast(cx));
            let StageReplace::Fresh {
                call,
                wait,
                front,
                then,
            } = stage.as_mut().project_replace(Stage::Done)
            else {
                unreachable!("limit-runtime: the call was fresh");
            };
            if admitted {
                return Poll::Ready(then(Outcome::admitted(call.into_admitted())));
            }
            stage.as_mut().project_replace(Stage::Waiting {
                admission: wait(call),
                front,
                then,
            });
        }
        Self::wait(stage, cx)
    }

    /// Waits in line, and at the front of it if a shrink sends the call there.
    #[inline(never)]
    fn wait(mut stage: Pin<&mut Stage<C, W, A, V, D, F, B>>, cx: &mut Context<'_>) -> Poll<B> {
        if let StageProj::Waiting { admission, .. } = stage.as_mut().project() {
            let waited = std::task::ready!(admission.poll(cx));
            let StageReplace::Waiting { front, then, .. } =
                stage.as_mut().project_replace(Stage::Done)
            else {
                unreachable!("limit-runtime: the call was waiting");
            };
            match waited.step() {
                Ok(outcome) => return Poll::Ready(then(outcome)),
                Err(at_front) => {
                    stage.as_mut().project_replace(Stage::AtFront {
                        admission: front(at_front),
                        then,
                    });
                }
            }
        }
        let StageProj::AtFront { admission, .. } = stage.as_mut().project() else {
            unreachable!("limit-runtime: the call waits at the front");
        };
        let outcome = std::task::ready!(admission.poll(cx));
        let StageReplace::AtFront { then, .. } = stage.project_replace(Stage::Done) else {
            unreachable!("limit-runtime: the call was at the front");
        };
        Poll::Ready(then(outcome))
    }
}

impl<C, W, A, V, D, F, B> Spec for Machine<C, W, A, V, D, F, B>
where
    C: Entered,
    W: FnOnce(C) -> A,
    A: Future,
    A::Output: Waited,
    V: FnOnce(<A::Output as Waited>::Front) -> D,
    D: Future<Output = <A::Output as Waited>::Outcome>,
    <A::Output as Waited>::Outcome: Outcome<C::Admitted>,
    F: FnOnce(<A::Output as Waited>::Outcome) -> B,
    B: Future,
{
    type Output = B::Output;

    fn poll_admission(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut stage = self.project().stage;
        if let StageProj::Fresh { .. } | StageProj::Waiting { .. } | StageProj::AtFront { .. } =
            stage.as_mut().project()
        {
            let body = std::task::ready!(Self::admit(stage.as_mut(), cx));
            stage.project_replace(Stage::Admitted { body });
        }
        Poll::Ready(())
    }

    fn take_admitted(self: Pin<&mut Self>) -> Self {
        let stage = match self.project().stage.project_replace(Stage::Done) {
            StageReplace::Admitted { body } => Stage::Admitted { body },
            _ => Stage::Done,
        };
        Self { stage }
    }

    #[inline]
    fn poll_call(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        let mut stage = self.project().stage;
        // Each step leaves the stage `Done`, which `project_replace` overwrites without a
        // call to drop it.
        match stage.as_mut().project() {
            StageProj::Running { body } => return body.poll(cx),
            StageProj::Fresh { .. } | StageProj::Waiting { .. } | StageProj::AtFront { .. } => {
                let body = std::task::ready!(Self::admit(stage.as_mut(), cx));
                stage.as_mut().project_replace(Stage::Running { body });
            }
            StageProj::Admitted { .. } => {
                let StageReplace::Admitted { body } = stage.as_mut().project_replace(Stage::Done)
                else {
                    unreachable!("limit-runtime: the call was admitted");
                };
                stage.as_mut().project_replace(Stage::Running { body });
            }
            StageProj::Done => {
                panic!("a `#[concurrency_limit]` call's future was polled after it completed")
            }
        }
        let StageProj::Running { body } = stage.project() else {
            unreachable!("limit-runtime: the call is running");
        };
        body.poll(cx)
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
    ///
    /// ```
    /// use limit_runtime::concurrency_limit;
    ///
    /// #[concurrency_limit(2)]
    /// async fn double(x: u32) -> u32 {
    ///     x * 2
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let call = double(21); // a `Limited`, in flight from here on
    /// assert_eq!(call.await, 42);
    /// # });
    /// ```
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
    /// call, holding it. Dropping it while it waits gives up the call's place in line, and the
    /// call.
    ///
    /// ```
    /// use limit_runtime::concurrency_limit;
    ///
    /// #[concurrency_limit(1)]
    /// async fn job(id: u32) -> u32 {
    ///     id
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let admit = job(1).admitted(); // an `Admit`
    /// let call = admit.await;        // holds the only permit, body not run yet
    /// let limiter = limit_runtime::limiters().find(|l| l.name().ends_with("::job")).unwrap();
    /// assert_eq!(limiter.running(), 1);
    /// assert_eq!(call.await, 1);
    /// # });
    /// ```
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
