//! In-flight accounting: how many calls of one limiter exist right now, and the handshake that
//! lets a drain wait for that number to reach zero without missing the moment.
//!
//! The same type counts at two levels. Each limiter counts its calls. The process counts
//! *busy limiters*, so that the process-wide `drain()` can see the moment when nothing at
//! all is in flight, without a process-wide write on every call: a limiter stays marked as
//! busy after its calls end (the mark is lazy) and is unmarked only while a drain is
//! pending, by its last call out or by the drain itself. So in steady state a call touches
//! only its own limiter's word: one read-modify-write on entry and one on exit, as in
//! tokio-util's `TaskTracker`.
//!
//! A call that brings its limiter's count to zero must find out whether a drain waits for
//! that moment, at its limiter's level or at the process's. It reads one word for both: the
//! process counts every drain registered anywhere (`watchers`, beside its own `drainers`),
//! and only when that is not zero does the exit look at which drains they are. A drain counts
//! itself there after its own `drainers` and before it reads the count it waits on, so an exit
//! that sees it also sees its `drainers`.

use std::pin::pin;
use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicU64, AtomicUsize, Notify, const_fn, seq_cst_pair};

/// Bits 0..32 of `state`: calls in flight.
const COUNT_MASK: u64 = u32::MAX as u64;
/// Bit 32 of a limiter's `state`: the limiter is counted as busy by its parent.
const MARKED: u64 = 1 << 32;
/// Bits 33..64: calls ever entered, wrapping at 2^31.
const ENTERED_SHIFT: u32 = 33;
const ENTERED_MASK: u32 = (1 << 31) - 1;
/// One entry: one more call in flight, and one more call ever entered. An overflow of the
/// entered count falls off the top of the word, which is the wrapping we want.
const ENTER: u64 = 1 | (1 << ENTERED_SHIFT);
/// Marks `idle_at` as holding a value (it starts out empty).
const IDLE_AT_SET: u64 = 1 << 63;

/// The entered count that `idle_at` holds below its `IDLE_AT_SET` tag.
#[expect(
    clippy::cast_possible_truncation,
    reason = "`idle_at` holds a 31-bit entered count below its tag bit"
)]
fn entered_of(idle_at: u64) -> u32 {
    idle_at as u32
}

/// A reading of one counter's state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Calls in flight at the moment of the reading.
    pub(crate) in_flight: u32,
    /// Calls entered so far, wrapping at 2^31.
    pub(crate) entered: u32,
}

impl Snapshot {
    fn from_word(word: u64) -> Self {
        Self {
            // Truncation is the point: the word packs several fields.
            in_flight: (word & COUNT_MASK) as u32,
            entered: (word >> ENTERED_SHIFT) as u32 & ENTERED_MASK,
        }
    }
}

/// Counts calls (or, at the process level, busy limiters) and wakes drains when the count
/// reaches zero.
pub(crate) struct InFlight {
    /// Calls in flight, the `MARKED` bit, and calls ever entered, so that one `fetch_add`
    /// on entry updates all that needs updating.
    state: AtomicU64,
    /// Drains registered on this counter. Entry/exit and registration form a store-buffer
    /// pattern, so every access on both sides is `SeqCst`: either the drain sees the exit, or
    /// the exit sees the drain (through `watchers`).
    drainers: AtomicUsize,
    /// At the process level: drains registered on this counter or on any of its children.
    /// An exit that reaches zero looks further only when this is non-zero.
    watchers: AtomicUsize,
    /// The entered count at the latest return to zero that a registered drain could be
    /// waiting for, tagged with `IDLE_AT_SET`. A drain that registered when the entered
    /// count was `e` knows the count was zero after it registered iff this is at or past `e`.
    idle_at: AtomicU64,
    idle: Notify,
}

impl InFlight {
    const_fn! {
        pub(crate) fn new() -> Self {
            Self {
                state: AtomicU64::new(0),
                drainers: AtomicUsize::new(0),
                watchers: AtomicUsize::new(0),
                idle_at: AtomicU64::new(0),
                idle: Notify::const_new(),
            }
        }
    }

    /// Registers one more call in flight on a limiter whose busyness `parent` counts.
    #[inline]
    pub(crate) fn enter(&self, parent: &Self) {
        let prev = self.state.fetch_add(ENTER, SeqCst);
        // One test for both rare cases: the limiter is not marked (the add leaves the bit
        // clear), or the count overflowed (its carry clears the bit). An unmarked limiter
        // never reaches the top of the count: its first call marks it.
        if prev.wrapping_add(ENTER) & MARKED == 0 {
            self.enter_cold(prev, parent);
        }
    }

    #[cold]
    #[inline(never)]
    fn enter_cold(&self, prev: u64, parent: &Self) {
        if prev & COUNT_MASK == COUNT_MASK {
            self.overflowed();
        }
        self.mark(parent);
    }

    /// Registers that one call stopped being in flight.
    ///
    /// A sequential caller brings the count to zero on every call, so the test of whether a
    /// drain waits is made here, inline, with one load: the out-of-line `reached_zero` runs
    /// only when a drain is registered somewhere (at this level or any other).
    #[inline]
    pub(crate) fn exit(&self, parent: &Self) {
        let prev = self.state.fetch_sub(1, SeqCst);
        if prev & COUNT_MASK == 1 {
            // The exit wrote the count and now reads `watchers`; a drain writes `watchers`,
            // then reads the count. All `SeqCst`, so one of them sees the other.
            seq_cst_pair();
            if parent.watchers.load(SeqCst) != 0 {
                self.reached_zero(prev, Some(parent));
            }
        }
    }

    /// `enter` for the top level, which has no parent to mark itself in.
    fn enter_root(&self) {
        self.add_entry();
    }

    fn exit_root(&self) {
        let prev = self.state.fetch_sub(1, SeqCst);
        if prev & COUNT_MASK == 1 {
            self.reached_zero(prev, None);
        }
    }

    #[inline]
    fn add_entry(&self) -> u64 {
        let prev = self.state.fetch_add(ENTER, SeqCst);
        if prev & COUNT_MASK == COUNT_MASK {
            self.overflowed();
        }
        prev
    }

    /// 2^32 live calls cannot fit in memory; the check only keeps a corrupted word from ever
    /// being observed.
    #[cold]
    #[inline(never)]
    fn overflowed(&self) -> ! {
        self.state.fetch_sub(ENTER, SeqCst);
        panic!(
            "limit-runtime: more than {} calls in flight on one counter",
            u32::MAX
        );
    }

    /// The first call since the last unmarking counts this limiter as busy in `parent`.
    /// Racing callers set the bit once; only the one that set it counts the limiter.
    #[cold]
    #[inline(never)]
    fn mark(&self, parent: &Self) {
        if self.state.fetch_or(MARKED, SeqCst) & MARKED == 0 {
            parent.enter_root();
        }
    }

    /// Stops counting this limiter as busy in `parent`, if it is idle and marked. Clearing
    /// the bit comes first: a call that starts in between marks the limiter again, and the
    /// parent's count never says "idle" while a marked limiter has a call.
    pub(crate) fn unmark(&self, parent: &Self) {
        let mut current = self.state.load(SeqCst);
        while current & COUNT_MASK == 0 && current & MARKED != 0 {
            match self
                .state
                .compare_exchange(current, current & !MARKED, SeqCst, SeqCst)
            {
                Ok(_) => {
                    parent.exit_root();
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Stops counting a limiter that is being dropped as busy in `parent`, whatever its
    /// count: nothing can end its calls any more (only a leaked permit can leave one), and a
    /// process-wide drain must not wait for them forever.
    pub(crate) fn forget(&self, parent: &Self) {
        if self.state.fetch_and(!MARKED, SeqCst) & MARKED != 0 {
            parent.exit_root();
        }
    }

    #[cold]
    #[inline(never)]
    fn reached_zero(&self, prev: u64, parent: Option<&Self>) {
        // The exit wrote the count and now reads `drainers`; a drain writes `drainers`, then
        // reads the count. All `SeqCst`, so one of them sees the other. (A child's exit got
        // here by reading the process's `watchers`, which a drain raises after `drainers`.)
        seq_cst_pair();
        if self.drainers.load(SeqCst) != 0 {
            let entered = Snapshot::from_word(prev).entered;
            // Keep the newest zero moment: two exits may publish out of order.
            let _ = self.idle_at.fetch_update(SeqCst, SeqCst, |current| {
                let newer =
                    current & IDLE_AT_SET == 0 || is_at_or_after(entered, entered_of(current));
                newer.then_some(IDLE_AT_SET | u64::from(entered))
            });
            self.idle.notify_waiters();
        }
        if let Some(parent) = parent
            && parent.drainers.load(SeqCst) != 0
        {
            self.unmark(parent);
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::from_word(self.state.load(SeqCst))
    }

    /// Waits until the count of this counter, a child of `parent`, is zero, or has been zero
    /// at some moment since the first poll.
    ///
    /// Cancel-safe: dropping the future unregisters it. It cannot miss the moment, because
    /// it registers (and enables its `Notified`) before it reads the count.
    pub(crate) async fn wait_idle(&self, parent: &Self) {
        let _registered = Registration::new(&self.drainers, &parent.watchers);
        self.wait_registered(|| ()).await;
    }

    /// `wait_idle` for the top level, running `prepare` once registered and before the first
    /// reading. The process-wide drain unmarks idle limiters there: from then on their last
    /// calls out unmark them, so every busy limiter either is counted or is about to be
    /// unmarked.
    pub(crate) async fn wait_idle_after(&self, prepare: impl FnOnce()) {
        let _registered = Registration::new(&self.drainers, &self.watchers);
        self.wait_registered(prepare).await;
    }

    async fn wait_registered(&self, prepare: impl FnOnce()) {
        prepare();
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
        idle_at & IDLE_AT_SET != 0 && is_at_or_after(entered_of(idle_at), entered)
    }
}

/// Whether entry count `a` is at or after `b`, for counts that wrap at 2^31 and are
/// compared within 2^30 entries of each other.
fn is_at_or_after(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) & ENTERED_MASK < 1 << 30
}

/// One drain registered on an `InFlight` (`drainers`), and counted by the process
/// (`watchers`), for as long as it lives.
struct Registration<'a> {
    drainers: &'a AtomicUsize,
    watchers: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(drainers: &'a AtomicUsize, watchers: &'a AtomicUsize) -> Self {
        // `drainers` first: an exit that sees `watchers` then sees `drainers` too.
        drainers.fetch_add(1, SeqCst);
        watchers.fetch_add(1, SeqCst);
        // Pairs with `exit` and `reached_zero`.
        seq_cst_pair();
        Self { drainers, watchers }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, SeqCst);
        self.drainers.fetch_sub(1, SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
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
        let parent = InFlight::new();
        let counter = InFlight::new();
        counter.enter(&parent);
        counter.enter(&parent);
        counter.exit(&parent);
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
        let parent = InFlight::new();
        let counter = InFlight::new();
        let mut wait = pin!(counter.wait_idle(&parent));
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    #[test]
    fn wait_idle_completes_on_a_zero_moment_even_if_a_call_starts_right_after() {
        let parent = InFlight::new();
        let counter = InFlight::new();
        counter.enter(&parent);
        let mut wait = pin!(counter.wait_idle(&parent));
        assert!(poll_once(wait.as_mut()).is_pending());
        counter.exit(&parent);
        counter.enter(&parent);
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    #[test]
    fn a_zero_moment_before_registration_does_not_count() {
        let parent = InFlight::new();
        let counter = InFlight::new();
        // A drain elsewhere makes exits publish their zero moments.
        counter.enter(&parent);
        let mut other = pin!(counter.wait_idle(&parent));
        assert!(poll_once(other.as_mut()).is_pending());
        counter.exit(&parent);
        counter.enter(&parent);
        let mut wait = pin!(counter.wait_idle(&parent));
        assert!(poll_once(wait.as_mut()).is_pending());
        counter.exit(&parent);
        assert!(poll_once(wait.as_mut()).is_ready());
    }

    /// The parent's drain, with the registry's unmarking pass over `children`.
    fn drain_parent<'a>(
        parent: &'a InFlight,
        children: &'a [&'a InFlight],
    ) -> impl Future<Output = ()> + 'a {
        parent.wait_idle_after(move || {
            for child in children {
                child.unmark(parent);
            }
        })
    }

    #[test]
    fn marks_are_lazy_and_cost_the_parent_nothing_per_call() {
        let parent = InFlight::new();
        let child = InFlight::new();
        for _ in 0..3 {
            child.enter(&parent);
            child.exit(&parent);
        }
        // Marked once by the first call, never unmarked without a drain.
        assert_eq!(
            parent.snapshot(),
            Snapshot {
                in_flight: 1,
                entered: 1
            }
        );
        let children = [&child];
        let mut drain = pin!(drain_parent(&parent, &children));
        assert!(poll_once(drain.as_mut()).is_ready());
        assert_eq!(parent.snapshot().in_flight, 0);
    }

    #[test]
    fn parent_drain_sees_a_zero_moment_across_children() {
        let parent = InFlight::new();
        let (a, b) = (InFlight::new(), InFlight::new());
        b.enter(&parent);
        b.exit(&parent); // b is idle but still marked
        a.enter(&parent);
        let children = [&a, &b];
        let mut drain = pin!(drain_parent(&parent, &children));
        assert!(poll_once(drain.as_mut()).is_pending());
        a.exit(&parent); // nothing in flight anywhere
        b.enter(&parent); // a new call elsewhere, before the drain is polled again
        assert!(poll_once(drain.as_mut()).is_ready());
    }

    #[test]
    fn parent_drain_waits_for_every_busy_child() {
        let parent = InFlight::new();
        let (a, b) = (InFlight::new(), InFlight::new());
        a.enter(&parent);
        b.enter(&parent);
        let children = [&a, &b];
        let mut drain = pin!(drain_parent(&parent, &children));
        assert!(poll_once(drain.as_mut()).is_pending());
        a.exit(&parent);
        assert!(poll_once(drain.as_mut()).is_pending());
        a.enter(&parent);
        b.exit(&parent);
        assert!(poll_once(drain.as_mut()).is_pending());
        a.exit(&parent);
        assert!(poll_once(drain.as_mut()).is_ready());
    }

    #[test]
    fn wrapping_comparison() {
        assert!(is_at_or_after(5, 5));
        assert!(is_at_or_after(6, 5));
        assert!(!is_at_or_after(4, 5));
        assert!(is_at_or_after(2, ENTERED_MASK));
        assert!(!is_at_or_after(ENTERED_MASK, 2));
    }
}
