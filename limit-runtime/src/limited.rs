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
//! *Fresh* and *Running* are one stage, `Direct`, holding a small enum of its own (`Slot`):
//! the fast path moves the call out of the slot and the body's future in, and the stage
//! around it stays as it is. Replacing a whole stage (`project_replace`) writes the whole
//! stage, as large as its largest one, the wait in line beside the closure; where the compiler
//! does not inline it (a limiter per instance, say), that is a copy of a hundred bytes and
//! more, twice per call. The other stages are replaced whole, at the two places where a call
//! joins and leaves the line, and `Pin::set` writes the rest. Nothing pinned ever moves.
//!
//! Every poll goes through [`Spec::poll_call`]: a running call polls its body, a fresh one
//! tries the fast path inline, and a waiting one polls its wait inline; the rest (joining the
//! line, the front, `admitted()`) is out of line.
//!
//! The expansion returns `Limited<impl Spec<Output = T>>`: one opaque type, which the compiler
//! sees through to decide whether the future is `Send`, exactly as for an `async fn`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::call::{Admitted, AtFront, Call, Claim, Handle, Refused, Step};
use crate::fence::{Fence, Fenced, fenced};

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

    #[expect(clippy::inline_always, reason = "see `Call::poll_fast`")]
    #[inline(always)]
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
    /// The fencing token the body's polls run with (see `fence.rs`).
    fn fence(&self) -> Fence;
}

impl<H: Handle, K: Claim> Outcome<Admitted<H, K>> for Admitted<H, K> {
    #[inline]
    fn admitted(permit: Self) -> Self {
        permit
    }

    #[inline]
    fn fence(&self) -> Fence {
        Admitted::fence(self)
    }
}

impl<H: Handle, K: Claim> Outcome<Admitted<H, K>> for Result<Admitted<H, K>, Refused<H, K>> {
    #[inline]
    fn admitted(permit: Admitted<H, K>) -> Self {
        Ok(permit)
    }

    #[inline]
    fn fence(&self) -> Fence {
        self.as_ref().map(Admitted::fence).unwrap_or_default()
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
        // Fresh, then running: one stage, so that the fast path changes only the small `Slot`
        // inside it (see the module's documentation).
        Direct {
            #[pin]
            slot: Slot<C, W, V, F, B>,
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
            body: Fenced<B>,
        },
        Done,
    }
}

pin_project! {
    #[project = SlotProj]
    #[project_replace = SlotReplace]
    enum Slot<C, W, V, F, B> {
        Fresh {
            call: C,
            wait: W,
            front: V,
            then: F,
        },
        // With the fencing token its polls run with: see `fence.rs` (the body alone without
        // the `redis` feature).
        Running {
            #[pin]
            body: Fenced<B>,
        },
        Gone,
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
            stage: Stage::Direct {
                slot: Slot::Fresh {
                    call,
                    wait,
                    front,
                    then,
                },
            },
        }
    }

    /// The fast path found no permit: the call joins the line (`Waiting`).
    #[cold]
    #[inline(never)]
    fn join_line(mut stage: Pin<&mut Stage<C, W, A, V, D, F, B>>) {
        let StageProj::Direct { slot } = stage.as_mut().project() else {
            unreachable!("limit-runtime: the call was fresh");
        };
        let SlotReplace::Fresh {
            call,
            wait,
            front,
            then,
        } = slot.project_replace(Slot::Gone)
        else {
            unreachable!("limit-runtime: the call was fresh");
        };
        stage.project_replace(Stage::Waiting {
            admission: wait(call),
            front,
            then,
        });
    }

    /// The wait in line ended with `next`: the stage is emptied, and the body's future made
    /// and put in place, `Running` (or with `RUN` false, `Admitted`). Or, sent to the front of
    /// the line, the call waits there.
    #[inline]
    fn waited<const RUN: bool>(
        mut stage: Pin<&mut Stage<C, W, A, V, D, F, B>>,
        next: Next<<A::Output as Waited>::Outcome, <A::Output as Waited>::Front>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        // Emptied into the running stage's (empty) slot, so that the body goes straight in.
        let empty = if RUN {
            Stage::Direct { slot: Slot::Gone }
        } else {
            Stage::Done
        };
        let emptied = stage.as_mut().project_replace(empty);
        let body = match next {
            Next::Outcome(outcome) => match emptied {
                StageReplace::Waiting { then, .. } | StageReplace::AtFront { then, .. } => {
                    let fence = outcome.fence();
                    fenced(then(outcome), fence)
                }
                _ => unreachable!("limit-runtime: the stage changed while it was polled"),
            },
            Next::Front(at_front) => {
                let StageReplace::Waiting { front, then, .. } = emptied else {
                    unreachable!("limit-runtime: the stage changed while it was polled");
                };
                stage.set(Stage::AtFront {
                    admission: front(at_front),
                    then,
                });
                return Self::poll_slow::<RUN>(stage, cx);
            }
            Next::Body => {
                let StageReplace::Admitted { body } = emptied else {
                    unreachable!("limit-runtime: the stage changed while it was polled");
                };
                body
            }
        };
        if RUN {
            let StageProj::Direct { slot } = stage.project() else {
                unreachable!("limit-runtime: the stage was just emptied");
            };
            slot.project_replace(Slot::Running { body });
        } else {
            stage.set(Stage::Admitted { body });
        }
        Poll::Ready(())
    }

    /// The polls that `poll_call` leaves out of line (a call at the front of the line, or
    /// admitted by `admitted()`), and every poll of `poll_admission` (`RUN` false) but its
    /// fast path: the call joins the line, waits, and at the front if a shrink sends it there.
    /// Ready once the body's future is in place: `Running`, or with `RUN` false, `Admitted`.
    #[inline(never)]
    fn poll_slow<const RUN: bool>(
        mut stage: Pin<&mut Stage<C, W, A, V, D, F, B>>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let next = match stage.as_mut().project() {
            StageProj::Direct { mut slot } => match slot.as_mut().project() {
                SlotProj::Running { .. } => return Poll::Ready(()),
                // A call's first poll goes through `poll_call`, or `poll_admission` (`RUN`
                // false), which handle a fresh call themselves.
                SlotProj::Fresh { .. } if RUN => {
                    unreachable!("limit-runtime: a fresh call is polled by `poll_call`")
                }
                SlotProj::Fresh { .. } => {
                    Self::join_line(stage.as_mut());
                    return Self::poll_slow::<RUN>(stage, cx);
                }
                SlotProj::Gone => polled_after_completion(),
            },
            StageProj::Waiting { admission, .. } => {
                match std::task::ready!(admission.poll(cx)).step() {
                    Ok(outcome) => Next::Outcome(outcome),
                    Err(at_front) => Next::Front(at_front),
                }
            }
            StageProj::AtFront { admission, .. } => {
                Next::Outcome(std::task::ready!(admission.poll(cx)))
            }
            StageProj::Admitted { .. } if !RUN => return Poll::Ready(()),
            StageProj::Admitted { .. } => Next::Body,
            StageProj::Done => polled_after_completion(),
        };
        Self::waited::<RUN>(stage, next, cx)
    }

    /// Polls the body of a call whose stage is `Running`.
    #[inline]
    fn poll_body(
        stage: Pin<&mut Stage<C, W, A, V, D, F, B>>,
        cx: &mut Context<'_>,
    ) -> Poll<B::Output> {
        let StageProj::Direct { slot } = stage.project() else {
            unreachable!("limit-runtime: the call is running");
        };
        let SlotProj::Running { body } = slot.project() else {
            unreachable!("limit-runtime: the call is running");
        };
        body.poll(cx)
    }
}

#[cold]
#[inline(never)]
fn polled_after_completion() -> ! {
    panic!("a `#[concurrency_limit]` call's future was polled after it completed")
}

/// What a call that waited comes to, before its stage is emptied.
enum Next<O, Fr> {
    /// Admitted (or refused).
    Outcome(O),
    /// Sent to the front of the line.
    Front(Fr),
    /// Admitted by `admitted()` before, and now run.
    Body,
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
        if let StageProj::Direct { mut slot } = stage.as_mut().project()
            && let SlotProj::Fresh { call, .. } = slot.as_mut().project()
            && std::task::ready!(call.poll_fast(cx))
        {
            let SlotReplace::Fresh { call, then, .. } = slot.project_replace(Slot::Gone) else {
                unreachable!("limit-runtime: the call was fresh");
            };
            // Admitted on the fast path: by its own gate, so never a fleet's lease.
            let body = fenced(
                then(Outcome::admitted(call.into_admitted())),
                Fence::default(),
            );
            stage.set(Stage::Admitted { body });
            return Poll::Ready(());
        }
        Self::poll_slow::<false>(stage, cx)
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
        match stage.as_mut().project() {
            StageProj::Direct { mut slot } => match slot.as_mut().project() {
                SlotProj::Running { body } => return body.poll(cx),
                SlotProj::Fresh { call, .. } => {
                    // The fast path: the call goes straight from fresh to running.
                    if std::task::ready!(call.poll_fast(cx)) {
                        let SlotReplace::Fresh { call, then, .. } =
                            slot.as_mut().project_replace(Slot::Gone)
                        else {
                            unreachable!("limit-runtime: the call was fresh");
                        };
                        // Never a fleet's lease: see `poll_admission`.
                        let body = fenced(
                            then(Outcome::admitted(call.into_admitted())),
                            Fence::default(),
                        );
                        slot.as_mut().project_replace(Slot::Running { body });
                        let SlotProj::Running { body } = slot.project() else {
                            unreachable!("limit-runtime: the call is running");
                        };
                        return body.poll(cx);
                    }
                    Self::join_line(stage.as_mut());
                }
                SlotProj::Gone => polled_after_completion(),
            },
            StageProj::Waiting { .. } => {}
            _ => {
                std::task::ready!(Self::poll_slow::<true>(stage.as_mut(), cx));
                return Self::poll_body(stage, cx);
            }
        }
        let StageProj::Waiting { admission, .. } = stage.as_mut().project() else {
            unreachable!("limit-runtime: the call waits");
        };
        let next = match std::task::ready!(admission.poll(cx)).step() {
            Ok(outcome) => Next::Outcome(outcome),
            Err(at_front) => Next::Front(at_front),
        };
        std::task::ready!(Self::waited::<true>(stage.as_mut(), next, cx));
        Self::poll_body(stage, cx)
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
