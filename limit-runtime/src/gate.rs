//! Permits for one limit: a lock-free fast path in front of tokio's FIFO semaphore, and a
//! limit that can change while calls hold permits.
//!
//! One word, `state`, holds the *free* permits, the permits *held* by running calls, and a
//! `WAITERS` flag. While no call waits, a call takes a permit with one compare-and-swap on that
//! word and gives it back with one `fetch_add`: no lock, no queue.
//!
//! A call that finds no free permit queues in tokio's semaphore, which is FIFO. Queuing counts
//! the call, raises `WAITERS` and moves the free permits into the semaphore. While the flag is
//! up the fast path is closed, so a newcomer cannot overtake the queue, and a permit given
//! back is handed on to the semaphore, which passes it to the first waiter. The last waiter to
//! leave lowers the flag and takes back what the semaphore still holds. The rule that keeps a
//! waiter from sleeping next to a free permit: whoever makes a permit free while the flag is
//! up, or raises the flag, hands the free permits over (`hand_over`); whoever finds the flag
//! down after handing permits over takes them back (`reclaim`). Only the last waiter's leaving
//! and resizing take a lock; the loom models in `loom_models.rs` check the interleavings.
//!
//! Resizing: growing adds free permits. Shrinking subtracts them, and the free count may go
//! below zero: that is *debt*. A permit given back while there is debt pays it instead of
//! becoming free, and a permit that a waiter receives from the semaphore while there is debt
//! pays it too (that waiter goes back to waiting). So after `set_limit(n)`, a call is admitted
//! only while fewer than `n` hold permits, and no running call is ever revoked.
//!
//! A waiter whose handed permit pays debt has already been overtaken by nobody: it was at the
//! head of the line. So it does not queue again at the back of the semaphore, but in `front`,
//! a second semaphore that the next free permits go to before the queue's (`front_owed` says
//! how many it still needs). That path is taken only after a shrink, so it may take the lock.

use std::sync::PoisonError;
use std::sync::atomic::Ordering::SeqCst;

use tokio::sync::{AcquireError, SemaphorePermit};

use crate::sync::{
    AtomicU64, AtomicUsize, Mutex, MutexGuard, Semaphore, const_fn, fence, seq_cst_pair,
};

/// The largest limit: the held count has 31 bits, and the free count is a signed 32-bit
/// number that must reach `-limit` (a limit shrunk to 0 with every permit held).
pub(crate) const MAX_LIMIT: usize = i32::MAX as usize;

/// Bits 0..31 of `state`: permits held.
const HELD_MASK: u64 = (1 << 31) - 1;
/// Bit 31: calls are queued in the semaphore (or about to be).
const WAITERS: u64 = 1 << 31;
/// Bits 32..64, as a signed number: free permits, negative while the gate is in debt.
const FREE_SHIFT: u32 = 32;
const ONE_FREE: u64 = 1 << FREE_SHIFT;
/// One permit going from free to held. Wrapping arithmetic keeps the fields apart: the held
/// count never borrows from or carries into the flag (it stays within `0..=MAX_LIMIT`), and the
/// free count is the top half, where wrapping is two's complement.
const TAKE: u64 = 1u64.wrapping_sub(ONE_FREE);
/// One permit going from held back to free.
const GIVE_BACK: u64 = ONE_FREE - 1;

#[expect(
    clippy::cast_possible_wrap,
    reason = "the word is reinterpreted so that its top half shifts down sign-extended"
)]
fn free(word: u64) -> i64 {
    // An arithmetic shift of the whole word: the top half, sign-extended.
    (word as i64) >> FREE_SHIFT
}

fn held(word: u64) -> usize {
    (word & HELD_MASK) as usize
}

/// `count` permits, as a change of the free field.
const fn frees(count: usize) -> u64 {
    (count as u64) << FREE_SHIFT
}

/// What became of a waiter that was handed a permit: see [`Gate::take_handed`].
pub(crate) enum Handed {
    /// Admitted; the permits held right after.
    Admitted(usize),
    /// Now waiting at the front of the line.
    Front,
}

// `pub` only because `call::Key` names it; the module is private.
pub struct Gate {
    state: AtomicU64,
    limit: AtomicUsize,
    /// Calls queued here, for the `queue` bound, for stats, and to tell the last one.
    waiting: AtomicUsize,
    /// Holds the permits handed over while calls wait. Never closed.
    semaphore: Semaphore,
    /// Waiters whose handed permit paid debt wait here, ahead of `semaphore`'s queue, in the
    /// order they came back. Never closed.
    front: Semaphore,
    /// Waiters in `front` that no permit has been given to yet. Changed under `handoff` only;
    /// read without it as a hint that is checked again under it.
    front_owed: AtomicUsize,
    /// Serializes the last waiter's leaving (which lowers `WAITERS`), resizing, and every
    /// change of `front_owed`.
    handoff: Mutex<()>,
}

impl Gate {
    const_fn! {
        pub(crate) fn new(limit: usize) -> Self {
            Self {
                state: AtomicU64::new(frees(limit)),
                limit: AtomicUsize::new(limit),
                waiting: AtomicUsize::new(0),
                semaphore: Semaphore::const_new(0),
                front: Semaphore::const_new(0),
                front_owed: AtomicUsize::new(0),
                handoff: Mutex::new(()),
            }
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(SeqCst)
    }

    /// Permits held now.
    pub(crate) fn held(&self) -> usize {
        held(self.state.load(SeqCst))
    }

    /// Calls queued now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.handoff.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether no call is queued: `try_acquire` is then one compare-and-swap.
    #[inline]
    pub(crate) fn fast_path_open(&self) -> bool {
        self.state.load(SeqCst) & WAITERS == 0
    }

    /// Takes a free permit without overtaking a queued call; returns the permits held
    /// afterwards. One compare-and-swap when it succeeds while no call is queued.
    #[inline]
    pub(crate) fn try_acquire(&self) -> Option<usize> {
        let mut word = self.state.load(SeqCst);
        loop {
            if word & WAITERS != 0 {
                return self.try_acquire_queued();
            }
            if free(word) <= 0 {
                return None;
            }
            let next = word.wrapping_add(TAKE);
            match self.state.compare_exchange_weak(word, next, SeqCst, SeqCst) {
                Ok(_) => return Some(held(next)),
                Err(actual) => word = actual,
            }
        }
    }

    /// `try_acquire` while calls are queued: free permits are in the semaphore then. tokio's
    /// semaphore hands a permit to its queue before it counts one as available, so a permit
    /// available there is one that no queued call is waiting for (the queued calls have theirs,
    /// and only have not run yet): taking it overtakes nobody. (A call between `enqueue` and
    /// its first poll of `next_permit`, in the same poll of its future, has no place in that
    /// queue yet; a `try_acquire` that takes a permit then came first.) Waiters sent to the
    /// front are owed the next permits, so while there are any, nothing is taken.
    #[cold]
    #[inline(never)]
    fn try_acquire_queued(&self) -> Option<usize> {
        if self.front_owed.load(SeqCst) != 0 {
            return None;
        }
        self.semaphore.try_acquire().ok()?.forget();
        self.count_handed()
    }

    /// Joins the queue, unless `bound` calls are already queued. Every permit free now moves to
    /// the semaphore, and every permit given back from now on follows, until the last waiter
    /// leaves. Each successful call must be matched by one [`leave`](Self::leave).
    pub(crate) fn enqueue(&self, bound: Option<usize>) -> bool {
        // Counted before the flag goes up: a last waiter lowering the flag meanwhile either
        // sees this count afterwards and raises the flag again, or lowers it before this
        // call looks at it (see `last_left`).
        match bound {
            None => {
                self.waiting.fetch_add(1, SeqCst);
            }
            Some(bound) => {
                let counted = self.waiting.fetch_update(SeqCst, SeqCst, |waiting| {
                    (waiting < bound).then_some(waiting + 1)
                });
                if counted.is_err() {
                    return false;
                }
            }
        }
        // Counted-then-look here, lower-then-count in `last_left`: all four accesses are
        // `SeqCst`, so one side sees the other without a fence (loom needs one to see it).
        seq_cst_pair();
        if self.state.load(SeqCst) & WAITERS == 0 {
            self.state.fetch_or(WAITERS, SeqCst);
        }
        self.hand_over();
        true
    }

    /// Waits in line for the next permit (at the front if `at_front`); pass what it gives to
    /// [`take_handed`](Self::take_handed). Call it between `enqueue` and `leave`. Cancel-safe:
    /// tokio's `Acquire` gives back what it was assigned when dropped. (Not an `async fn` of
    /// ours, so the caller's future holds tokio's future and nothing more.)
    pub(crate) fn next_permit(
        &self,
        at_front: bool,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        if at_front {
            self.front.acquire()
        } else {
            self.semaphore.acquire()
        }
    }

    /// Sends a waiter to the front of the line; it waits in `front` from now on.
    fn requeue_front(&self) {
        let _handoff = self.lock();
        self.front_owed.fetch_add(1, SeqCst);
        // Pairs with the fence in `give`: a permit that `give` put in the queue's semaphore
        // without seeing this waiter is found here (or `give` sees the count and feeds it).
        fence(SeqCst);
        self.feed_front();
    }

    /// A waiter at the head of the queue's semaphore was handed a permit while others are
    /// owed one at the front (tokio hands a cancelled waiter's permit straight to the next in
    /// its own queue). The permit goes to the front, and the waiter joins the back of the
    /// front: still ahead of everyone left in the queue.
    fn pass_to_front(&self) -> bool {
        let _handoff = self.lock();
        if self.front_owed.load(SeqCst) == 0 {
            return false;
        }
        // One owed waiter is served and this one is owed instead: the count stays.
        self.front.add_permits(1);
        true
    }

    /// Moves permits lying idle in the queue's semaphore to the waiters owed at the front.
    /// Called with `handoff` held.
    fn feed_front(&self) {
        let owed = self.front_owed.load(SeqCst);
        if owed == 0 {
            return;
        }
        let moved = self.semaphore.forget_permits(owed);
        if moved != 0 {
            self.front_owed.fetch_sub(moved, SeqCst);
            self.front.add_permits(moved);
        }
    }

    /// Takes the permit that [`next_permit`](Self::next_permit) gave a waiter. The waiter is
    /// admitted, or it is now at the front of the line (`Handed::Front`) and waits there: the
    /// permit paid one unit of debt, or went to a waiter owed one at the front.
    pub(crate) fn take_handed(
        &self,
        permit: Result<SemaphorePermit<'_>, AcquireError>,
        at_front: bool,
    ) -> Handed {
        let Ok(permit) = permit else {
            unreachable!("limit-runtime: a gate's semaphores are never closed");
        };
        permit.forget();
        if !at_front
            && self.front_owed.load(SeqCst) != 0
            && free(self.state.load(SeqCst)) >= 0
            && self.pass_to_front()
        {
            return Handed::Front;
        }
        if let Some(held) = self.count_handed() {
            Handed::Admitted(held)
        } else {
            self.requeue_front();
            Handed::Front
        }
    }

    /// Counts a permit taken from a semaphore as held, and returns the permits held
    /// afterwards; or, while there is debt, pays one unit of it with that permit and returns
    /// `None`.
    fn count_handed(&self) -> Option<usize> {
        let mut word = self.state.load(SeqCst);
        loop {
            let in_debt = free(word) < 0;
            let next = if in_debt {
                word.wrapping_add(ONE_FREE)
            } else {
                word + 1
            };
            match self.state.compare_exchange_weak(word, next, SeqCst, SeqCst) {
                Ok(_) => return (!in_debt).then_some(held(next)),
                Err(actual) => word = actual,
            }
        }
    }

    /// Leaves the queue: admitted, or giving up. `at_front` says the waiter gives up while
    /// waiting in `front` (an admitted waiter passes `false`). The last waiter out reopens the
    /// fast path and takes back the permits the semaphores still hold.
    pub(crate) fn leave(&self, at_front: bool) {
        if at_front {
            self.leave_front();
        } else if self.front_owed.load(SeqCst) != 0 || free(self.state.load(SeqCst)) < 0 {
            self.settle_idle();
        }
        if self.waiting.fetch_sub(1, SeqCst) == 1 {
            self.last_left();
        }
    }

    /// A waiter cancelled after tokio handed it a permit gives that permit back to the
    /// queue's semaphore, and with nobody else in that queue, it lies idle there. That is
    /// harmless while nothing is owed, but waiters owed a permit at the front would wait for
    /// it, and a shrink's debt would be paid by whichever newcomer finds it, which then goes
    /// to the front ahead of waiters handed a permit before it. So the idle permits come back
    /// to `free` at once: they pay the debt, and `hand_over` gives the rest to the front first.
    #[cold]
    #[inline(never)]
    fn settle_idle(&self) {
        let handoff = self.lock();
        let idle = self.semaphore.forget_permits(usize::MAX);
        drop(handoff);
        self.return_to_free(idle);
    }

    /// Makes `permits` taken out of a semaphore free again: they pay debt first, and while
    /// calls are queued `hand_over` passes the rest on (to the front first).
    fn return_to_free(&self, permits: usize) {
        if permits != 0 {
            self.state.fetch_add(frees(permits), SeqCst);
            self.hand_over();
        }
    }

    /// A waiter gives up its place at the front. If it was still owed a permit, it is owed no
    /// longer. If not, one was given to `front` for it (or for another front waiter, the
    /// permits are alike): one permit more lies there than the front waiters left need, and
    /// it is idle, since each of them holds at most one. It goes back to the others.
    #[cold]
    #[inline(never)]
    fn leave_front(&self) {
        let handoff = self.lock();
        if self.front_owed.load(SeqCst) != 0 {
            self.front_owed.fetch_sub(1, SeqCst);
            return;
        }
        let surplus = self.front.forget_permits(1);
        debug_assert_eq!(surplus, 1, "a front waiter's permit went missing");
        drop(handoff);
        self.return_to_free(surplus);
    }

    #[cold]
    #[inline(never)]
    fn last_left(&self) {
        // Serializes lowering the flag with other last waiters and with `set_limit`.
        let handoff = self.lock();
        if self.waiting.load(SeqCst) != 0 {
            return; // a call queued since: the flag stays up for it
        }
        self.state.fetch_and(!WAITERS, SeqCst);
        fence(SeqCst);
        self.reclaim();
        // A call that queued between the check and the lowering may have seen the flag still
        // up and not raised it; it is counted, so it is seen here.
        if self.waiting.load(SeqCst) != 0 {
            self.state.fetch_or(WAITERS, SeqCst);
            // Unlocked first: handing over may take the lock. It races releases and later
            // leavers like every hand-over does.
            drop(handoff);
            self.hand_over();
        }
    }

    /// Moves the permits the semaphores hold unassigned back to `free`, and on to the queue
    /// again if the flag went up meanwhile. While the flag is down no call waits at the front
    /// (a front waiter has been queued since before the flag last went up), so `front` holds
    /// nobody's permit then.
    fn reclaim(&self) -> bool {
        let idle =
            self.semaphore.forget_permits(usize::MAX) + self.front.forget_permits(usize::MAX);
        if idle == 0 {
            return false;
        }
        let before = self.state.fetch_add(frees(idle), SeqCst);
        before & WAITERS != 0
    }

    /// Gives back a permit taken by `try_acquire` or `take_handed`: one `fetch_add` while
    /// no call waits.
    #[inline]
    pub(crate) fn release(&self) {
        let before = self.state.fetch_add(GIVE_BACK, SeqCst);
        if before & WAITERS != 0 {
            self.hand_over();
        }
    }

    /// Moves the free permits to the semaphore while calls are queued. Whoever makes a permit
    /// free while the flag is up calls this, and so does whoever raises the flag, so no
    /// queued call waits while a permit lies free.
    #[cold]
    #[inline(never)]
    fn hand_over(&self) {
        loop {
            let mut word = self.state.load(SeqCst);
            let moved = loop {
                let free = free(word);
                if word & WAITERS == 0 || free <= 0 {
                    return;
                }
                #[expect(
                    clippy::cast_sign_loss,
                    clippy::cast_possible_truncation,
                    reason = "`free` is positive here, and at most `MAX_LIMIT`"
                )]
                let free = free as usize;
                match self
                    .state
                    .compare_exchange(word, word - frees(free), SeqCst, SeqCst)
                {
                    Ok(_) => break free,
                    Err(actual) => word = actual,
                }
            };
            self.give(moved);
            fence(SeqCst);
            // If the last waiter lowered the flag and took back the semaphore's permits before
            // these arrived, nobody would take them: take them back too.
            if self.state.load(SeqCst) & WAITERS != 0 || !self.reclaim() {
                return;
            }
        }
    }

    /// Gives `moved` permits to the waiters: first to those owed at the front, then to the
    /// queue's semaphore, which hands them on in FIFO order.
    fn give(&self, moved: usize) {
        if self.front_owed.load(SeqCst) == 0 {
            self.semaphore.add_permits(moved);
            // Pairs with the fence in `requeue_front`.
            fence(SeqCst);
            if self.front_owed.load(SeqCst) == 0 {
                return;
            }
            // A waiter went to the front meanwhile and may have missed these.
            let _handoff = self.lock();
            self.feed_front();
            return;
        }
        let _handoff = self.lock();
        let owed = self.front_owed.load(SeqCst);
        let to_front = moved.min(owed);
        if to_front != 0 {
            self.front_owed.fetch_sub(to_front, SeqCst);
            self.front.add_permits(to_front);
        }
        if moved > to_front {
            self.semaphore.add_permits(moved - to_front);
        }
    }

    /// Changes the limit. Growing takes effect at once (waiters are admitted); shrinking
    /// never revokes a running call, and admits no new call until fewer than `limit` run.
    pub(crate) fn set_limit(&self, limit: usize) {
        assert!(
            limit <= MAX_LIMIT,
            "limit-runtime: a limit of {limit} is above the maximum of {MAX_LIMIT}"
        );
        // Serializes resizes with each other and with the last waiter's leaving.
        let handoff = self.lock();
        let old = self.limit.swap(limit, SeqCst);
        if limit > old {
            self.state.fetch_add(frees(limit - old), SeqCst);
        } else if limit < old {
            let shrink = old - limit;
            self.state.fetch_sub(frees(shrink), SeqCst);
            // Permits handed over but not yet taken by a waiter pay the debt now, rather
            // than when a waiter takes them.
            let idle = self.semaphore.forget_permits(shrink);
            self.state.fetch_add(frees(idle), SeqCst);
        }
        // Unlocked first: handing over may take the lock.
        drop(handoff);
        self.hand_over();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_fields_of_the_word_stay_apart() {
        let gate = Gate::new(MAX_LIMIT);
        for _ in 0..3 {
            assert!(gate.try_acquire().is_some());
        }
        assert_eq!(gate.held(), 3);
        gate.set_limit(0); // free goes to -3: debt
        assert_eq!(free(gate.state.load(SeqCst)), -3);
        assert!(gate.try_acquire().is_none());
        gate.release();
        assert_eq!(
            (gate.held(), free(gate.state.load(SeqCst))),
            (2, -2),
            "a permit given back pays the debt"
        );
        gate.set_limit(MAX_LIMIT);
        assert_eq!(
            free(gate.state.load(SeqCst)),
            i64::from(i32::MAX) - 2,
            "the top of the range is reachable"
        );
    }

    #[test]
    fn shrinking_leaves_debt_that_returned_permits_pay() {
        let gate = Gate::new(3);
        assert_eq!(gate.try_acquire(), Some(1));
        assert_eq!(gate.try_acquire(), Some(2));
        gate.set_limit(1); // 2 held, the idle one is gone, 1 owed
        assert!(gate.try_acquire().is_none());
        gate.release(); // pays the debt
        assert!(gate.try_acquire().is_none(), "1 still runs, the limit is 1");
        gate.release();
        assert_eq!(gate.try_acquire(), Some(1));
        assert!(gate.try_acquire().is_none());
    }

    #[test]
    fn growing_cancels_debt_before_adding_permits() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire().is_some());
        assert!(gate.try_acquire().is_some());
        gate.set_limit(0);
        gate.set_limit(3); // cancels the 2 owed, adds 1
        assert!(gate.try_acquire().is_some());
        assert!(gate.try_acquire().is_none());
        gate.release();
        gate.release();
        gate.release();
        for _ in 0..3 {
            assert!(gate.try_acquire().is_some());
        }
        assert!(gate.try_acquire().is_none());
    }

    #[test]
    fn a_queued_call_closes_the_fast_path_and_the_last_one_out_reopens_it() {
        let gate = Gate::new(1);
        assert!(gate.try_acquire().is_some());
        assert!(gate.enqueue(None));
        // The waiter takes its place in the semaphore's queue, as a call does in the same poll
        // as `enqueue`. (Until then it has no place to be overtaken in: a `try_acquire` that
        // finds a permit first simply came first.)
        let mut wait = Box::pin(gate.next_permit(false));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        gate.release(); // handed to the semaphore, which gives it to the waiter
        assert!(gate.try_acquire().is_none(), "a newcomer may not overtake");
        drop(wait); // the waiter gives up: tokio takes back what it was handed
        gate.leave(false); // and the permit comes back to the fast path
        assert_eq!(gate.try_acquire(), Some(1));
    }

    #[test]
    fn try_acquire_takes_a_permit_nobody_in_the_queue_is_waiting_for() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire().is_some());
        assert!(gate.try_acquire().is_some());
        assert!(gate.enqueue(None));
        let mut wait = Box::pin(gate.next_permit(false));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        gate.release(); // handed to the waiter, which has not run since
        gate.release(); // nobody waits for this one
        assert_eq!(gate.try_acquire(), Some(1), "the free permit is taken");
        assert!(gate.try_acquire().is_none(), "the waiter's permit is not");
        let std::task::Poll::Ready(permit) = wait.as_mut().poll(&mut cx) else {
            panic!("the waiter was handed a permit");
        };
        assert!(matches!(
            gate.take_handed(permit, false),
            Handed::Admitted(2)
        ));
        gate.leave(false);
    }

    #[test]
    fn the_queue_bound_counts_queued_calls() {
        let gate = Gate::new(1);
        assert!(gate.enqueue(Some(2)));
        assert!(gate.enqueue(Some(2)));
        assert!(!gate.enqueue(Some(2)));
        assert_eq!(gate.waiting(), 2);
        gate.leave(false);
        assert!(gate.enqueue(Some(2)));
        gate.leave(false);
        gate.leave(false);
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.try_acquire(), Some(1), "the permit was handed back");
    }
}
