//! The limiter behind one annotated function: the permits, the in-flight count, the name.
//!
//! A call goes through two guards. [`Call`] exists from the moment the function is called
//! until its future is finished or dropped: that is what `drain()` waits for. [`Admitted`]
//! adds the permit, and exists only while the body runs.

use std::sync::OnceLock;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::in_flight::InFlight;
use crate::registry;

/// The largest limit a limiter accepts: tokio's `Semaphore::MAX_PERMITS`.
pub(crate) const MAX_LIMIT: usize = Semaphore::MAX_PERMITS;

/// The limiter of one `#[concurrency_limit]` function, created in a `static` by the expansion.
///
/// It starts with no permits. The first call evaluates the limit, checks it, adds that many
/// permits and registers the limiter, so that `drain()` can find it.
pub struct Limiter {
    name: &'static str,
    initialized: OnceLock<usize>,
    semaphore: Semaphore,
    in_flight: InFlight,
}

impl Limiter {
    /// A limiter whose limit is given at its first call. `name` is the function's path.
    #[doc(hidden)]
    #[must_use]
    pub const fn per_fn(name: &'static str) -> Self {
        Self {
            name,
            initialized: OnceLock::new(),
            semaphore: Semaphore::const_new(0),
            in_flight: InFlight::new(),
        }
    }

    /// Registers a call: it is in flight from now until the returned guard is dropped.
    ///
    /// `limit` is evaluated by the first call only, however many calls race to be first.
    /// It panics, naming the function and the value, when the limit is 0 or above
    /// [`Semaphore::MAX_PERMITS`].
    #[doc(hidden)]
    #[inline]
    pub fn call(&'static self, limit: impl FnOnce() -> usize) -> Call {
        if self.initialized.get().is_none() {
            self.initialize(limit);
        }
        self.in_flight.enter(&registry::BUSY_LIMITERS);
        Call { limiter: self }
    }

    #[cold]
    #[inline(never)]
    fn initialize(&'static self, limit: impl FnOnce() -> usize) {
        // `get_or_init` runs one closure at a time and keeps the first value, so the limit
        // expression runs exactly once. If it panics (or the value is rejected), the limiter
        // stays uninitialized and the next call tries again.
        self.initialized.get_or_init(|| {
            let limit = limit();
            let name = self.name;
            assert!(
                limit != 0,
                "#[concurrency_limit] on `{name}`: the limit evaluated to 0; it must be at least 1",
            );
            assert!(
                limit <= MAX_LIMIT,
                "#[concurrency_limit] on `{name}`: the limit evaluated to {limit}, \
                 above the maximum of {MAX_LIMIT}",
            );
            self.semaphore.add_permits(limit);
            registry::register(self);
            limit
        });
    }

    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name)
            .field("limit", &self.initialized.get())
            .field("in_flight", &self.in_flight.snapshot().in_flight)
            .finish_non_exhaustive()
    }
}

/// One call of a limited function, counted as in flight until it is dropped.
#[doc(hidden)]
#[must_use = "a call stops counting as in flight when this guard is dropped"]
pub struct Call {
    limiter: &'static Limiter,
}

impl Call {
    /// Waits for a permit, in FIFO order with the other calls of the same limiter.
    #[doc(hidden)]
    pub async fn admit(self) -> Admitted {
        let permit = match self.limiter.semaphore.acquire().await {
            Ok(permit) => permit,
            // The semaphore is private and never closed.
            Err(_) => unreachable!("limit-runtime: a limiter's semaphore was closed"),
        };
        Admitted {
            _permit: permit,
            _call: self,
        }
    }
}

impl Drop for Call {
    #[inline]
    fn drop(&mut self) {
        self.limiter.in_flight.exit(&registry::BUSY_LIMITERS);
    }
}

/// A call that holds a permit. Dropping it returns the permit first, then ends the call,
/// so that when `drain()` returns every permit is back.
#[doc(hidden)]
#[must_use = "the permit is returned when this guard is dropped"]
pub struct Admitted {
    // Field order is drop order: the permit goes back before the call stops counting.
    _permit: SemaphorePermit<'static>,
    _call: Call,
}
