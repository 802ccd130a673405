//! The synchronization primitives of the parts that are model-checked (`gate`, `in_flight`):
//! `std`'s normally, `loom`'s under `--cfg loom`, so that loom can explore every
//! interleaving of their atomics and locks.
//!
//! loom's types cannot be built in a `const` context, so constructors built on them are
//! declared with [`const_fn!`]: `const` normally, a plain `fn` under loom.
//!
//! tokio's `Semaphore` stays tokio's under loom: loom treats each of its operations as one
//! step, which is what they are to the gate (tokio model-checks the semaphore itself). tokio's
//! `Notify` cannot stay: its waiter list is invisible to loom, and loom's scheduler then
//! reports a wake-up it never saw as a deadlock. Under loom, `Notify` is a small stand-in with
//! the same contract for the three calls `in_flight` makes (`notified`, `enable`,
//! `notify_waiters`), built on loom's primitives.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom_notify::Notify;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use tokio::sync::Notify;

/// Declares a function that is `const` except under loom.
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $($rest)*

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

#[cfg(loom)]
mod loom_notify {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::Ordering::SeqCst;
    use std::task::{Context, Poll, Waker};

    use loom::sync::Mutex;
    use loom::sync::atomic::AtomicUsize;

    /// tokio's `Notify`, as far as `notify_waiters` goes: a `Notified` receives every
    /// `notify_waiters` call made after it was created, polled or not.
    pub(crate) struct Notify {
        calls: AtomicUsize,
        wakers: Mutex<Vec<Waker>>,
    }

    impl Notify {
        pub(crate) fn const_new() -> Self {
            Self {
                calls: AtomicUsize::new(0),
                wakers: Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                notify: self,
                since: self.calls.load(SeqCst),
            }
        }

        pub(crate) fn notify_waiters(&self) {
            self.calls.fetch_add(1, SeqCst);
            let wakers = std::mem::take(&mut *self.wakers.lock().unwrap());
            for waker in wakers {
                waker.wake();
            }
        }
    }

    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        since: usize,
    }

    impl Notified<'_> {
        /// A no-op: this stand-in counts calls from its creation, which tokio guarantees
        /// from `enable` at the latest.
        pub(crate) fn enable(self: Pin<&mut Self>) {}
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.notify.calls.load(SeqCst) != self.since {
                return Poll::Ready(());
            }
            let mut wakers = self.notify.wakers.lock().unwrap();
            // Checked again under the lock: `notify_waiters` counts before it takes the
            // wakers, so a call that this check misses will find this waker.
            if self.notify.calls.load(SeqCst) != self.since {
                return Poll::Ready(());
            }
            wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Orders a `SeqCst` write before a later `SeqCst` read of another location, in the
/// store-buffer pattern (each side writes one word, then reads the other's). The C++ memory
/// model already forbids both reads missing both writes when every access is `SeqCst`, so
/// outside loom this is nothing, and the hot path pays nothing. loom models `SeqCst` accesses
/// more weakly and needs a `SeqCst` fence to see that guarantee, so under loom it is one.
#[inline(always)]
pub(crate) fn seq_cst_pair() {
    #[cfg(loom)]
    fence(std::sync::atomic::Ordering::SeqCst);
}
