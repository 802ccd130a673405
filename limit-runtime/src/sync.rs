//! The synchronization primitives of the parts that are model-checked (`gate`, `in_flight`):
//! `std`'s normally, `loom`'s under `--cfg loom`, so that loom can explore every
//! interleaving of their atomics and locks.
//!
//! loom's types cannot be built in a `const` context, so constructors built on them are
//! declared with [`const_fn!`]: `const` normally, a plain `fn` under loom.
//!
//! tokio's `Semaphore` stays tokio's under loom, wrapped: every operation on it also writes
//! one loom atomic. tokio's insides are not loom-aware (tokio model-checks its semaphore
//! itself), so without the write loom would see two semaphore operations of two threads as
//! independent and explore only one of their orders; with it, each operation is one step that
//! conflicts with every other, and loom tries both orders, which is what the gate's hand-over
//! rules are about.
//!
//! tokio's `Notify` cannot stay: its waiter list is invisible to loom, and loom's scheduler
//! then reports a wake-up it never saw as a deadlock. Under loom, `Notify` is a small
//! stand-in with the same contract for the three calls `in_flight` makes (`notified`,
//! `enable`, `notify_waiters`), built on loom's primitives.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom_notify::Notify;
#[cfg(loom)]
pub(crate) use loom_semaphore::Semaphore;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use tokio::sync::Notify;
#[cfg(not(loom))]
pub(crate) use tokio::sync::Semaphore;

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

#[cfg(loom)]
mod loom_semaphore {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::Ordering::SeqCst;
    use std::task::{Context, Poll};

    use loom::sync::atomic::AtomicUsize;
    use tokio::sync::{AcquireError, SemaphorePermit, TryAcquireError};

    /// tokio's `Semaphore`, each operation of which loom sees as a write.
    pub(crate) struct Semaphore {
        inner: tokio::sync::Semaphore,
        seen: AtomicUsize,
    }

    type Acquiring<'a> =
        Pin<Box<dyn Future<Output = Result<SemaphorePermit<'a>, AcquireError>> + Send + 'a>>;

    impl Semaphore {
        pub(crate) fn const_new(permits: usize) -> Self {
            Self {
                inner: tokio::sync::Semaphore::const_new(permits),
                seen: AtomicUsize::new(0),
            }
        }

        /// A step loom schedules around, before each operation.
        fn step(&self) {
            self.seen.fetch_add(1, SeqCst);
        }

        pub(crate) fn add_permits(&self, permits: usize) {
            self.step();
            self.inner.add_permits(permits);
        }

        pub(crate) fn forget_permits(&self, permits: usize) -> usize {
            self.step();
            self.inner.forget_permits(permits)
        }

        pub(crate) fn try_acquire_many(
            &self,
            n: u32,
        ) -> Result<SemaphorePermit<'_>, TryAcquireError> {
            self.step();
            self.inner.try_acquire_many(n)
        }

        pub(crate) fn acquire(&self) -> Acquire<'_> {
            Acquire {
                semaphore: self,
                inner: Box::pin(self.inner.acquire()),
            }
        }

        pub(crate) fn acquire_many(&self, n: u32) -> Acquire<'_> {
            Acquire {
                semaphore: self,
                inner: Box::pin(self.inner.acquire_many(n)),
            }
        }
    }

    /// tokio's `Acquire`, each poll and the drop of which loom sees as a write.
    pub(crate) struct Acquire<'a> {
        semaphore: &'a Semaphore,
        inner: Acquiring<'a>,
    }

    impl<'a> Future for Acquire<'a> {
        type Output = Result<SemaphorePermit<'a>, AcquireError>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            self.semaphore.step();
            self.inner.as_mut().poll(cx)
        }
    }

    impl Drop for Acquire<'_> {
        fn drop(&mut self) {
            self.semaphore.step();
        }
    }
}
