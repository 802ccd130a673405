//! The seam where a limiter's permits come from somewhere other than its own gate: a
//! [`Backend`] installed in a [`Core`](crate::core::Core). One implementation today, the
//! Redis fleet (`redis/link.rs`), behind the `redis` feature; without the feature this module
//! is not compiled, and nothing in the core refers to it.
//!
//! What stays local whatever the backend: a call's counting in flight (`drain()`), its place
//! in the local count of waiters (so `queue = N` bounds this process's waiters), keyed calls,
//! and every observation hook. What the backend owns: the limit, the permits this process
//! holds, the wait for more, and giving them back.
//!
//! The local gate of a limiter with a backend is *parked* (its limit is 0), so the fast path,
//! which knows nothing of backends, finds no permit and sends every weighted call to the slow
//! path, where `call.rs` asks [`Core::backend`](crate::core::Core::backend). A limiter without
//! one pays nothing on the way in, and one `OnceLock` load on the way out (`Core::released`).

use std::future::Future;
use std::pin::Pin;

use crate::fence::Fence;
use crate::stats::SharedStats;

/// A wait for permits: `Some` once they are held, `None` when the call is refused (see
/// [`Ask`]). Dropping it gives up the wait, and the permits if they were granted meanwhile.
pub(crate) type Admission = Pin<Box<dyn Future<Output = Option<Grant>> + Send + 'static>>;

/// Permits a backend granted a call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grant {
    /// This process's permits of the limiter right after.
    pub(crate) held: usize,
    /// Their fencing token, if they are a lease (not for a local fallback's).
    pub(crate) fence: Fence,
}

/// What a call asks of a backend, and so when it may be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// The permits if they are free now; it never joins the line (`try_acquire`,
    /// `max_wait = 0`). Refused when they are not.
    Now,
    /// A place in line until admitted: a call that cannot be refused (no `max_wait` or
    /// `queue`). Never refused.
    Wait,
    /// A place in line, for a call that can be refused (`max_wait`, `queue`): refused when
    /// the backend cannot be reached and its settings say to refuse then.
    WaitOrRefuse,
}

/// Where a shared limiter's permits come from. Every method but [`admit`](Self::admit) and
/// [`try_admit`](Self::try_admit) returns at once.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The limit in force, as last learned.
    fn limit(&self) -> usize;
    /// Permits this process holds now.
    fn held(&self) -> usize;
    /// Sets the limit for every process, and returns at once.
    fn set_limit(&self, limit: usize);
    /// Waits for `weight` permits, as `ask` says: in line with every other process's calls,
    /// or only if they are free now.
    fn admit(&self, weight: usize, ask: Ask) -> Admission;
    /// Takes `weight` permits if they are free now, blocking this thread for the answer.
    fn try_admit(&self, weight: usize) -> Option<Grant>;
    /// Gives back `weight` permits that a call held; returns at once.
    fn release(&self, weight: usize);
    /// What `Stats::fleet` shows.
    fn stats(&self) -> SharedStats;
}
