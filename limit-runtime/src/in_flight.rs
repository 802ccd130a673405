//! In-flight accounting for one limiter: how many of its calls exist right now, and the
//! handshake that lets a drain wait for that number to reach zero without missing the moment.
//!
//! The hot path is one read-modify-write on entry and one on exit, on a word that belongs to
//! this limiter alone, so independent limiters on different cores never share a cache line.
//! Only the exit that brings the count to zero looks further, and it notifies only when a
//! drain is actually waiting: the pattern of tokio-util's `TaskTracker`.

use std::pin::pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use tokio::sync::Notify;

/// Low half of `state`: calls in flight.
const COUNT_MASK: u64 = u32::MAX as u64;
/// One entry: one more call in flight, and one more call ever entered (the high half).
const ENTER: u64 = 1 | (1 << 32);
/// Marks `idle_at` as holding a value (it starts out empty).
const IDLE_AT_SET: u64 = 1 << 63;

/// A consistent reading of one limiter's accounting word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Calls in flight at the moment of the reading.
    pub(crate) in_flight: u32,
    /// Calls entered since the limiter was created, wrapping. Two readings with the same
    /// value and no call in flight prove the limiter stayed idle between them.
    pub(crate) entered: u32,
}

impl Snapshot {
    fn from_word(word: u64) -> Self {
        Self {
            // Truncation is the point: the word packs two 32-bit halves.
            in_flight: (word & COUNT_MASK) as u32,
            entered: (word >> 32) as u32,
        }
    }
}

/// Counts the calls of one limiter and wakes drains when the count reaches zero.
pub(crate) struct InFlight {
    /// Calls in flight (low half) and calls ever entered (high half), so that one
    /// `fetch_add` on entry updates both.
    state: AtomicU64,
    /// Drains registered on this limiter. An exit that reaches zero notifies only when this
    /// is non-zero. Entry/exit and registration form a store-buffer pattern, so every access
    /// on both sides is `SeqCst`: either the drain sees the exit, or the exit sees the drain.
    drainers: AtomicUsize,
    /// `entered` at the latest return to zero that a registered drain could have been waiting
    /// for, tagged with `IDLE_AT_SET`. A drain that registered when `entered` was `e` knows
    /// that the count was zero after it registered exactly when this is at or past `e`.
    idle_at: AtomicU64,
    idle: Notify,
}

impl InFlight {
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            drainers: AtomicUsize::new(0),
            idle_at: AtomicU64::new(0),
            idle: Notify::const_new(),
        }
    }

    /// Registers one more call in flight.
    #[inline]
    pub(crate) fn enter(&self) {
        let prev = self.state.fetch_add(ENTER, SeqCst);
        if prev & COUNT_MASK == COUNT_MASK {
            // 2^32 live calls cannot fit in memory; the check only keeps a corrupted word
            // from ever being observed.
            self.state.fetch_sub(ENTER, SeqCst);
            panic!("limit-runtime: more than {} calls in flight on one limiter", u32::MAX);
        }
    }

    /// Registers that one call stopped being in flight.
    #[inline]
    pub(crate) fn exit(&self) {
        let prev = self.state.fetch_sub(1, SeqCst);
        if prev & COUNT_MASK == 1 {
            self.reached_zero(Snapshot::from_word(prev).entered);
        }
    }

    #[cold]
    #[inline(never)]
    fn reached_zero(&self, entered: u32) {
        if self.drainers.load(SeqCst) == 0 {
            return;
        }
        // Keep the newest zero moment: two exits may publish out of order.
        let _ = self.idle_at.fetch_update(SeqCst, SeqCst, |current| {
            let newer = current & IDLE_AT_SET == 0 || is_at_or_after(entered, current as u32);
            newer.then_some(IDLE_AT_SET | u64::from(entered))
        });
        self.idle.notify_waiters();
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::from_word(self.state.load(SeqCst))
    }

    /// Waits until the count is zero, or has been zero at some moment since the first poll.
    ///
    /// Cancel-safe: dropping the future unregisters it. It cannot miss the moment, because
    /// it registers (and enables its `Notified`) before it reads the count.
    pub(crate) async fn wait_idle(&self) {
        let _registered = Registration::new(&self.drainers);
        let since = self.snapshot();
        if since.in_flight == 0 {
            return;
        }
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.was_idle_since(since.entered) {
                return;
            }
            notified.await;
        }
    }

    fn was_idle_since(&self, entered: u32) -> bool {
        if self.snapshot().in_flight == 0 {
            return true;
        }
        let idle_at = self.idle_at.load(SeqCst);
        idle_at & IDLE_AT_SET != 0 && is_at_or_after(idle_at as u32, entered)
    }
}

/// Whether entry count `a` is at or after `b`, for counts that wrap at 2^32 and are
/// compared within 2^31 entries of each other.
fn is_at_or_after(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) < 1 << 31
}

/// One drain registered on an `InFlight`, for as long as it lives.
struct Registration<'a>(&'a AtomicUsize);

impl<'a> Registration<'a> {
    fn new(drainers: &'a AtomicUsize) -> Self {
        drainers.fetch_add(1, SeqCst);
        Self(drainers)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::Poll;

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        future.poll(&mut std::task::Context::from_waker(waker))
    }

    #[test]
    fn snapshot_counts_in_flight_and_entered() {
        let counter = InFlight::new();
        counter.enter();
        counter.enter();
        counter.exit();
        assert_eq!(
            counter.snapshot(),
            Snapshot {
                in_flight: 1,
                entered: 2
            }
        );
    }

    #[test]
    fn wait_idle_is_ready_at_once_when_nothing_is_in_flight() {
        let counter = InFlight::new();
        let mut wait = pin!(counter.wait_idle());
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    #[test]
    fn wait_idle_completes_on_a_zero_moment_even_if_a_call_starts_right_after() {
        let counter = InFlight::new();
        counter.enter();
        let mut wait = pin!(counter.wait_idle());
        assert!(poll_once(wait.as_mut()).is_pending());
        counter.exit();
        counter.enter();
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    #[test]
    fn a_zero_moment_before_registration_does_not_count() {
        let counter = InFlight::new();
        // A drain elsewhere makes exits publish their zero moments.
        counter.enter();
        let mut other = pin!(counter.wait_idle());
        assert!(poll_once(other.as_mut()).is_pending());
        counter.exit();
        counter.enter();
        let mut wait = pin!(counter.wait_idle());
        assert!(poll_once(wait.as_mut()).is_pending());
        counter.exit();
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    #[test]
    fn wrapping_comparison() {
        assert!(is_at_or_after(5, 5));
        assert!(is_at_or_after(6, 5));
        assert!(!is_at_or_after(4, 5));
        assert!(is_at_or_after(2, u32::MAX));
        assert!(!is_at_or_after(u32::MAX, 2));
    }
}
