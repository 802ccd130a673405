//! Permits for one limit: tokio's FIFO semaphore plus what it lacks, a limit that can be
//! changed while calls hold permits.
//!
//! Growing adds permits. Shrinking takes back the idle permits at once and records the rest
//! as *debt*: a permit that comes back while there is debt is destroyed instead of returned,
//! and so is a permit that a waiter receives while there is debt (that waiter goes back to
//! waiting). So after `set_limit(n)` returns, a call is admitted only while fewer than `n`
//! hold permits, and no running call is ever revoked.
//!
//! Permits are `forget`-ten as soon as they are acquired and given back with `add_permits`,
//! which is what dropping a tokio permit does; that keeps the guard free of a borrow.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Semaphore;

/// The largest limit a gate accepts: tokio's `Semaphore::MAX_PERMITS`.
pub(crate) const MAX_LIMIT: usize = Semaphore::MAX_PERMITS;

pub(crate) struct Gate {
    semaphore: Semaphore,
    limit: AtomicUsize,
    /// Permits to destroy when they next surface.
    debt: AtomicUsize,
    /// Calls waiting for a permit here, for the `queue` bound.
    waiting: AtomicUsize,
    /// Serializes `set_limit`, so that concurrent resizes compose.
    resize: Mutex<()>,
}

impl Gate {
    pub(crate) const fn new(limit: usize) -> Self {
        Self {
            semaphore: Semaphore::const_new(limit),
            limit: AtomicUsize::new(limit),
            debt: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            resize: Mutex::new(()),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(SeqCst)
    }

    pub(crate) fn waiting(&self) -> &AtomicUsize {
        &self.waiting
    }

    /// Takes a permit if one is free now.
    pub(crate) fn try_acquire(&self) -> bool {
        while let Ok(permit) = self.semaphore.try_acquire() {
            permit.forget();
            if !self.pay_one_debt() {
                return true;
            }
        }
        false
    }

    /// Waits for a permit, in FIFO order. Cancel-safe: tokio's `Acquire` gives back what it
    /// was assigned when dropped, and a permit is forgotten in the same poll it arrives.
    pub(crate) async fn acquire(&self) {
        loop {
            let Ok(permit) = self.semaphore.acquire().await else {
                unreachable!("limit-runtime: a gate's semaphore is never closed");
            };
            permit.forget();
            if !self.pay_one_debt() {
                return;
            }
        }
    }

    /// Gives back one permit taken by `try_acquire` or `acquire`.
    pub(crate) fn release(&self) {
        if !self.pay_one_debt() {
            self.semaphore.add_permits(1);
        }
    }

    /// Pays one unit of debt with the permit in hand; returns whether the permit was consumed.
    fn pay_one_debt(&self) -> bool {
        self.take_debt(1) == 1
    }

    fn take_debt(&self, max: usize) -> usize {
        if self.debt.load(SeqCst) == 0 {
            return 0;
        }
        match self
            .debt
            .fetch_update(SeqCst, SeqCst, |debt| Some(debt - debt.min(max)))
        {
            Ok(before) | Err(before) => before.min(max),
        }
    }

    /// Changes the limit. Growing takes effect at once (waiters are admitted); shrinking
    /// never revokes a running call, and admits no new call until fewer than `limit` run.
    pub(crate) fn set_limit(&self, limit: usize) {
        assert!(
            limit <= MAX_LIMIT,
            "limit-runtime: a limit of {limit} is above the maximum of {MAX_LIMIT}"
        );
        let _serial = self.resize.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.limit.swap(limit, SeqCst);
        if limit > old {
            let grow = limit - old;
            let cancelled = self.take_debt(grow);
            self.semaphore.add_permits(grow - cancelled);
        } else if limit < old {
            let shrink = old - limit;
            self.debt.fetch_add(shrink, SeqCst);
            // Take back idle permits now rather than when they would next be acquired. If
            // returning calls paid some of the debt meanwhile, give back what was over-taken.
            let forgotten = self.semaphore.forget_permits(shrink);
            let paid = self.take_debt(forgotten);
            if paid < forgotten {
                self.semaphore.add_permits(forgotten - paid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_takes_back_idle_permits_and_debt_consumes_returned_ones() {
        let gate = Gate::new(3);
        assert!(gate.try_acquire());
        assert!(gate.try_acquire());
        gate.set_limit(1); // 2 running, 1 idle permit taken back, 1 owed
        assert!(!gate.try_acquire());
        gate.release(); // pays the debt
        assert!(!gate.try_acquire(), "1 still runs, the limit is 1");
        gate.release();
        assert!(gate.try_acquire());
        assert!(!gate.try_acquire());
    }

    #[test]
    fn growing_cancels_debt_before_adding_permits() {
        let gate = Gate::new(2);
        assert!(gate.try_acquire());
        assert!(gate.try_acquire());
        gate.set_limit(0);
        gate.set_limit(3); // cancels the 2 owed, adds 1
        assert!(gate.try_acquire());
        assert!(!gate.try_acquire());
        gate.release();
        gate.release();
        gate.release();
        assert!(gate.try_acquire() && gate.try_acquire() && gate.try_acquire());
        assert!(!gate.try_acquire());
    }
}
