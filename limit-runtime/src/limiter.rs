//! [`Limiter`]: one limit, its permits, its in-flight count and its counters. A call's
//! guards are in `call.rs`.

use std::panic::Location;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::call::{Call, Handle, Keyed, Permit, Unkeyed};
use crate::error::LimitError;
use crate::gate::{Gate, MAX_LIMIT};
use crate::in_flight::InFlight;
use crate::keyed::Keys;
use crate::observe::{self, Observed};
use crate::registry;
use crate::stats::Stats;

/// A concurrency limit that several functions, and code that is not a function, can share.
///
/// Declare it as a `static`, name it in `#[concurrency_limit(limiter = …)]`, or take a permit
/// by hand with [`acquire`](Self::acquire). Every annotated function also has a `Limiter` of
/// its own, which [`limiters()`](crate::limiters) finds by name.
///
/// ```
/// use limit_runtime::{concurrency_limit, Limiter};
///
/// static DATABASE: Limiter = Limiter::new(10).with_name("database");
///
/// #[concurrency_limit(limiter = DATABASE)]
/// async fn load_user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// #[concurrency_limit(limiter = DATABASE)]
/// async fn save_user(_name: String) {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Code that is not a function takes a permit by hand; it counts for `drain()` too.
/// let permit = DATABASE.acquire().await;
/// assert_eq!(DATABASE.running(), 1);
/// drop(permit);
///
/// save_user(load_user(1).await).await; // at most 10 of these, together, at once
/// assert_eq!(DATABASE.stats().admitted, 3);
/// # }
/// ```
// Aligned to two cache lines (the unit that x86 prefetches together): each function's
// limiter is a `static`, and the linker packs them side by side. Unaligned, the end of one
// (read by every call) can share a line with the start of the next (written by every call),
// and two threads calling two independently limited functions then slow each other down.
#[repr(align(128))]
pub struct Limiter {
    name: Name,
    /// The default name, formatted on first use. Leaked, once per limiter, so that `Stats`
    /// and errors can hold a `&'static str`; limiters are `static`s in practice.
    name_cache: OnceLock<&'static str>,
    per_fn: bool,
    /// Set once the limit is known and the limiter is registered.
    initialized: OnceLock<()>,
    pub(crate) gate: Gate,
    pub(crate) keys: OnceLock<Keys>,
    /// Serializes `set_limit`, so that the gate and every key end at the same limit when two
    /// resizes race.
    resize: Mutex<()>,
    /// Calls of all keys holding a permit (the gate counts the others).
    pub(crate) keyed_running: AtomicUsize,
    pub(crate) peak_running: AtomicUsize,
    pub(crate) admitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) in_flight: InFlight,
    /// What the `metrics` feature keeps (the limiter's metric keys); zero-sized without it,
    /// and then never read.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) observed: Observed,
}

#[derive(Clone, Copy)]
enum Name {
    Given(&'static str),
    DefinedAt(&'static Location<'static>),
}

impl Limiter {
    /// The largest limit a limiter accepts: 2^31 − 1, far beyond any number of calls that can
    /// run at once. It lets the hot path keep its counts in one 64-bit word.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// assert_eq!(Limiter::MAX_LIMIT, 2_147_483_647);
    /// ```
    pub const MAX_LIMIT: usize = MAX_LIMIT;

    /// A limiter that lets `limit` calls run at once. A `const fn`, for `static`s.
    ///
    /// Its name is where it is defined (`src/db.rs:12`) until you give it one with
    /// [`with_name`](Self::with_name).
    ///
    /// # Panics
    ///
    /// If `limit` is 0 (which would never admit a call: use [`set_limit(0)`](Self::set_limit)
    /// to pause admission) or above [`MAX_LIMIT`](Self::MAX_LIMIT). In a `static`, that is a
    /// compile-time error.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static UPLOADS: Limiter = Limiter::new(4);
    ///
    /// assert_eq!(UPLOADS.limit(), 4);
    /// // Named after where it is defined: `file.rs:line`.
    /// assert!(UPLOADS.name().contains(".rs:"), "{}", UPLOADS.name());
    /// ```
    #[must_use]
    #[track_caller]
    pub const fn new(limit: usize) -> Self {
        assert!(
            limit != 0,
            "a concurrency limit of 0 would never admit a call; start at 1 or more, and use \
             `set_limit(0)` to pause admission"
        );
        assert!(
            limit <= MAX_LIMIT,
            "a concurrency limit must be at most `Limiter::MAX_LIMIT` (2^31 - 1)"
        );
        Self::with_gate(Name::DefinedAt(Location::caller()), false, Gate::new(limit))
    }

    /// The same limiter, named: the name appears in [`Stats`], [`LimitError`] messages and
    /// [`stragglers()`](crate::stragglers).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static DATABASE: Limiter = Limiter::new(10).with_name("database");
    ///
    /// assert_eq!(DATABASE.name(), "database");
    /// ```
    #[must_use]
    pub const fn with_name(mut self, name: &'static str) -> Self {
        self.name = Name::Given(name);
        self
    }

    /// The limiter of one `#[concurrency_limit]` function. Its limit is given by its first
    /// call. Not a public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn per_fn(name: &'static str) -> Self {
        Self::with_gate(Name::Given(name), true, Gate::new(0))
    }

    const fn with_gate(name: Name, per_fn: bool, gate: Gate) -> Self {
        Self {
            name,
            name_cache: OnceLock::new(),
            per_fn,
            initialized: OnceLock::new(),
            gate,
            keys: OnceLock::new(),
            resize: Mutex::new(()),
            keyed_running: AtomicUsize::new(0),
            peak_running: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            in_flight: InFlight::new(),
            observed: Observed::new(),
        }
    }

    /// The limiter's name: the one given to [`with_name`](Self::with_name) or
    /// `#[concurrency_limit(name = …)]`, else the function's path (`my_crate::api::fetch`)
    /// for a function's own limiter, or the place of definition for a `static`.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static CACHE: Limiter = Limiter::new(2).with_name("cache");
    /// assert_eq!(CACHE.name(), "cache");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.name {
            Name::Given(name) => name,
            Name::DefinedAt(location) => self.name_cache.get_or_init(|| {
                Box::leak(format!("{}:{}", location.file(), location.line()).into_boxed_str())
            }),
        }
    }

    /// The limit now: how many calls may hold a permit at once. For a function with
    /// `key = …`, the limit of each key. 0 for a function's limiter before its first call,
    /// or after [`set_limit(0)`](Self::set_limit).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(3);
    /// assert_eq!(JOBS.limit(), 3);
    /// ```
    #[must_use]
    pub fn limit(&self) -> usize {
        self.gate.limit()
    }

    /// Calls holding a permit now.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(3);
    /// let permit = JOBS.try_acquire().unwrap();
    /// assert_eq!(JOBS.running(), 1);
    /// # drop(permit);
    /// ```
    #[must_use]
    pub fn running(&self) -> usize {
        self.gate.held() + self.keyed_running.load(SeqCst)
    }

    /// Calls waiting for a permit now (polled, and not admitted yet).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(1);
    /// assert_eq!(JOBS.waiting(), 0);
    /// ```
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.gate.waiting() + self.keys.get().map_or(0, Keys::waiting)
    }

    /// Calls in flight now: made and not finished, whether running, waiting, or not polled
    /// yet. This is what [`drain`](Self::drain) and [`drain()`](crate::drain) wait for.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(1);
    /// let permit = JOBS.try_acquire().unwrap();
    /// assert_eq!(JOBS.in_flight(), 1);
    /// drop(permit);
    /// assert_eq!(JOBS.in_flight(), 0);
    /// ```
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.snapshot().in_flight as usize
    }

    /// A snapshot of the limiter's counters.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(2).with_name("jobs");
    /// let (a, b) = (JOBS.try_acquire().unwrap(), JOBS.try_acquire().unwrap());
    /// assert!(JOBS.try_acquire().is_err());
    /// let stats = JOBS.stats();
    /// assert_eq!((stats.running, stats.admitted, stats.rejected), (2, 2, 1));
    /// # drop((a, b));
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            name: self.name(),
            limit: self.limit(),
            running: self.running(),
            waiting: self.waiting(),
            in_flight: self.in_flight(),
            admitted: self.admitted.load(SeqCst),
            rejected: self.rejected.load(SeqCst),
            peak_running: self.peak_running.load(SeqCst),
            active_keys: self.keys.get().map_or(0, Keys::active),
        }
    }

    /// Changes the limit, at once. Growing admits waiting calls right away. Shrinking never
    /// revokes a running call: new calls are admitted only while fewer than `limit` run.
    /// `set_limit(0)` pauses admission until the limit grows again. For a function with
    /// `key = …`, it changes the limit of every key.
    ///
    /// # Panics
    ///
    /// If `limit` is above [`MAX_LIMIT`](Self::MAX_LIMIT).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(1);
    ///
    /// let first = JOBS.try_acquire().unwrap();
    /// assert!(JOBS.try_acquire().is_err());
    /// JOBS.set_limit(2);
    /// let second = JOBS.try_acquire().unwrap();
    /// JOBS.set_limit(0); // pause: both keep running, nothing new starts
    /// drop((first, second));
    /// assert!(JOBS.try_acquire().is_err());
    /// JOBS.set_limit(1);
    /// assert!(JOBS.try_acquire().is_ok());
    /// ```
    pub fn set_limit(&'static self, limit: usize) {
        self.initialize(|| limit);
        let _serial = self.resize.lock().unwrap_or_else(PoisonError::into_inner);
        self.gate.set_limit(limit);
        if let Some(keys) = self.keys.get() {
            keys.set_limit(limit);
        }
    }

    /// Waits for a permit, in FIFO order. The permit counts as a call in flight (for
    /// [`drain()`](crate::drain)) until it is dropped.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static EXPORTS: Limiter = Limiter::new(2);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let permit = EXPORTS.acquire().await;
    /// assert_eq!(EXPORTS.running(), 1);
    /// drop(permit);
    /// # }
    /// ```
    pub async fn acquire(&'static self) -> Permit {
        Permit::new(Self::call_shared(self).admit().await)
    }

    /// Takes a permit if one is free now, without waiting.
    ///
    /// # Errors
    ///
    /// [`LimitError::NoPermit`] when every permit is taken.
    ///
    /// ```
    /// use limit_runtime::{LimitError, Limiter};
    ///
    /// static ONE: Limiter = Limiter::new(1);
    ///
    /// let permit = ONE.try_acquire().unwrap();
    /// assert!(matches!(ONE.try_acquire(), Err(LimitError::NoPermit { .. })));
    /// drop(permit);
    /// ```
    pub fn try_acquire(&'static self) -> Result<Permit, LimitError> {
        Self::call_shared(self)
            .try_admit()
            .map(Permit::new)
            .map_err(|refused| refused.error())
    }

    /// Waits until this limiter has no call in flight. Like [`drain()`](crate::drain), for one
    /// limiter: it returns the first moment nothing is in flight here, and is cancel-safe.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static JOBS: Limiter = Limiter::new(2);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let permit = JOBS.acquire().await;
    /// tokio::spawn(async move {
    ///     tokio::task::yield_now().await;
    ///     drop(permit);
    /// });
    /// JOBS.drain().await;
    /// assert_eq!(JOBS.in_flight(), 0);
    /// # }
    /// ```
    pub async fn drain(&self) {
        self.in_flight.wait_idle().await;
    }

    /// Registers a call of a function's own limiter, found through `handle`: it is in flight
    /// from now until the returned guard is dropped. `limit` is evaluated by the first call
    /// only, however many calls race to be first. Not a public API.
    ///
    /// # Panics
    ///
    /// When the limit is 0 or above [`MAX_LIMIT`](Self::MAX_LIMIT), naming the function and
    /// the value.
    #[doc(hidden)]
    #[inline]
    pub fn call<H: Handle>(handle: H, limit: impl FnOnce() -> usize) -> Call<H> {
        let limiter = handle.limiter();
        limiter.initialize(limit);
        limiter.in_flight.enter(&registry::BUSY_LIMITERS);
        Call::entered(handle, Unkeyed)
    }

    /// `call`, for a function with `key = …`: each distinct key has its own limit. Not a
    /// public API.
    #[doc(hidden)]
    pub fn call_keyed<H: Handle, K>(
        handle: H,
        limit: impl FnOnce() -> usize,
        key: K,
    ) -> Call<H, Keyed>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
    {
        let limiter = handle.limiter();
        limiter.initialize(limit);
        let keys = limiter.keys.get_or_init(Keys::default);
        let slot = keys.enter(key, || limiter.limit());
        limiter.in_flight.enter(&registry::BUSY_LIMITERS);
        Call::entered(handle, Keyed(slot))
    }

    /// `call`, for a `static` limiter (`limiter = PATH`, or `acquire`). Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn call_shared<H: Handle>(handle: H) -> Call<H> {
        let limiter = handle.limiter();
        Self::call(handle, || limiter.limit())
    }

    #[inline]
    fn initialize(&'static self, limit: impl FnOnce() -> usize) {
        if self.initialized.get().is_none() {
            self.initialize_cold(limit);
        }
    }

    #[cold]
    #[inline(never)]
    fn initialize_cold(&'static self, limit: impl FnOnce() -> usize) {
        // `get_or_init` runs one closure at a time and keeps the first result, so a
        // function's limit expression runs exactly once. If it panics (or its value is
        // rejected), the limiter stays uninitialized and the next call tries again.
        self.initialized.get_or_init(|| {
            if self.per_fn {
                let limit = limit();
                let name = self.name();
                assert!(
                    limit != 0,
                    "#[concurrency_limit] on `{name}`: the limit evaluated to 0; \
                     it must be at least 1",
                );
                assert!(
                    limit <= MAX_LIMIT,
                    "#[concurrency_limit] on `{name}`: the limit evaluated to {limit}, \
                     above the maximum of {MAX_LIMIT}",
                );
                self.gate.set_limit(limit);
            }
            registry::register(self);
            observe::registered(self);
        });
    }

    pub(crate) fn counter(&self) -> &InFlight {
        &self.in_flight
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name())
            .field("limit", &self.limit())
            .field("running", &self.running())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
