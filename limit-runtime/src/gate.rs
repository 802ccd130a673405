//! Permits for one limit: a lock-free fast path in front of tokio's FIFO semaphore, and a
//! limit that can change while calls hold permits. A call takes `n` permits at once, its
//! weight (1 unless the function says `weight = …`).
//!
//! # Where the permits are
//!
//! One word, `state`, holds the *free* permits (a signed count), the permits *held* by
//! running calls, and the `WAITERS` flag. While no call waits, a call takes its permits with
//! one compare-and-swap on that word and gives them back with one `fetch_add`: no lock, no
//! queue. While calls wait, the permits they wait for sit in one of two tokio semaphores:
//! `queue`, the line every waiter joins at the back, and `front`, where a waiter waits whose
//! permits a shrink took back (see *Debt* below). Both are FIFO and strict: a heavy waiter at
//! the head is not overtaken by lighter ones behind it.
//!
//! **The conservation law.** At every moment,
//!
//! ```text
//! limit = held + free + (permits in `queue`) + (permits in `front`) + (permits in transit)
//! ```
//!
//! where a semaphore's permits are those available in it plus those it has assigned to
//! waiters that have not taken them yet, and *in transit* are permits that one thread has
//! taken out of the word or out of a semaphore and not yet put in the other (between the two
//! halves of one function below, never across a return). `free` is negative while the gate
//! is in *debt*. `set_limit` changes both sides at once, under the lock. The loom models check
//! the law at the end of every interleaving (`assert_all_permits_back`).
//!
//! # One verb per way a permit moves
//!
//! | verb | from | to | who |
//! |---|---|---|---|
//! | *take* | free | held | the fast path (`try_take`), `try_acquire` |
//! | *release* | held | free | a call that ends, `release` |
//! | *hand over* | free | `front`, then `queue` | `hand_over`, while `WAITERS` is up |
//! | *promote* | `queue` (available) | `front` | `promote`, for waiters owed at the front |
//! | *claim* | a semaphore | held (or free, paying debt) | a waiter handed its permits, `take_handed` |
//! | *reclaim* | a semaphore (available) | free | whoever finds permits nobody waits for, `reclaim` |
//!
//! A permit that reaches `free` while it is negative *pays* debt instead of becoming free.
//!
//! # The `WAITERS` flag
//!
//! - **Raised** by `enqueue`, after the call is counted in `waiting`, with no lock.
//! - **Lowered** only by `last_left`, under `handoff`, when `waiting` is 0 after the last
//!   waiter's `fetch_sub`; it checks `waiting` again after lowering, and raises the flag
//!   again (and hands over) if a call was counted meanwhile.
//! - **While it is up** the fast path is closed, so a newcomer cannot overtake the line, and
//!   every permit made free is handed over. A call that finds it up joins the line at once
//!   (tokio's semaphore gives it permits left idle there, in its turn); only `try_acquire`,
//!   which may not wait, takes such permits itself (`try_acquire_queued`). The rule that
//!   keeps a waiter from sleeping next to a free permit: whoever makes permits free while the
//!   flag is up, or raises the flag, hands the free permits over (starting from the word its
//!   own read-modify-write returned, which the compare-and-swap checks; nothing to do if no
//!   permit was free then, since whoever frees one later hands it over); whoever finds the
//!   flag down after handing permits over reclaims them (`hand_over`'s loop).
//!
//! # Debt, and the front of the line
//!
//! Growing the limit adds free permits. Shrinking subtracts them, and `free` may go below
//! zero. A permit released while there is debt pays it instead of becoming free, and so do
//! the permits a waiter is handed while there is debt: that waiter then waits again. It was at
//! the head of the line, so it waits in `front`, which is served before `queue`:
//! `front_owed` counts the permits owed to waiters in `front` that have not been put there
//! yet. For the waiters in `front`, `front_owed + (permits in front) = the sum of their
//! weights`: every change keeps it, under `handoff`. So after `set_limit(n)`, calls are
//! admitted only while fewer than `n` permits are held, and no running call is ever revoked.
//!
//! # Locks and ordering
//!
//! `handoff` serializes: lowering the flag (`last_left`), resizing, every change of
//! `front_owed` (joining or leaving `front`, promoting, handing over while permits are owed
//! at the front), and reclaiming a semaphore's idle permits when a waiter leaves behind a
//! debt or owed front waiters. The fast path, `release`, and a hand-over while nothing is
//! owed at the front take no lock.
//!
//! Every access is `SeqCst`. Two places need more than that, both store-buffer patterns
//! where each of two threads writes one location and then reads the other's:
//!
//! - `enqueue` (counts in `waiting`, then reads the flag) against `last_left` (lowers the
//!   flag, then reads `waiting`). `SeqCst` accesses alone forbid both reads missing both
//!   writes; `seq_cst_pair()` states it, and is a real fence only under loom, which models
//!   `SeqCst` accesses more weakly. The hot path pays nothing.
//! - The semaphores' operations are not `SeqCst` accesses to our atomics (tokio uses its own
//!   mutex and orderings), so where our atomic and a semaphore meet, a real `fence(SeqCst)`
//!   orders them: `hand_over` (permits added to a semaphore, then the flag read) against
//!   `last_left` (flag lowered, then the semaphores emptied); and `give_to_lines` (permits
//!   added to `queue`, then `front_owed` read) against `join_front` (`front_owed` raised,
//!   then `queue`'s idle permits promoted). Each use names its pair.
//!
//! The loom models in `loom_models.rs` check these interleavings.

use std::sync::PoisonError;
use std::sync::atomic::Ordering::SeqCst;

use tokio::sync::{AcquireError, SemaphorePermit};

use crate::sync::{
    AtomicU64, AtomicUsize, Mutex, MutexGuard, Semaphore, const_fn, fence, seq_cst_pair,
};

/// The largest limit, and so the largest weight: the held count has 31 bits, and the free
/// count is a signed 32-bit number that must reach `-limit` (a limit shrunk to 0 with every
/// permit held). It also fits tokio's `acquire_many`, which takes a `u32`.
pub(crate) const MAX_LIMIT: usize = i32::MAX as usize;

/// Bits 0..31 of `state`: permits held.
const HELD_MASK: u64 = (1 << 31) - 1;
/// Bit 31: calls are queued in the semaphores (or about to be).
const WAITERS: u64 = 1 << 31;
/// Bits 32..64, as a signed number: free permits, negative while the gate is in debt.
const FREE_SHIFT: u32 = 32;

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

/// `n` permits, as a change of the free field.
const fn frees(n: usize) -> u64 {
    (n as u64) << FREE_SHIFT
}

/// `n` permits going from free to held. Wrapping arithmetic keeps the fields apart: the held
/// count never borrows from or carries into the flag (it stays within `0..=MAX_LIMIT`), and
/// the free count is the top half, where wrapping is two's complement.
const fn take(n: usize) -> u64 {
    (n as u64).wrapping_sub(frees(n))
}

/// `n` permits going from held back to free.
const fn give_back(n: usize) -> u64 {
    frees(n).wrapping_sub(n as u64)
}

/// `n` as tokio's semaphores count a batch of permits. A weight is at most `MAX_LIMIT`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a weight is at most `MAX_LIMIT`, which fits"
)]
fn batch(n: usize) -> u32 {
    debug_assert!(
        n <= MAX_LIMIT,
        "a weight above the maximum reached the gate"
    );
    n as u32
}

/// A reading of the state word, taken while no call was queued.
#[derive(Clone, Copy)]
pub(crate) struct Word(u64);

/// What a wait in line for permits came to, its permits forgotten: they are counted by the
/// gate from then on ([`Gate::take_handed`]).
#[inline]
pub(crate) fn handed(
    permit: Result<SemaphorePermit<'_>, AcquireError>,
) -> Result<(), AcquireError> {
    // What `SemaphorePermit::forget` does, leaving the permits out of the semaphore, without
    // a call into tokio: the permit owns nothing else.
    permit.map(std::mem::forget)
}

/// What became of a waiter that was handed its permits: see [`Gate::take_handed`].
pub(crate) enum Handed {
    /// Admitted; the permits held right after.
    Admitted(usize),
    /// Now waiting at the front of the line.
    Front,
}

// `pub` only because `call::Claim` names it; the module is private.
pub struct Gate {
    state: AtomicU64,
    limit: AtomicUsize,
    /// Calls queued here (not permits), for the `queue` bound, for stats, and to tell the last
    /// one.
    waiting: AtomicUsize,
    /// The line: holds the permits handed over while calls wait. Never closed.
    queue: Semaphore,
    /// Waiters whose handed permits paid debt wait here, ahead of `queue`'s line, in the
    /// order they came back. Never closed.
    front: Semaphore,
    /// Permits owed to the waiters in `front` and not yet put there. Changed under `handoff`
    /// only; read without it as a hint that is checked again under it.
    front_owed: AtomicUsize,
    /// See "Locks and ordering" above.
    handoff: Mutex<()>,
}

impl Gate {
    const_fn! {
        pub(crate) fn new(limit: usize) -> Self {
            Self {
                state: AtomicU64::new(frees(limit)),
                limit: AtomicUsize::new(limit),
                waiting: AtomicUsize::new(0),
                queue: Semaphore::const_new(0),
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

    /// The state word, if no call is queued: [`try_take`](Self::try_take) starts from it.
    #[inline]
    pub(crate) fn fast_path_open(&self) -> Option<Word> {
        let word = self.state.load(SeqCst);
        (word & WAITERS == 0).then_some(Word(word))
    }

    /// Takes `n` free permits while no call is queued, starting from `word` (a recent reading,
    /// which the compare-and-swap checks); returns the permits held afterwards. One
    /// compare-and-swap when it succeeds.
    #[inline]
    pub(crate) fn try_take(&self, word: Word, n: usize) -> Option<usize> {
        let Word(mut word) = word;
        loop {
            #[expect(
                clippy::cast_possible_wrap,
                reason = "a weight is at most `MAX_LIMIT`, which fits"
            )]
            if word & WAITERS != 0 || free(word) < n as i64 {
                return None;
            }
            let next = word.wrapping_add(take(n));
            match self.state.compare_exchange_weak(word, next, SeqCst, SeqCst) {
                Ok(_) => return Some(held(next)),
                Err(actual) => word = actual,
            }
        }
    }

    /// Takes `n` free permits without overtaking a queued call; returns the permits held
    /// afterwards. One compare-and-swap when it succeeds while no call is queued.
    pub(crate) fn try_acquire(&self, n: usize) -> Option<usize> {
        match self.fast_path_open() {
            Some(word) => self.try_take(word, n),
            None => self.try_acquire_queued(n),
        }
    }

    /// `try_acquire` while calls are queued: free permits are in the semaphores then. tokio's
    /// semaphore gives permits to its line before it counts any as available, and a waiter
    /// at the head that needs more than there are gets them all (strict FIFO), so permits
    /// available in `queue` are ones that no queued call is waiting for: taking them overtakes
    /// nobody. (A call between `enqueue` and its first poll of `next_permit`, in the same poll
    /// of its future, has no place in that line yet; a `try_acquire` that takes permits then
    /// came first.) Waiters sent to the front are owed the next permits, so while there are
    /// any, nothing is taken.
    #[cold]
    #[inline(never)]
    fn try_acquire_queued(&self, n: usize) -> Option<usize> {
        if self.front_owed.load(SeqCst) != 0 {
            return None;
        }
        self.queue.try_acquire_many(batch(n)).ok()?.forget();
        match self.claim(n) {
            Ok(held) => Some(held),
            Err(left_over) => {
                // The permits paid debt; what is left over goes back to the waiters.
                self.reclaim(left_over);
                None
            }
        }
    }

    /// Joins the line, unless `bound` calls are already queued. Every permit free now is
    /// handed over, and every permit made free from now on follows, until the last waiter
    /// leaves. Each successful call must be matched by one [`leave`](Self::leave).
    #[inline]
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
        // Counted, then the flag read; in `last_left`, the flag lowered, then the count read.
        seq_cst_pair();
        let mut word = self.state.load(SeqCst);
        if word & WAITERS == 0 {
            word = self.state.fetch_or(WAITERS, SeqCst) | WAITERS;
        }
        // Raised the flag or found it up: the free permits go to the line.
        self.hand_over_from(word);
        true
    }

    /// Waits in line for `n` permits (at the front if `at_front`); pass what it gives to
    /// [`take_handed`](Self::take_handed). Call it between `enqueue` and `leave`. Cancel-safe:
    /// tokio's `Acquire` gives back what it was assigned when dropped. (Not an `async fn` of
    /// ours, so the caller's future holds tokio's future and nothing more.)
    pub(crate) fn next_permit(
        &self,
        at_front: bool,
        n: usize,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        if at_front {
            self.front.acquire_many(batch(n))
        } else {
            self.queue.acquire_many(batch(n))
        }
    }

    /// [`next_permit`](Self::next_permit) for one permit: tokio's `acquire()`, whose future is
    /// 8 bytes smaller than `acquire_many`'s (an `async fn` that keeps its argument). A call
    /// of weight 1 waits with this one, so that weights cost it nothing.
    pub(crate) fn next_one(
        &self,
        at_front: bool,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, AcquireError>> + '_ {
        if at_front {
            self.front.acquire()
        } else {
            self.queue.acquire()
        }
    }

    /// Claims the `n` permits that [`next_permit`](Self::next_permit) gave a waiter (already
    /// forgotten: see [`handed`]). The waiter is admitted; or the permits paid debt, or went
    /// to waiters owed at the front, and the waiter is now at the front of the line
    /// (`Handed::Front`) and waits there.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "it takes what the wait came to, as `handed` gives it"
    )]
    #[inline]
    pub(crate) fn take_handed(
        &self,
        handed: Result<(), AcquireError>,
        at_front: bool,
        n: usize,
    ) -> Handed {
        let Ok(()) = handed else {
            unreachable!("limit-runtime: a gate's semaphores are never closed");
        };
        if !at_front
            && self.front_owed.load(SeqCst) != 0
            && free(self.state.load(SeqCst)) >= 0
            && self.pass_to_front(n)
        {
            return Handed::Front;
        }
        match self.claim(n) {
            Ok(held) => Handed::Admitted(held),
            Err(left_over) => {
                self.join_front(n, left_over);
                Handed::Front
            }
        }
    }

    /// Claims `n` permits taken out of a semaphore: counts them as held, and returns the
    /// permits held afterwards. Or, while there is debt, they pay it, and it returns what is
    /// left over (in transit, for the caller to place): not made free, where a hand-over could
    /// give it to a waiter behind this one.
    #[inline]
    fn claim(&self, n: usize) -> Result<usize, usize> {
        let mut word = self.state.load(SeqCst);
        loop {
            let debt = usize::try_from(-free(word)).unwrap_or(0);
            let (next, left_over) = if debt == 0 {
                (word + n as u64, None)
            } else {
                let paid = debt.min(n);
                (word.wrapping_add(frees(paid)), Some(n - paid))
            };
            match self.state.compare_exchange_weak(word, next, SeqCst, SeqCst) {
                Ok(_) => return left_over.map_or(Ok(held(next)), Err),
                Err(actual) => word = actual,
            }
        }
    }

    /// A waiter of weight `n` goes to the front of the line, and is owed `n` permits there;
    /// `left_over` of its own handed permits (what paying the debt left) go there first.
    fn join_front(&self, n: usize, left_over: usize) {
        let _handoff = self.lock();
        self.front_owed.fetch_add(n - left_over, SeqCst);
        if left_over != 0 {
            self.front.add_permits(left_over);
        }
        // Owed raised, then `queue`'s idle permits promoted; in `give_to_lines`, permits added
        // to `queue`, then `front_owed` read. A real fence: a semaphore is on each side.
        fence(SeqCst);
        self.promote();
    }

    /// A waiter at the head of `queue` was handed its `n` permits while others are owed at
    /// the front (tokio hands a cancelled waiter's permits straight to the next in its own
    /// line). The permits go to the front, and the waiter joins the back of the front, still
    /// ahead of everyone left in `queue`. `front_owed` stays: it is owed `n` more for this
    /// waiter, and `n` fewer for the `n` permits put in `front`.
    fn pass_to_front(&self, n: usize) -> bool {
        let _handoff = self.lock();
        if self.front_owed.load(SeqCst) == 0 {
            return false;
        }
        self.front.add_permits(n);
        true
    }

    /// Promotes the permits available in `queue` (nobody there waits for them) to the
    /// waiters owed at the front, up to what they are owed. Called with `handoff` held.
    fn promote(&self) {
        let owed = self.front_owed.load(SeqCst);
        if owed == 0 {
            return;
        }
        let moved = self.queue.forget_permits(owed);
        if moved != 0 {
            self.front_owed.fetch_sub(moved, SeqCst);
            self.front.add_permits(moved);
        }
    }

    /// Leaves the line: admitted, or giving up. `at_front` says a waiter of weight `n` gives
    /// up while waiting in `front` (an admitted waiter passes `false`). The last waiter out
    /// reopens the fast path and reclaims the permits the semaphores still hold.
    #[inline]
    pub(crate) fn leave(&self, at_front: bool, n: usize) {
        if at_front {
            self.leave_front(n);
        } else if self.front_owed.load(SeqCst) != 0 || free(self.state.load(SeqCst)) < 0 {
            self.reclaim_queue();
        }
        if self.waiting.fetch_sub(1, SeqCst) == 1 {
            self.last_left();
        }
    }

    /// A waiter cancelled after tokio handed it permits gives them back to `queue`, and with
    /// nobody else in that line, they lie idle there. That is harmless while nothing is owed,
    /// but waiters owed at the front would wait for them, and a shrink's debt would be paid by
    /// whichever newcomer finds them, which then goes to the front ahead of waiters handed
    /// permits before it. So `queue`'s idle permits are reclaimed at once: they pay the debt,
    /// and the hand-over gives the rest to the front first.
    #[cold]
    #[inline(never)]
    fn reclaim_queue(&self) {
        let handoff = self.lock();
        let idle = self.queue.forget_permits(usize::MAX);
        drop(handoff);
        self.reclaim(idle);
    }

    /// A waiter of weight `n` gives up its place at the front: the waiters left there are owed
    /// `n` fewer permits. Fewer owed if that many are still owed; otherwise the rest was put in
    /// `front` already, where it is now surplus: tokio gave back what the waiter had been
    /// assigned when its `Acquire` was dropped, and the waiters left can be assigned no more
    /// than their weights, so that much is available there. It is reclaimed.
    #[cold]
    #[inline(never)]
    fn leave_front(&self, n: usize) {
        let handoff = self.lock();
        let owed = self.front_owed.load(SeqCst);
        let unowed = owed.min(n);
        if unowed != 0 {
            self.front_owed.fetch_sub(unowed, SeqCst);
        }
        if unowed == n {
            return;
        }
        let surplus = self.front.forget_permits(n - unowed);
        debug_assert_eq!(surplus, n - unowed, "a front waiter's permits went missing");
        drop(handoff);
        self.reclaim(surplus);
    }

    /// Reclaims `permits` taken out of a semaphore: they go back to `free` (paying debt
    /// first), and while calls are queued they are handed over again (to the front first).
    fn reclaim(&self, permits: usize) {
        if permits != 0 {
            self.state.fetch_add(frees(permits), SeqCst);
            self.hand_over();
        }
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
        // Flag lowered, then the semaphores emptied; in `hand_over`, permits added to a
        // semaphore, then the flag read. A real fence: a semaphore is on each side.
        fence(SeqCst);
        self.reclaim_all();
        // A call that queued between the check and the lowering may have seen the flag still
        // up and not raised it; it is counted, so it is seen here (`enqueue`'s pair).
        if self.waiting.load(SeqCst) != 0 {
            self.state.fetch_or(WAITERS, SeqCst);
            // Unlocked first: handing over may take the lock. It races releases and later
            // leavers like every hand-over does.
            drop(handoff);
            self.hand_over();
        }
    }

    /// Reclaims every permit available in the semaphores, and returns whether the flag was
    /// up when they reached `free` (then the caller hands them over again). While the flag is
    /// down no call waits at the front (a front waiter has been queued since before the flag
    /// last went up), so `front` holds nobody's permit then.
    fn reclaim_all(&self) -> bool {
        self.reclaim_idle()
    }

    /// [`reclaim_all`](Self::reclaim_all), for a hand-over that found the flag lowered after
    /// it put permits in a semaphore: rare, and out of its way.
    #[cold]
    #[inline(never)]
    fn reclaim_late(&self) -> bool {
        self.reclaim_idle()
    }

    #[inline]
    fn reclaim_idle(&self) -> bool {
        let idle = self.queue.forget_permits(usize::MAX) + self.front.forget_permits(usize::MAX);
        if idle == 0 {
            return false;
        }
        let before = self.state.fetch_add(frees(idle), SeqCst);
        before & WAITERS != 0
    }

    /// Releases `n` permits taken by `try_acquire` or `take_handed`: one `fetch_add` while
    /// no call waits.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        let before = self.state.fetch_add(give_back(n), SeqCst);
        if before & WAITERS != 0 {
            // The permits are free, and the flag up: they go to the line.
            self.hand_over_from(before.wrapping_add(give_back(n)));
        }
    }

    /// Hands the free permits over to the waiters while calls are queued. Whoever makes
    /// permits free while the flag is up calls this, and so does whoever raises the flag, so
    /// no queued call waits while a permit lies free.
    fn hand_over(&self) {
        self.hand_over_from(self.state.load(SeqCst));
    }

    /// [`hand_over`](Self::hand_over), from `word`, a recent reading of the state (the
    /// compare-and-swap checks it). Inline while there is nothing to do, as in `enqueue`
    /// when no permit is free.
    #[inline]
    fn hand_over_from(&self, word: u64) {
        if word & WAITERS != 0 && free(word) > 0 {
            self.hand_over_loop(word);
        }
    }

    #[inline(never)]
    fn hand_over_loop(&self, first: u64) {
        let mut word = first;
        loop {
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
            // In transit from here until `give_to_lines` has put them in a semaphore.
            self.give_to_lines(moved);
            // Permits added to a semaphore, then the flag read: `last_left`'s pair.
            fence(SeqCst);
            // If the last waiter lowered the flag and emptied the semaphores before these
            // arrived, nobody would take them: reclaim them too.
            if self.state.load(SeqCst) & WAITERS != 0 || !self.reclaim_late() {
                return;
            }
            word = self.state.load(SeqCst);
        }
    }

    /// The second half of `hand_over`: puts `moved` permits in the semaphores, first for the
    /// waiters owed at the front, then in `queue`, which gives them on in FIFO order.
    #[inline]
    fn give_to_lines(&self, moved: usize) {
        if self.front_owed.load(SeqCst) == 0 {
            self.queue.add_permits(moved);
            // Permits added to `queue`, then `front_owed` read: `join_front`'s pair.
            fence(SeqCst);
            if self.front_owed.load(SeqCst) != 0 {
                // A waiter went to the front meanwhile and may have missed these.
                self.promote_locked();
            }
            return;
        }
        self.give_to_front(moved);
    }

    /// [`promote`](Self::promote), under `handoff`.
    #[cold]
    #[inline(never)]
    fn promote_locked(&self) {
        let _handoff = self.lock();
        self.promote();
    }

    /// `give_to_lines` while waiters are owed permits at the front.
    #[cold]
    #[inline(never)]
    fn give_to_front(&self, moved: usize) {
        let _handoff = self.lock();
        let owed = self.front_owed.load(SeqCst);
        let to_front = moved.min(owed);
        if to_front != 0 {
            self.front_owed.fetch_sub(to_front, SeqCst);
            self.front.add_permits(to_front);
        }
        if moved > to_front {
            self.queue.add_permits(moved - to_front);
        }
    }

    /// Changes the limit. Growing takes effect at once (waiters are admitted); shrinking
    /// never revokes a running call, and admits no new call until fewer than `limit` permits
    /// are held.
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
            // Permits available in `queue` (handed over, assigned to nobody) pay the debt
            // now, rather than when a waiter takes them.
            let idle = self.queue.forget_permits(shrink);
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
            assert!(gate.try_acquire(1).is_some());
        }
        assert_eq!(gate.held(), 3);
        gate.set_limit(0); // free goes to -3: debt
        assert_eq!(free(gate.state.load(SeqCst)), -3);
        assert!(gate.try_acquire(1).is_none());
        gate.release(1);
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
        assert_eq!(gate.try_acquire(1), Some(1));
        assert_eq!(gate.try_acquire(1), Some(2));
        gate.set_limit(1); // 2 held, the idle one is gone, 1 owed
        assert!(gate.try_acquire(1).is_none());
        gate.release(1); // pays the debt
        assert!(
            gate.try_acquire(1).is_none(),
            "1 still runs, the limit is 1"
        );
        gate.release(1);
        assert_eq!(gate.try_acquire(1), Some(1));
        assert!(gate.try_acquire(1).is_none());
    }

    #[test]
    fn growing_cancels_debt_before_adding_permits() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.try_acquire(1).is_some());
        gate.set_limit(0);
        gate.set_limit(3); // cancels the 2 owed, adds 1
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.try_acquire(1).is_none());
        gate.release(1);
        gate.release(1);
        gate.release(1);
        for _ in 0..3 {
            assert!(gate.try_acquire(1).is_some());
        }
        assert!(gate.try_acquire(1).is_none());
    }

    #[test]
    fn a_queued_call_closes_the_fast_path_and_the_last_one_out_reopens_it() {
        let gate = Gate::new(1);
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.enqueue(None));
        // The waiter takes its place in the semaphore's queue, as a call does in the same poll
        // as `enqueue`. (Until then it has no place to be overtaken in: a `try_acquire` that
        // finds a permit first simply came first.)
        let mut wait = Box::pin(gate.next_permit(false, 1));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        gate.release(1); // handed to the semaphore, which gives it to the waiter
        assert!(gate.try_acquire(1).is_none(), "a newcomer may not overtake");
        drop(wait); // the waiter gives up: tokio takes back what it was handed
        gate.leave(false, 1); // and the permit comes back to the fast path
        assert_eq!(gate.try_acquire(1), Some(1));
    }

    #[test]
    fn try_acquire_takes_a_permit_nobody_in_the_queue_is_waiting_for() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.enqueue(None));
        let mut wait = Box::pin(gate.next_permit(false, 1));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        gate.release(1); // handed to the waiter, which has not run since
        gate.release(1); // nobody waits for this one
        assert_eq!(gate.try_acquire(1), Some(1), "the free permit is taken");
        assert!(gate.try_acquire(1).is_none(), "the waiter's permit is not");
        let std::task::Poll::Ready(permit) = wait.as_mut().poll(&mut cx) else {
            panic!("the waiter was handed a permit");
        };
        assert!(matches!(
            gate.take_handed(handed(permit), false, 1),
            Handed::Admitted(2)
        ));
        gate.leave(false, 1);
    }

    #[test]
    fn the_queue_bound_counts_queued_calls() {
        let gate = Gate::new(1);
        assert!(gate.enqueue(Some(2)));
        assert!(gate.enqueue(Some(2)));
        assert!(!gate.enqueue(Some(2)));
        assert_eq!(gate.waiting(), 2);
        gate.leave(false, 1);
        assert!(gate.enqueue(Some(2)));
        gate.leave(false, 1);
        gate.leave(false, 1);
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.try_acquire(1), Some(1), "the permit was handed back");
    }
}
