//! A call's guards. [`Call`] lives from the moment a limited function is called until its
//! future is finished or dropped: that is what `drain()` waits for. [`Admitted`] adds a
//! place under the limit, and lives only while the body runs. [`Permit`] is the public face
//! of `Admitted`, for [`Limiter::acquire`].
//!
//! The guards are generic over how they find their limiter ([`Handle`]) and what the call
//! claims of it ([`Claim`]): the limiter's permits or a key's, one permit or a weight. The
//! expansion gives each function's limiter (and each `limiter = STATIC`) a zero-sized
//! `Handle` type of its own, so an ordinary call's guards take no space but a byte: the
//! attribute adds little more to a call's future than tokio's `Acquire`, which any semaphore
//! wait needs. A limiter per instance is reached through a `&Limiter` or an `Arc<Limiter>`,
//! one pointer more. Every guard changes its limiter's state through the methods of
//! [`Core`], whatever its handle.
//!
//! A call is its parts, the handle and the claim. `Admitted` takes them over from the `Call`
//! (which keeps them in an `Option` for that: nothing moves out of a type with a `Drop`
//! otherwise), so that when the body ends, one guard gives the place back and ends the call,
//! with one lookup of the limiter's core for both. That `Option` is the null pointer of a
//! handle that is a pointer, and one byte for a zero-sized one.
//!
//! Each change of a call's state calls a hook of `observe.rs`, one line each, for the
//! `tracing` and `metrics` features. With both off, the hooks are empty (and their arguments,
//! closures, never run) and `observe::in_wait_span!(wait, wait_in_line!(queued))` is
//! `wait_in_line!(queued)` itself, so the default build's calls and futures are what they are
//! without them.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{AcquireError, SemaphorePermit};

use crate::adaptive::state::Stamp;
#[cfg(feature = "redis")]
use crate::backend::{Admission, Ask, Backend, Grant};
use crate::core::Core;
use crate::error::LimitError;
use crate::fence::Fence;
use crate::gate::{Gate, Handed, handed};
use crate::keyed::Slot;
use crate::limiter::Limiter;
use crate::name::Name;
use crate::observe::{self, WaitObservation};

/// Waits in line for a permit, FIFO, as the [`Queued`] call `$queued`; evaluates to the
/// permits held right after it was taken. Cancel-safe: tokio's `Acquire` gives back what it
/// was assigned when dropped, and dropping the `Queued` call gives up its place in line.
///
/// A macro, not an `async fn`: a call's future then holds tokio's `Acquire` and no nested
/// future state with a reference to the call (24 bytes more per call, measured by
/// `tests/allocations.rs`).
macro_rules! wait_in_line {
    ($queued:ident) => {
        loop {
            // The weight is read again after the wait rather than kept across it, so that the
            // future does not store it beside the call that already holds it.
            let permit = crate::gate::handed($queued.next_permit().await);
            match $queued
                .gate()
                .take_handed(permit, $queued.place, $queued.weight())
            {
                Handed::Admitted(held) => {
                    $queued.place = false;
                    break held;
                }
                // It was at the head of the line, and stays ahead of those behind it.
                Handed::Front => $queued.place = true,
            }
        }
    };
}

/// The fast path, inside tokio's cooperative budget as tokio's own `Semaphore::acquire` is:
/// a task whose budget is spent yields here (and is woken at once), so a loop of limited calls
/// that always find a permit still lets the other tasks of a current-thread runtime run. The
/// budget is spent only when a permit is taken at once. While calls are queued, the fast path
/// is closed and the call queues too (permits left idle in the line go to it there, in its
/// turn), and tokio's semaphore spends the budget as it waits, so the budget is not consulted
/// twice. Outside a tokio runtime there is no budget, and this never yields. A call of weight
/// 0 takes no permit, and is admitted at once, as tokio's `acquire_many(0)` is.
#[expect(
    clippy::inline_always,
    reason = "measured: left to the compiler, it stays out of line for some instantiations"
)]
#[inline(always)]
fn fast_path(cx: &mut Context<'_>, gate: &Gate, weight: usize) -> Poll<Option<usize>> {
    if weight == 0 {
        return Poll::Ready(Some(gate.held()));
    }
    let Some(word) = gate.fast_path_open() else {
        return Poll::Ready(None);
    };
    let budget = std::task::ready!(tokio::task::coop::poll_proceed(cx));
    let held = gate.try_take(word, weight);
    if held.is_some() {
        budget.made_progress();
        // What `made_progress` leaves to do when it is dropped is nothing: forgotten, it
        // costs no call into tokio.
        std::mem::forget(budget);
    }
    Poll::Ready(held)
}

/// How a call finds its limiter: a zero-sized type declared by the expansion (for a
/// `static`), a reference, or an `Arc`. Not a public API.
#[doc(hidden)]
pub trait Handle: Send + Sync + Unpin {
    /// The limiter.
    fn limiter(&self) -> &Limiter;
}

impl Handle for &Limiter {
    #[inline]
    fn limiter(&self) -> &Limiter {
        self
    }
}

impl Handle for Arc<Limiter> {
    #[inline]
    fn limiter(&self) -> &Limiter {
        self
    }
}

/// `limiter = &self.limits` where `limits` is an `Arc<Limiter>`: a borrow, as `&Limiter` is.
impl Handle for &Arc<Limiter> {
    #[inline]
    fn limiter(&self) -> &Limiter {
        self
    }
}

/// What `limiter = EXPR` may be: a `&Limiter`, an `Arc<Limiter>` (or a `&Arc<Limiter>`).
/// The expansion passes the expression to `Limiter::call_instance`, so an expression of
/// another type is one error, spanned at it, with the message below. Not a public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`limiter = …` must be a `&Limiter` or an `Arc<Limiter>`, not `{Self}`",
    label = "expected `&Limiter` or `Arc<Limiter>`",
    note = "name a `static` limiter by its path (`limiter = DATABASE`), borrow one per \
            instance (`limiter = &self.connections`), or share one through an `Arc` \
            (`limiter = self.limits.clone()`)"
)]
pub trait IntoHandle {
    /// The handle.
    type Handle: Handle;
    /// Makes it.
    fn into_handle(self) -> Self::Handle;
}

// Each is its own handle. Written out, not by a macro, so that the compiler's list of the
// types that implement the trait reads plainly in an error.
impl IntoHandle for &Limiter {
    type Handle = Self;

    #[inline]
    fn into_handle(self) -> Self {
        self
    }
}

impl IntoHandle for Arc<Limiter> {
    type Handle = Self;

    #[inline]
    fn into_handle(self) -> Self {
        self
    }
}

impl IntoHandle for &Arc<Limiter> {
    type Handle = Self;

    #[inline]
    fn into_handle(self) -> Self {
        self
    }
}

/// What a call claims of its limiter: the limiter's permits or its key's, and how many.
/// Not a public API.
#[doc(hidden)]
pub trait Claim: Send + Sync + Unpin + 'static {
    /// Where the call's permits are: the limiter's gate, or its key's.
    fn gate<'a>(&'a self, core: &'a Core) -> &'a Gate;
    /// The key's slot, for a keyed call.
    fn slot(&self) -> Option<&Slot>;
    /// How many permits the call takes: 1, unless it is [`Weighted`].
    #[inline]
    fn weight(&self) -> usize {
        1
    }
    /// The limit that the weight was above when the call was made: such a call is refused.
    #[inline]
    fn too_heavy(&self) -> Option<usize> {
        None
    }
    /// Waits in line at `gate` for the call's permits: see `Gate::next_permit`. One permit
    /// unless it is [`Weighted`].
    #[inline]
    fn next_permit<'a>(
        &self,
        gate: &'a Gate,
        at_front: bool,
    ) -> impl Future<Output = Result<SemaphorePermit<'a>, AcquireError>> + 'a {
        gate.next_one(at_front)
    }
    /// Whether the call may be a sample of an adaptive limit ([`Sampled`]).
    const SAMPLED: bool = false;
    /// The body of the call, admitted by `core` with `held` permits held by its gate, starts
    /// now: a [`Sampled`] call of an adaptive limit is stamped.
    #[inline]
    fn stamp(&mut self, core: &Core, held: usize) {
        let _ = (core, held);
    }
    /// The call's stamp, once: the body returned (`Admitted::complete`).
    #[inline]
    fn take_stamp(&mut self) -> Option<Stamp> {
        None
    }
}

/// One permit of the limiter's own. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Unkeyed;

impl Claim for Unkeyed {
    #[inline]
    fn gate<'a>(&'a self, core: &'a Core) -> &'a Gate {
        core.gate()
    }

    #[inline]
    fn slot(&self) -> Option<&Slot> {
        None
    }
}

/// One permit of a key's. Not a public API.
#[doc(hidden)]
pub struct Keyed(pub(crate) Arc<Slot>);

impl Claim for Keyed {
    fn gate<'a>(&'a self, _core: &'a Core) -> &'a Gate {
        &self.0.gate
    }

    fn slot(&self) -> Option<&Slot> {
        Some(&self.0)
    }
}

/// `weight` permits where `K` claims one. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Weighted<K: Claim = Unkeyed> {
    claim: K,
    weight: usize,
    too_heavy: Option<usize>,
}

impl<K: Claim> Weighted<K> {
    /// `weight` permits of `claim`'s gate, `limit` being the limit in force now. A weight
    /// that is [`too_heavy`] for it will be refused.
    pub(crate) fn new(claim: K, weight: usize, limit: usize) -> Self {
        let too_heavy = too_heavy(weight, limit).then_some(limit);
        Self {
            claim,
            weight,
            too_heavy,
        }
    }
}

impl<K: Claim> Claim for Weighted<K> {
    #[inline]
    fn gate<'a>(&'a self, core: &'a Core) -> &'a Gate {
        self.claim.gate(core)
    }

    #[inline]
    fn slot(&self) -> Option<&Slot> {
        self.claim.slot()
    }

    #[inline]
    fn weight(&self) -> usize {
        self.weight
    }

    #[inline]
    fn too_heavy(&self) -> Option<usize> {
        self.too_heavy
    }

    #[inline]
    fn next_permit<'a>(
        &self,
        gate: &'a Gate,
        at_front: bool,
    ) -> impl Future<Output = Result<SemaphorePermit<'a>, AcquireError>> + 'a {
        gate.next_permit(at_front, self.weight)
    }
}

/// A call that may be a sample of an adaptive limit: `K`'s claim, and the call's stamp once
/// it is admitted by an adaptive limiter (16 bytes; nothing is written for a fixed limit).
/// What the attribute uses for `adaptive` and for `limiter = …` (whose limiter may be
/// adaptive: that is known only at run time). Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Sampled<K: Claim = Unkeyed> {
    claim: K,
    /// `Stamp::NONE` until an adaptive limiter admits the call (not an `Option`: see `Stamp`).
    stamp: Stamp,
}

impl<K: Claim> Claim for Sampled<K> {
    const SAMPLED: bool = true;

    #[inline]
    fn gate<'a>(&'a self, core: &'a Core) -> &'a Gate {
        self.claim.gate(core)
    }

    #[inline]
    fn slot(&self) -> Option<&Slot> {
        self.claim.slot()
    }

    #[inline]
    fn weight(&self) -> usize {
        self.claim.weight()
    }

    #[inline]
    fn too_heavy(&self) -> Option<usize> {
        self.claim.too_heavy()
    }

    #[inline]
    fn next_permit<'a>(
        &self,
        gate: &'a Gate,
        at_front: bool,
    ) -> impl Future<Output = Result<SemaphorePermit<'a>, AcquireError>> + 'a {
        self.claim.next_permit(gate, at_front)
    }

    #[inline]
    fn stamp(&mut self, core: &Core, held: usize) {
        if let Some(state) = core.adaptive(self.claim.slot()) {
            self.stamp = state.stamp(held);
        }
    }

    #[inline]
    fn take_stamp(&mut self) -> Option<Stamp> {
        self.stamp.take()
    }
}

/// Whether a call of `weight` permits could never be admitted under `limit`: above it
/// (unless it is 0, which pauses admission and refuses nobody), or above `MAX_LIMIT`,
/// whatever the limit.
pub(crate) fn too_heavy(weight: usize, limit: usize) -> bool {
    weight > crate::gate::MAX_LIMIT || (limit != 0 && weight > limit)
}

/// What a function does with a call whose weight is above its limit: a function whose
/// output is a `Result<T, E>` with `E: From<LimitError>` returns `Err(LimitError::TooHeavy)`
/// ([`OnHeavy::Refuse`]), any other panics where the call is made ([`OnHeavy::Panic`]). Not
/// a public API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnHeavy {
    /// The call returns the refusal.
    Refuse,
    /// The call panics.
    Panic,
}

/// Chooses what a too-heavy call does from the function's output type `T`, at compile time,
/// by autoref dispatch: `(&&Heavy::<T>::PROBE).on_heavy()` finds [`HeavyRefuses`] first when
/// `T` is a [`Refusal`](crate::error::Refusal) (a `Result` whose error has
/// `From<LimitError>`), and [`HeavyPanics`] otherwise. The same dispatch turns the refusal
/// into the output (`refuse`). Not a public API.
#[doc(hidden)]
pub struct Heavy<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Heavy<T> {
    /// The probe.
    pub const PROBE: Self = Self(std::marker::PhantomData);
}

/// See [`Heavy`]: a function that returns its refusals. Not a public API.
#[doc(hidden)]
pub trait HeavyRefuses<T> {
    /// [`OnHeavy::Refuse`].
    #[inline]
    fn on_heavy(&self) -> OnHeavy {
        OnHeavy::Refuse
    }

    /// `Err(E::from(error))`.
    fn refuse(&self, error: LimitError) -> T;
}

impl<T: crate::error::Refusal> HeavyRefuses<T> for &Heavy<T> {
    fn refuse(&self, error: LimitError) -> T {
        T::refused(error)
    }
}

/// See [`Heavy`]: a function that panics where a too-heavy call is made. Not a public API.
#[doc(hidden)]
pub trait HeavyPanics<T> {
    /// [`OnHeavy::Panic`].
    #[inline]
    fn on_heavy(&self) -> OnHeavy {
        OnHeavy::Panic
    }

    /// Never called: such a call panicked when it was made.
    fn refuse(&self, error: LimitError) -> T {
        never_refused(error)
    }
}

impl<T> HeavyPanics<T> for Heavy<T> {}

/// The refusal of a weighted call that panics when too heavy, and so is never refused
/// afterwards. A function returning `T`, rather than a panic in the expansion, so that the
/// code after it is not reported as unreachable. Not a public API.
#[doc(hidden)]
#[must_use]
#[expect(
    clippy::needless_pass_by_value,
    reason = "it takes what the refusal branch has, an owned error"
)]
pub fn never_refused<T>(error: LimitError) -> T {
    unreachable!("limit-runtime: a call refused after it was made: {error}")
}

/// How long a call may wait, and how many calls may wait at once: the `max_wait` and
/// `queue` options. Not a public API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    max_wait: Option<Duration>,
    queue: Option<usize>,
}

impl Policy {
    #[doc(hidden)]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_wait: None,
            queue: None,
        }
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    #[doc(hidden)]
    #[must_use]
    pub const fn queue(mut self, queue: usize) -> Self {
        self.queue = Some(queue);
        self
    }
}

/// One call of a limited function, counted as in flight until it is dropped. Not a public
/// API.
#[doc(hidden)]
#[must_use = "a call stops counting as in flight when this guard is dropped"]
pub struct Call<H: Handle, K: Claim = Unkeyed> {
    /// `None` once the call has moved on into another guard (its `Admitted`, or a new
    /// `Call` when it leaves the line): a guard cannot be moved out of a type with a `Drop`
    /// otherwise. For a limiter reached through a reference or an `Arc`, the `None` is the
    /// null pointer, so it takes no space; for a `static`'s zero-sized handle, one byte.
    parts: Option<Parts<H, K>>,
}

/// What a call is: how it finds its limiter, and what it claims of it.
struct Parts<H: Handle, K: Claim> {
    handle: H,
    key: K,
}

impl<H: Handle, K: Claim> Parts<H, K> {
    /// The limiter's core, which exists once a call has been made.
    #[inline]
    fn core(&self) -> &Core {
        self.handle.limiter().core()
    }

    /// Where the call's permits are, in `core` (its own core).
    #[inline]
    fn gate<'a>(&'a self, core: &'a Core) -> &'a Gate {
        self.key.gate(core)
    }

    #[inline]
    fn weight(&self) -> usize {
        self.key.weight()
    }

    #[inline]
    fn keyed(&self) -> bool {
        self.key.slot().is_some()
    }
}

impl<H: Handle, K: Claim> std::fmt::Debug for Call<H, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Call");
        if let Some(parts) = &self.parts {
            debug
                .field("limiter", parts.core().name())
                .field("keyed", &parts.keyed());
        }
        debug.finish_non_exhaustive()
    }
}

/// What a wait in a backend's line (which cannot be refused) comes to: its permits.
#[cfg(feature = "redis")]
fn granted(grant: Option<Grant>) -> Grant {
    grant.unwrap_or_else(|| {
        unreachable!("limit-runtime: a shared limiter refused a call that waits")
    })
}

/// A call's parts were used after they moved on: a bug in this crate.
#[cold]
#[inline(never)]
fn moved_on() -> ! {
    unreachable!("limit-runtime: a call's guard was used after it moved on")
}

impl<H: Handle, K: Claim> Call<H, K> {
    /// A call that the limiter has just counted as in flight.
    pub(crate) fn entered(handle: H, key: K) -> Self {
        Self {
            parts: Some(Parts { handle, key }),
        }
    }

    /// The same call, a sample of its limiter if that is adaptive ([`Sampled`]): what the
    /// attribute calls on the guard of a call of an adaptive function or of `limiter = …`.
    /// Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn sampled(mut self) -> Call<H, Sampled<K>> {
        let Parts { handle, key } = self.take();
        // It has moved on: nothing is left in it to drop.
        std::mem::forget(self);
        Call::entered(
            handle,
            Sampled {
                claim: key,
                stamp: Stamp::NONE,
            },
        )
    }

    #[inline]
    fn parts(&self) -> &Parts<H, K> {
        match &self.parts {
            Some(parts) => parts,
            None => moved_on(),
        }
    }

    /// The parts, moved on to another guard; this one is left with nothing to end.
    #[inline]
    fn take(&mut self) -> Parts<H, K> {
        match self.parts.take() {
            Some(parts) => parts,
            None => moved_on(),
        }
    }

    #[inline]
    fn core(&self) -> &Core {
        self.parts().core()
    }

    #[inline]
    pub(crate) fn gate(&self) -> &Gate {
        let parts = self.parts();
        parts.gate(parts.core())
    }

    #[inline]
    fn weight(&self) -> usize {
        self.parts().weight()
    }

    /// Waits for a permit, in FIFO order with the other calls of the same limit: the fast
    /// path, then [`wait`](Self::wait). For permits taken by hand; a call of an annotated
    /// function goes through the same two steps in `limited.rs`.
    pub(crate) async fn admit(self) -> Admitted<H, K> {
        if std::future::poll_fn(|cx| self.poll_fast(cx)).await {
            return self.into_admitted();
        }
        match self.wait().await {
            Step::Admitted(admitted) => admitted,
            Step::Front(front) => front.wait().await,
        }
    }

    /// Waits in line for a permit, FIFO, once the fast path found none, until admitted or
    /// sent to the front of the line by a shrink (then [`AtFront::wait`] goes on). Not a
    /// public API.
    ///
    /// The call joins the line here, when `wait` is called (right before its first poll),
    /// and the future holds the queued call as its only capture, used in place: so the call's
    /// handle is stored once. (An `async fn` would keep its argument, and then the queued call
    /// made from it, in two slots.)
    #[doc(hidden)]
    #[inline]
    pub fn wait(self) -> impl Future<Output = Step<H, K>> {
        let Ok((queued, wait)) = Queued::enter(self, None, Back) else {
            unreachable!("limit-runtime: an unbounded queue takes every call");
        };
        let mut queued = queued;
        async move {
            #[cfg(feature = "redis")]
            if let Some(admission) = queued.call.admission(Ask::Wait) {
                let grant = granted(observe::in_wait_span!(wait, admission.await));
                return Step::Admitted(queued.leave().granted(grant, Some(wait)));
            }
            let permit = observe::in_wait_span!(wait, handed(queued.next_permit().await));
            match queued.admit_handed(permit, wait) {
                Ok(admitted) => Step::Admitted(admitted),
                // It was at the head of the line, and stays ahead of those behind it.
                Err(wait) => Step::Front(AtFront {
                    queued: queued.into_front(),
                    wait,
                }),
            }
        }
    }

    /// [`wait`](Self::wait), under `policy`. Not a public API.
    ///
    /// # Errors
    ///
    /// When no permit comes within `max_wait`, or `queue` calls already wait. The refusal
    /// keeps the call, so that it stays in flight until the caller's future completes.
    #[doc(hidden)]
    pub async fn wait_with(self, policy: Policy) -> Result<Admitted<H, K>, Refused<H, K>> {
        if let Some(limit) = self.parts().key.too_heavy() {
            let weight = self.weight();
            return Err(self.refuse(|limiter, _| LimitError::TooHeavy {
                limiter,
                limit,
                weight,
            }));
        }
        #[cfg(feature = "redis")]
        if self.remote().is_some() {
            return self.wait_remote(policy).await;
        }
        if policy.max_wait == Some(Duration::ZERO) {
            return Err(self.refuse(|limiter, limit| LimitError::NoPermit { limiter, limit }));
        }
        let (mut queued, wait) = self.join_line(policy)?;
        let held = match policy.max_wait {
            None => observe::in_wait_span!(wait, wait_in_line!(queued)),
            Some(max_wait) => {
                let Ok(held) = observe::in_wait_span!(
                    wait,
                    tokio::time::timeout(max_wait, async { wait_in_line!(queued) }).await
                ) else {
                    return Err(queued.timed_out(max_wait));
                };
                held
            }
        };
        Ok(queued.leave().admitted(held, Some(wait)))
    }

    /// Joins the line under `policy`'s `queue` bound, or is refused.
    fn join_line(self, policy: Policy) -> Result<(Queued<H, K>, WaitObservation), Refused<H, K>> {
        Queued::enter(self, policy.queue, false).map_err(|call| {
            let queue = policy.queue.unwrap_or_default();
            call.refuse(|limiter, limit| LimitError::QueueFull {
                limiter,
                limit,
                queue,
            })
        })
    }

    /// The backend of a shared limiter, for a call of its own permits (keyed calls stay in
    /// this process).
    #[cfg(feature = "redis")]
    #[inline]
    fn remote(&self) -> Option<&dyn Backend> {
        let parts = self.parts();
        if parts.keyed() {
            None
        } else {
            parts.core().backend()
        }
    }

    /// The wait for this call's permits from its limiter's backend, if it has one.
    #[cfg(feature = "redis")]
    fn admission(&self, ask: Ask) -> Option<Admission> {
        self.remote()
            .map(|backend| backend.admit(self.weight(), ask))
    }

    /// [`wait_with`](Self::wait_with), for a shared limiter: the wait is the backend's, in
    /// line with the other processes' calls. `max_wait = 0` asks once whether the permits
    /// are free (one round trip) and joins no line.
    #[cfg(feature = "redis")]
    async fn wait_remote(self, policy: Policy) -> Result<Admitted<H, K>, Refused<H, K>> {
        if policy.max_wait == Some(Duration::ZERO) {
            let Some(admission) = self.admission(Ask::Now) else {
                unreachable!("limit-runtime: a shared call without its backend");
            };
            return match admission.await {
                Some(grant) => Ok(self.granted(grant, None)),
                None => Err(self.refuse(|limiter, limit| LimitError::NoPermit { limiter, limit })),
            };
        }
        let (queued, wait) = self.join_line(policy)?;
        let Some(admission) = queued.call.admission(Ask::WaitOrRefuse) else {
            unreachable!("limit-runtime: a shared call without its backend");
        };
        let grant = match policy.max_wait {
            None => observe::in_wait_span!(wait, admission.await),
            Some(max_wait) => {
                let Ok(grant) =
                    observe::in_wait_span!(wait, tokio::time::timeout(max_wait, admission).await)
                else {
                    return Err(queued.timed_out(max_wait));
                };
                grant
            }
        };
        match grant {
            Some(grant) => Ok(queued.leave().granted(grant, Some(wait))),
            // The backend is unreachable, and refuses such calls meanwhile.
            None => Err(queued
                .leave()
                .refuse(|limiter, limit| LimitError::NoPermit { limiter, limit })),
        }
    }

    /// The fast path: true if a permit was free, and then the call is counted as admitted
    /// (one lookup of the core serves both); make it [`into_admitted`](Self::into_admitted).
    /// Not a public API.
    #[doc(hidden)]
    #[expect(
        clippy::inline_always,
        reason = "measured: out of line, a waiting call's first poll pays a call for one test"
    )]
    #[inline(always)]
    pub fn poll_fast(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.parts().key.too_heavy().is_some() {
            return Poll::Ready(false); // refused by `wait_with`
        }
        let parts = self.parts();
        let core = parts.core();
        let weight = parts.weight();
        let Some(held) = std::task::ready!(fast_path(cx, parts.gate(core), weight)) else {
            return Poll::Ready(false);
        };
        core.admitted(held, parts.keyed(), weight, None);
        Poll::Ready(true)
    }

    /// The guard of a call that [`poll_fast`](Self::poll_fast) admitted. Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn into_admitted(mut self) -> Admitted<H, K> {
        let parts = self.take();
        // It has moved on: nothing is left in it to drop.
        std::mem::forget(self);
        Admitted {
            parts,
            fence: Fence::default(),
        }
    }

    /// Takes a permit if one is free now.
    pub(crate) fn try_admit(self) -> Result<Admitted<H, K>, Refused<H, K>> {
        if let Some(limit) = self.parts().key.too_heavy() {
            let weight = self.weight();
            return Err(self.refuse(|limiter, _| LimitError::TooHeavy {
                limiter,
                limit,
                weight,
            }));
        }
        let weight = self.weight();
        let held = if weight == 0 {
            Some(self.gate().held())
        } else {
            #[cfg(feature = "redis")]
            if let Some(backend) = self.remote() {
                return match backend.try_admit(weight) {
                    Some(grant) => Ok(self.granted(grant, None)),
                    None => {
                        Err(self.refuse(|limiter, limit| LimitError::NoPermit { limiter, limit }))
                    }
                };
            }
            self.gate().try_acquire(weight)
        };
        match held {
            Some(held) => Ok(self.admitted(held, None)),
            None => Err(self.refuse(|limiter, limit| LimitError::NoPermit { limiter, limit })),
        }
    }

    fn refuse(self, variant: impl FnOnce(Name, usize) -> LimitError) -> Refused<H, K> {
        let error = self.core().refusal(self.gate(), variant);
        Refused { error, _call: self }
    }

    /// Turns a call whose permit was just acquired into its running guard. `held` is the
    /// count of permits its gate held right after; `wait` is its wait, if it had to.
    #[inline]
    fn admitted(mut self, held: usize, wait: Option<WaitObservation>) -> Admitted<H, K> {
        let parts = self.take();
        std::mem::forget(self);
        parts
            .core()
            .admitted(held, parts.keyed(), parts.weight(), wait);
        Admitted {
            parts,
            fence: Fence::default(),
        }
    }

    /// [`admitted`](Self::admitted), for permits a backend granted: with their fencing
    /// token, if they are a lease.
    #[cfg(feature = "redis")]
    fn granted(self, grant: Grant, wait: Option<WaitObservation>) -> Admitted<H, K> {
        let mut admitted = self.admitted(grant.held, wait);
        admitted.fence = grant.fence;
        admitted
    }
}

impl<H: Handle, K: Claim> Drop for Call<H, K> {
    #[inline]
    fn drop(&mut self) {
        if let Some(parts) = &self.parts {
            parts.core().exit(parts.key.slot());
        }
    }
}

/// A call that `max_wait` or `queue` refused. It still holds the call, which stays in flight
/// until the function's future completes, after the error has been converted. Not a public
/// API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Refused<H: Handle, K: Claim = Unkeyed> {
    error: LimitError,
    _call: Call<H, K>,
}

impl<H: Handle, K: Claim> Refused<H, K> {
    /// Why the call was refused.
    #[doc(hidden)]
    #[must_use]
    pub fn error(&self) -> LimitError {
        self.error.clone()
    }
}

/// Where a queued call waits: at the back of the line, at the front (where a shrink sent
/// it back, see `gate.rs`), or either, known at run time (`bool`: at the front). `Back` and
/// `Front` take no space, so a queued call that knows its place statically is its call alone:
/// one pointer for a limiter per instance.
pub trait Place {
    /// Whether the call waits at the front.
    fn at_front(&self) -> bool;
}

/// At the back of the line. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Back;

/// At the front of the line. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Front;

impl Place for Back {
    fn at_front(&self) -> bool {
        false
    }
}

impl Place for Front {
    fn at_front(&self) -> bool {
        true
    }
}

impl Place for bool {
    fn at_front(&self) -> bool {
        *self
    }
}

/// A call queued at its gate, from `Gate::enqueue` until it leaves: admitted, timed out, or
/// dropped. It owns the call (a zero-sized one, for most calls, but for the byte that says
/// whether it has moved on), so it adds nothing to the future but its place.
struct Queued<H: Handle, K: Claim, P: Place = bool> {
    call: Call<H, K>,
    place: P,
}

impl<H: Handle, K: Claim, P: Place> Queued<H, K, P> {
    /// Queues `call` at its gate, at `place`, unless `bound` calls already wait there. The
    /// wait's observation comes back beside the queued call rather than inside it, so that
    /// the admission can take it over (`Queued` has a `Drop`, so nothing moves out of it).
    #[inline]
    fn enter(
        call: Call<H, K>,
        bound: Option<usize>,
        place: P,
    ) -> Result<(Self, WaitObservation), Call<H, K>> {
        if call.gate().enqueue(bound) {
            let wait = observe::waiting_started(|| (call.core(), call.gate()));
            Ok((Self { call, place }, wait))
        } else {
            Err(call)
        }
    }

    #[inline]
    fn parts(&self) -> &Parts<H, K> {
        self.call.parts()
    }

    fn gate(&self) -> &Gate {
        self.call.gate()
    }

    fn weight(&self) -> usize {
        self.call.weight()
    }

    /// Waits in line, at this call's place, for its permits.
    #[inline]
    fn next_permit(&self) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        let parts = self.parts();
        parts
            .key
            .next_permit(parts.gate(parts.core()), self.place.at_front())
    }

    /// Leaves the queue after `max_wait` passed without a permit: the call's refusal.
    fn timed_out(self, max_wait: Duration) -> Refused<H, K> {
        self.leave().refuse(|limiter, limit| LimitError::Timeout {
            limiter,
            limit,
            waited: max_wait,
        })
    }

    /// Leaves the queue, giving up, and gives the call back.
    fn leave(self) -> Call<H, K> {
        let at_front = self.place.at_front();
        self.leave_from(at_front)
    }

    fn leave_from(mut self, at_front: bool) -> Call<H, K> {
        let parts = self.parts();
        let core = parts.core();
        parts.gate(core).leave(at_front, parts.weight());
        observe::left_queue(|| core);
        Call {
            parts: Some(self.call.take()),
        }
    }

    /// The waiter was handed its permits (`permit`): it is admitted, and leaves the line; or
    /// it is now at the front of the line (`Err`), and stays in it.
    #[inline]
    fn admit_handed(
        &mut self,
        permit: Result<(), AcquireError>,
        wait: WaitObservation,
    ) -> Result<Admitted<H, K>, WaitObservation> {
        let parts = self.parts();
        let core = parts.core();
        let gate = parts.gate(core);
        let weight = parts.weight();
        match gate.take_handed(permit, self.place.at_front(), weight) {
            Handed::Admitted(held) => {
                // The gate counts an admitted waiter as leaving from the back.
                gate.leave(false, weight);
                observe::left_queue(|| core);
                core.admitted(held, parts.keyed(), weight, Some(wait));
                Ok(Admitted {
                    parts: self.call.take(),
                    fence: Fence::default(),
                })
            }
            Handed::Front => Err(wait),
        }
    }
}

impl<H: Handle, K: Claim> Queued<H, K, Back> {
    /// The same call, now waiting at the front: it stays in the queue.
    fn into_front(mut self) -> Queued<H, K, Front> {
        Queued {
            call: Call {
                parts: Some(self.call.take()),
            },
            place: Front,
        }
    }
}

impl<H: Handle, K: Claim, P: Place> Drop for Queued<H, K, P> {
    fn drop(&mut self) {
        if let Some(parts) = &self.call.parts {
            let core = parts.core();
            parts
                .gate(core)
                .leave(self.place.at_front(), parts.weight());
            observe::left_queue(|| core);
        }
    }
}

/// What [`Call::wait`] comes to: admitted, or sent to the front of the line by a shrink,
/// where [`AtFront::wait`] goes on waiting. Two futures rather than one loop, so that each
/// knows its place from its type, and a waiting call's future holds its call and nothing
/// beside it. Not a public API.
#[doc(hidden)]
#[derive(Debug)]
pub enum Step<H: Handle, K: Claim = Unkeyed> {
    /// Admitted.
    Admitted(Admitted<H, K>),
    /// Waiting at the front of the line.
    Front(AtFront<H, K>),
}

/// A call waiting at the front of the line. Not a public API.
#[doc(hidden)]
pub struct AtFront<H: Handle, K: Claim = Unkeyed> {
    queued: Queued<H, K, Front>,
    wait: WaitObservation,
}

impl<H: Handle, K: Claim> std::fmt::Debug for AtFront<H, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtFront").finish_non_exhaustive()
    }
}

impl<H: Handle, K: Claim> AtFront<H, K> {
    /// Waits at the front of the line until admitted. Not a public API.
    #[doc(hidden)]
    pub fn wait(self) -> impl Future<Output = Admitted<H, K>> {
        let Self {
            mut queued,
            mut wait,
        } = self;
        async move {
            loop {
                let permit = observe::in_wait_span!(wait, handed(queued.next_permit().await));
                match queued.admit_handed(permit, wait) {
                    Ok(admitted) => return admitted,
                    Err(still) => wait = still,
                }
            }
        }
    }
}

/// An admitted call: it holds one of the limit's places until dropped. Not a public API;
/// [`Permit`] is its public face.
#[doc(hidden)]
#[must_use = "the place is given back as soon as this guard is dropped"]
pub struct Admitted<H: Handle, K: Claim = Unkeyed> {
    parts: Parts<H, K>,
    /// The permits' fencing token, if they are a fleet's lease (nothing without the `redis`
    /// feature).
    fence: Fence,
}

impl<H: Handle, K: Claim> Admitted<H, K> {
    /// The body starts: a [`Sampled`] call of an adaptive limit is stamped. The attribute
    /// calls it first thing in the body of a sampled call, in the poll that admits the call
    /// (or, after `admitted()`, the body's first poll: the body's time starts there). Here,
    /// not in the admission's code, which every call runs: there the stamp's mere presence
    /// made a call of a fixed limit given by `limiter = …` 38 instructions dearer
    /// (`scripts/instructions.sh borrowed`). Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn start(&mut self) {
        if K::SAMPLED && self.parts.handle.limiter().is_adaptive() {
            self.stamp();
        }
    }

    /// [`start`](Self::start)'s stamp, out of line.
    #[inline(never)]
    fn stamp(&mut self) {
        let core = self.parts.handle.limiter().core();
        let held = self.parts.key.gate(core).held();
        self.parts.key.stamp(core, held);
    }

    /// The body returned `overloaded` (or not): for a call of an adaptive limit, its sample.
    /// The attribute calls it after the body of a [`Sampled`] call, so a call that is
    /// cancelled or panics never reaches it. Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn complete(&mut self, overloaded: bool) {
        if let Some(stamp) = self.parts.key.take_stamp() {
            let core = self.parts.core();
            core.sample(self.parts.key.slot(), stamp, overloaded);
        }
    }

    /// The call's fencing token, for the body's polls (`limited.rs`).
    #[inline]
    pub(crate) fn fence(&self) -> Fence {
        self.fence
    }
}

impl<H: Handle, K: Claim> Drop for Admitted<H, K> {
    /// Gives the place back, then ends the call (so a drain that returns finds every place
    /// returned): one lookup of the core for both.
    #[inline]
    fn drop(&mut self) {
        let parts = &self.parts;
        let core = parts.core();
        core.released(parts.gate(core), parts.keyed(), parts.weight());
        core.exit(parts.key.slot());
    }
}

impl<H: Handle, K: Claim> std::fmt::Debug for Admitted<H, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("limiter", self.parts.core().name())
            .field("fence", &self.fence)
            .finish()
    }
}

/// What `overloaded = EXPR` says of a call's output: `EXPR(output)`. A function, so that a
/// closure's argument type is inferred from the output's, and a function of the wrong type
/// is one error at `EXPR`. Not a public API.
#[doc(hidden)]
#[inline]
pub fn overloaded<T: ?Sized>(output: &T, is_overloaded: impl FnOnce(&T) -> bool) -> bool {
    is_overloaded(output)
}

/// A permit of a [`Limiter`], borrowed from it: while it lives, it takes one of the limit's
/// places, and it counts as a call in flight for [`drain()`](crate::drain). Dropping it gives
/// the place back (to the next waiter, in FIFO order) and then ends the call. From
/// [`Limiter::acquire`] and [`Limiter::try_acquire`]; [`OwnedPermit`] holds an `Arc` instead.
///
/// ```
/// use limit_runtime::Limiter;
///
/// static ONE: Limiter = Limiter::new(1);
///
/// let permit = ONE.try_acquire().unwrap();
/// assert!(ONE.try_acquire().is_err());
/// drop(permit);
/// assert!(ONE.try_acquire().is_ok());
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a>(Admitted<&'a Limiter, Weighted>);

impl<'a> Permit<'a> {
    pub(crate) fn new(admitted: Admitted<&'a Limiter, Weighted>) -> Self {
        Self(admitted)
    }

    /// How many of the limit's permits it holds: 1 from [`Limiter::acquire`], `n` from
    /// [`Limiter::acquire_many`].
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static BYTES: Limiter = Limiter::new(10);
    /// assert_eq!(BYTES.try_acquire_many(4).unwrap().permits(), 4);
    /// ```
    #[must_use]
    pub fn permits(&self) -> usize {
        self.0.parts.weight()
    }

    /// The limiter this permit belongs to.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static ONE: Limiter = Limiter::new(1).with_name("one");
    /// assert_eq!(ONE.try_acquire().unwrap().limiter().name(), "one");
    /// ```
    #[must_use]
    pub fn limiter(&self) -> &'a Limiter {
        self.0.parts.handle
    }

    /// The permit's [fencing token](crate::redis::FencingToken), if its limiter is shared by
    /// a [`Fleet`](crate::redis::Fleet) and the permit is a lease there: `None` for a
    /// limiter that is not shared, and for a permit that
    /// [`OnUnreachable::Local`](crate::redis::OnUnreachable::Local) admitted without one.
    /// Pass it to a downstream that checks tokens, so that it can refuse a write from a
    /// holder whose lease has passed to someone else.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static LOCAL: Limiter = Limiter::new(1);
    /// assert_eq!(LOCAL.try_acquire().unwrap().fencing_token(), None); // not shared
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn fencing_token(&self) -> Option<crate::redis::FencingToken> {
        self.0.fence
    }
}

impl std::fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("limiter", &self.limiter().name())
            .finish()
    }
}

/// A permit of a [`Limiter`] in an `Arc`: like [`Permit`], but it holds the `Arc`, so it is
/// `Send + 'static` and moves into a spawned task. From [`Limiter::acquire_owned`] and
/// [`Limiter::try_acquire_owned`].
///
/// ```
/// use limit_runtime::Limiter;
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limiter = Arc::new(Limiter::new(1));
/// let permit = Arc::clone(&limiter).acquire_owned().await;
/// let task = tokio::spawn(async move {
///     let _permit = permit; // held until the task ends
/// });
/// task.await.unwrap();
/// assert_eq!(limiter.running(), 0);
/// # }
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct OwnedPermit(Admitted<Arc<Limiter>, Weighted>);

impl OwnedPermit {
    pub(crate) fn new(admitted: Admitted<Arc<Limiter>, Weighted>) -> Self {
        Self(admitted)
    }

    /// How many of the limit's permits it holds: 1 from [`Limiter::acquire_owned`], `n`
    /// from [`Limiter::acquire_many_owned`].
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// let bytes = Arc::new(Limiter::new(10));
    /// assert_eq!(bytes.try_acquire_many_owned(3).unwrap().permits(), 3);
    /// ```
    #[must_use]
    pub fn permits(&self) -> usize {
        self.0.parts.weight()
    }

    /// The limiter this permit belongs to.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// let limiter = Arc::new(Limiter::new(1).with_name("one"));
    /// let permit = limiter.try_acquire_owned().unwrap();
    /// assert_eq!(permit.limiter().name(), "one");
    /// ```
    #[must_use]
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.0.parts.handle
    }

    /// The permit's [fencing token](crate::redis::FencingToken), if its limiter is shared by
    /// a [`Fleet`](crate::redis::Fleet) and the permit is a lease there: `None` for a
    /// limiter that is not shared, and for a permit that
    /// [`OnUnreachable::Local`](crate::redis::OnUnreachable::Local) admitted without one.
    /// Pass it to a downstream that checks tokens, so that it can refuse a write from a
    /// holder whose lease has passed to someone else.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// assert_eq!(std::sync::Arc::new(Limiter::new(1)).try_acquire_owned().unwrap().fencing_token(), None); // not shared
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn fencing_token(&self) -> Option<crate::redis::FencingToken> {
        self.0.fence
    }
}

impl std::fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("limiter", &self.limiter().name())
            .finish()
    }
}
