//! The fencing token a call carries: [`FencingToken`] (public under `limit_runtime::redis`),
//! kept by a call's guard (`call::Admitted`) and its future (`limited.rs`), and the
//! thread-local that lets a body read its own with [`fencing_token()`].
//!
//! A running body is [`Fenced`]: with the `redis` feature, the body's future beside its
//! token, set as the thread's current token around each of its polls; without it, the body's
//! future itself, and a call's [`Fence`] is empty. So a build without the feature runs the
//! very code it ran before tokens existed (an empty field beside the body, in the call's
//! pinned state, measurably cost the uncontended path 5 instructions).

#[cfg(feature = "redis")]
use std::cell::Cell;
#[cfg(feature = "redis")]
use std::fmt;
#[cfg(feature = "redis")]
use std::future::Future;
#[cfg(feature = "redis")]
use std::num::NonZeroU64;
#[cfg(feature = "redis")]
use std::pin::Pin;
#[cfg(feature = "redis")]
use std::task::{Context, Poll};

/// What a call keeps of its admission for fencing: its token, if its permits are a fleet's
/// lease.
#[cfg(feature = "redis")]
pub type Fence = Option<FencingToken>;
/// What a call keeps of its admission for fencing: nothing, without the `redis` feature.
#[cfg(not(feature = "redis"))]
pub type Fence = NoFence;

/// No token: a call's [`Fence`] without the `redis` feature. A type of its own rather than
/// `()`, so that code written for both builds passes it around as a value.
/// Not a public API: public only because the hidden `Outcome` trait of the expansion's
/// machinery returns it.
#[cfg(not(feature = "redis"))]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFence;

/// A fleet permit's fencing token: `(epoch, sequence)`, ordered by epoch, then sequence.
///
/// Every grant of a shared limiter's permits takes the next sequence number of the
/// limiter's current epoch, and a new epoch begins when the server has lost the limiter's
/// keys (a restart without its data), later than every earlier one. So a token granted later
/// is greater, and a downstream that remembers the greatest token it has accepted can reject
/// a write carrying a smaller one: a holder that was paused past its lease, whose permits
/// went to someone else meanwhile, is turned away there rather than trusted. A lease is
/// only a promise about time; the token is what a downstream can check.
///
/// Read it with [`Permit::fencing_token`](crate::Permit::fencing_token) (or
/// [`OwnedPermit::fencing_token`](crate::OwnedPermit::fencing_token)), or inside the body of
/// an annotated function with [`fencing_token()`]. It shows as `epoch.sequence`.
///
/// ```
/// use limit_runtime::redis::FencingToken;
///
/// let first = FencingToken::new(1_764_633_600_000, 41);
/// let next = FencingToken::new(1_764_633_600_000, 42);
/// let after_a_restart = FencingToken::new(1_764_640_000_000, 1);
/// assert!(first < next && next < after_a_restart);
/// assert_eq!(next.to_string(), "1764633600000.42");
/// assert_eq!((next.epoch(), next.sequence()), (1_764_633_600_000, 42));
/// ```
#[cfg(feature = "redis")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken {
    // Field order is the order of tokens: the derived `Ord` compares the epoch first.
    epoch: u64,
    sequence: NonZeroU64,
}

#[cfg(feature = "redis")]
impl FencingToken {
    /// The token `epoch.sequence`, as a downstream that stored one would make it again.
    ///
    /// # Panics
    ///
    /// If `sequence` is 0: the fleet numbers its grants from 1.
    ///
    /// ```
    /// use limit_runtime::redis::FencingToken;
    ///
    /// assert_eq!(FencingToken::new(7, 3).to_string(), "7.3");
    /// ```
    #[must_use]
    pub fn new(epoch: u64, sequence: u64) -> Self {
        let sequence = NonZeroU64::new(sequence).expect("a fencing token's sequence starts at 1");
        Self { epoch, sequence }
    }

    /// A token from the server's numbers; `None` for a sequence of 0 (none was given).
    pub(crate) fn from_parts(epoch: u64, sequence: u64) -> Option<Self> {
        Some(Self {
            epoch,
            sequence: NonZeroU64::new(sequence)?,
        })
    }

    /// The epoch: when the server's copy of the limiter began, in milliseconds of the
    /// server's clock since the Unix epoch (or one more than the epoch before it).
    ///
    /// ```
    /// use limit_runtime::redis::FencingToken;
    ///
    /// assert_eq!(FencingToken::new(7, 3).epoch(), 7);
    /// ```
    #[must_use]
    pub fn epoch(self) -> u64 {
        self.epoch
    }

    /// The grant's number within its epoch, from 1.
    ///
    /// ```
    /// use limit_runtime::redis::FencingToken;
    ///
    /// assert_eq!(FencingToken::new(7, 3).sequence(), 3);
    /// ```
    #[must_use]
    pub fn sequence(self) -> u64 {
        self.sequence.get()
    }
}

#[cfg(feature = "redis")]
impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.sequence)
    }
}

#[cfg(feature = "redis")]
thread_local! {
    /// The token of the call whose body this thread is polling.
    static CURRENT: Cell<Option<FencingToken>> = const { Cell::new(None) };
}

/// The fencing token of the call whose body is running, inside the body of a
/// `#[concurrency_limit]` function whose limiter is shared by a
/// [`Fleet`](crate::redis::Fleet): the innermost such call's, when one body awaits another
/// (a call of a limiter that is not shared, awaited inside, leaves it as it is). `None`
/// outside such a body, and inside a task the body spawned (the token belongs to the body's
/// own polls, on whatever thread they run).
///
/// A call admitted by [`OnUnreachable::Local`](crate::redis::OnUnreachable::Local) holds no
/// lease and has no token: its body sees the token of an enclosing shared call, if any, and
/// otherwise `None`.
///
/// ```
/// use limit_runtime::concurrency_limit;
/// use limit_runtime::redis::fencing_token;
///
/// #[concurrency_limit(2, name = "ledger-writes")]
/// async fn write(entry: &str) -> Option<String> {
///     // With the limiter shared, the write would carry the token, and the ledger would
///     // refuse a token smaller than the last it accepted.
///     fencing_token().map(|token| format!("{entry} @ {token}"))
/// }
///
/// # futures::executor::block_on(async {
/// assert_eq!(write("credit 5").await, None); // not shared: no token
/// assert_eq!(fencing_token(), None); // outside a body
/// # });
/// ```
#[cfg(feature = "redis")]
#[must_use]
pub fn fencing_token() -> Option<FencingToken> {
    CURRENT.with(Cell::get)
}

#[cfg(feature = "redis")]
pin_project_lite::pin_project! {
    /// A call's body, polled with its token as the thread's current one.
    pub(crate) struct Fenced<B> {
        #[pin]
        body: B,
        fence: Fence,
    }
}

/// A call's body, polled with its token as the thread's current one: without the `redis`
/// feature, the body itself.
#[cfg(not(feature = "redis"))]
pub(crate) type Fenced<B> = B;

/// The body `body` of a call admitted with `fence`.
#[cfg(feature = "redis")]
#[inline]
pub(crate) fn fenced<B>(body: B, fence: Fence) -> Fenced<B> {
    Fenced { body, fence }
}

/// The body `body` of a call admitted with `fence`: without the `redis` feature, itself.
#[cfg(not(feature = "redis"))]
#[inline]
pub(crate) fn fenced<B>(body: B, _fence: Fence) -> Fenced<B> {
    body
}

#[cfg(feature = "redis")]
impl<B: Future> Future for Fenced<B> {
    type Output = B::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        let this = self.project();
        polled(*this.fence, || this.body.poll(cx))
    }
}

/// Runs `poll` (a poll of a call's body) with the call's token as the thread's current one,
/// and puts back the one before, even if `poll` panics (a body polled inside another's).
#[cfg(feature = "redis")]
#[inline]
fn polled<R>(fence: Fence, poll: impl FnOnce() -> R) -> R {
    struct Restore(Option<FencingToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    // A call without a token (a limiter that is not shared) does not touch the thread-local:
    // inside a shared call's body, its body sees the shared call's token, the innermost one.
    if fence.is_none() {
        return poll();
    }
    let _restore = Restore(CURRENT.with(|current| current.replace(fence)));
    poll()
}
