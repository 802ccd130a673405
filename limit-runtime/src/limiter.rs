//! [`Limiter`]: one limit. The limiter is a handle: its state (permits, in-flight count,
//! counters) is a [`Core`] created at its first use, in `core.rs`. A call's guards are in
//! `call.rs`.

use std::panic::Location;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::adaptive::{Adaptive, Bounds};
use crate::call::{
    Admitted, Call, Claim, Handle, IntoHandle, Keyed, OnHeavy, OwnedPermit, Permit, Unkeyed,
    Weighted,
};
use crate::core::Core;
use crate::error::{LimitError, LimitTooLarge};
use crate::gate::MAX_LIMIT;
use crate::name::Name;
use crate::observe;
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
pub struct Limiter {
    /// The state, created by the first call, permit or resize.
    core: OnceLock<Arc<Core>>,
    /// The limit to start with; 0 for a function's own limiter, whose first call gives it.
    limit: usize,
    name: Setup,
    /// A `file:line` name, made once when it is first asked for before the core exists.
    default_name: OnceLock<Name>,
    /// Serializes the making of the core, so that a function's limit expression runs once
    /// and a rejected limit panics at the caller's line (outside any closure).
    init: Mutex<()>,
    per_fn: bool,
    /// An adaptive limit's bounds, resolved when the limiter is made (`Limiter::adaptive`).
    adaptive: Option<Bounds>,
}

/// A limiter's name before its core exists.
enum Setup {
    Given(Name),
    DefinedAt(&'static Location<'static>),
    /// The own limiter of a method named so: its name is its type's path and this, made at
    /// its first call from `Self`.
    Method(&'static str),
}

impl Limiter {
    /// The largest limit a limiter accepts: 2^31 − 1, far beyond any number of calls that can
    /// run at once. It lets the hot path keep its counts in one 64-bit word.
    ///
    /// It is smaller than tokio's [`Semaphore::MAX_PERMITS`](tokio::sync::Semaphore::MAX_PERMITS)
    /// (`usize::MAX >> 3`), so a range check written against tokio's bound lets through values
    /// that a limiter refuses: check against this one, or use
    /// [`try_set_limit`](Self::try_set_limit).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// assert_eq!(Limiter::MAX_LIMIT, 2_147_483_647);
    /// ```
    pub const MAX_LIMIT: usize = MAX_LIMIT;

    /// A limiter that lets `limit` calls run at once. A `const fn`, so it makes `static`s, and
    /// limiters made at run time too: one per server, per connection pool, per tenant.
    ///
    /// Its name is where it is defined (`src/db.rs:12`) until you give it one with
    /// [`with_name`](Self::with_name) or [`with_owned_name`](Self::with_owned_name).
    ///
    /// It allocates nothing until its first use. A limiter made at run time is listed by
    /// [`limiters()`](crate::limiters) from its first use until it is dropped, and counts for
    /// the process-wide [`drain()`](crate::drain) like any other.
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
    ///
    /// // One per instance, made at run time:
    /// struct Server {
    ///     connections: Limiter,
    /// }
    /// let server = Server { connections: Limiter::new(250) };
    /// let permit = server.connections.try_acquire().unwrap();
    /// assert_eq!(server.connections.running(), 1);
    /// # drop(permit);
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
        Self {
            core: OnceLock::new(),
            limit,
            name: Setup::DefinedAt(Location::caller()),
            default_name: OnceLock::new(),
            init: Mutex::new(()),
            per_fn: false,
            adaptive: None,
        }
    }

    /// An adaptive limiter: its limit starts at `adaptive`'s `initial` and follows what its
    /// calls' durations say the downstream can take, within `[min, max]` (see the README's
    /// "Adaptive limits" for the algorithm, and when not to use it). A `const fn`, for
    /// `static`s; `#[concurrency_limit(adaptive(…))]` gives a function one of its own.
    ///
    /// Its calls are samples: the attribute's calls of it (by `limiter = …`, or its own),
    /// each from its body's start (in the poll that admits it) to its return, on tokio's clock. A call that is cancelled,
    /// panics or is refused is no sample, and neither is a permit taken by hand
    /// ([`acquire`](Self::acquire), [`track`](crate::track)). The limit moves through the
    /// same resizing as [`set_limit`](Self::set_limit), so a shrink never revokes a running
    /// call; a `set_limit` by hand sets the limit now, and the controller goes on from there.
    /// [`limit`](Self::limit) is the limit now, [`stats`](Self::stats)`().adaptive` what the
    /// controller estimates. A fleet cannot share an adaptive limiter
    /// (`FleetError::Adaptive`, with the `redis` feature).
    ///
    /// # Panics
    ///
    /// On bounds that [`Adaptive`] rejects (`min(0)`, `min` above `max`, an `initial`
    /// outside them): at compile time in a `static`.
    ///
    /// ```
    /// use limit_runtime::{Adaptive, Limiter, concurrency_limit};
    ///
    /// static SEARCH: Limiter = Limiter::adaptive(Adaptive::new().max(64)).with_name("search-api");
    ///
    /// #[concurrency_limit(limiter = SEARCH)]
    /// async fn search(query: &str) -> usize {
    ///     query.len()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// assert_eq!(search("rust").await, 4);
    /// assert_eq!(SEARCH.stats().adaptive.unwrap().samples, 1);
    /// assert!(SEARCH.limit() <= 64);
    /// # }
    /// ```
    #[must_use]
    #[track_caller]
    pub const fn adaptive(adaptive: Adaptive) -> Self {
        let bounds = adaptive.resolve();
        let mut limiter = Self::new(bounds.initial);
        limiter.adaptive = Some(bounds);
        limiter
    }

    /// A function's own limiter (`per_fn`, `per_method`), made adaptive: what
    /// `#[concurrency_limit(adaptive(…))]` expands to. Not a public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_adaptive(mut self, adaptive: Adaptive) -> Self {
        let bounds = adaptive.resolve();
        self.limit = bounds.initial;
        self.per_fn = false;
        self.adaptive = Some(bounds);
        self
    }

    /// The same limiter, named: the name appears in [`Stats`], [`LimitError`] messages and
    /// [`stragglers()`](crate::stragglers). A `const fn`, for `static`s; for a name made at
    /// run time, see [`with_owned_name`](Self::with_owned_name).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static DATABASE: Limiter = Limiter::new(10).with_name("database");
    ///
    /// assert_eq!(DATABASE.name(), "database");
    /// ```
    #[must_use]
    pub const fn with_name(self, name: &'static str) -> Self {
        self.named(Name::from_static(name))
    }

    /// The same limiter, with a name made at run time: `format!("server-{port}")`. A `String`,
    /// a `&str` or an `Arc<str>`. (Not a `const fn`; for a `static`, use
    /// [`with_name`](Self::with_name).)
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// let port = 6379;
    /// let connections = Limiter::new(250).with_owned_name(format!("server-{port}"));
    /// assert_eq!(connections.name(), "server-6379");
    /// ```
    #[must_use]
    pub fn with_owned_name(self, name: impl Into<Arc<str>>) -> Self {
        self.named(Name::from(name.into()))
    }

    const fn named(mut self, name: Name) -> Self {
        let previous = std::mem::replace(&mut self.name, Setup::Given(name));
        // A `const fn` may not drop a value whose type has a destructor, even one that holds
        // no `Arc`. Forgetting it leaks nothing unless the limiter was named twice, the first
        // time with an owned name.
        std::mem::forget(previous);
        self
    }

    /// The own limiter of a method with a `self` receiver, named after its type at its first
    /// call (see [`call`](Self::call)). Not a public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn per_method(method: &'static str) -> Self {
        Self {
            core: OnceLock::new(),
            limit: 0,
            name: Setup::Method(method),
            default_name: OnceLock::new(),
            init: Mutex::new(()),
            per_fn: true,
            adaptive: None,
        }
    }

    /// The limiter of one `#[concurrency_limit]` function. Its limit is given by its first
    /// call. Not a public API.
    #[doc(hidden)]
    #[must_use]
    pub const fn per_fn(name: &'static str) -> Self {
        Self {
            core: OnceLock::new(),
            limit: 0,
            name: Setup::Given(Name::from_static(name)),
            default_name: OnceLock::new(),
            init: Mutex::new(()),
            per_fn: true,
            adaptive: None,
        }
    }

    /// A handle to an existing core, for the registry.
    pub(crate) fn from_core(core: Arc<Core>) -> Self {
        Self {
            name: Setup::Given(core.name().clone()),
            default_name: OnceLock::new(),
            init: Mutex::new(()),
            limit: 0,
            per_fn: false,
            adaptive: core.bounds(),
            core: OnceLock::from(core),
        }
    }

    /// The limiter's name: the one given to [`with_name`](Self::with_name) or
    /// `#[concurrency_limit(name = …)]`, else the function's path (`my_crate::api::fetch`, or
    /// `my_crate::server::Handler::run` for a method) for a function's own limiter, or the
    /// place of definition.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static CACHE: Limiter = Limiter::new(2).with_name("cache");
    /// assert_eq!(CACHE.name(), "cache");
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        match (&self.name, self.core.get()) {
            (Setup::Given(name), _) => name,
            (Setup::DefinedAt(_) | Setup::Method(_), Some(core)) => core.name(),
            // Asking for the name is no use of the limiter: it makes no core.
            (Setup::DefinedAt(location), None) => self.default_name(location),
            // A method's own limiter is out of reach until its first call names it.
            (Setup::Method(method), None) => method,
        }
    }

    /// The name, as a `Name` to keep: shared with the core's, or made from the setup's
    /// without copying a given name.
    fn owned_name(&self) -> Name {
        match (&self.name, self.core.get()) {
            (_, Some(core)) => core.name().clone(),
            (Setup::Given(name), None) => name.clone(),
            (Setup::DefinedAt(location), None) => self.default_name(location).clone(),
            (Setup::Method(method), None) => Name::from_static(method),
        }
    }

    fn default_name(&self, location: &Location<'_>) -> &Name {
        self.default_name
            .get_or_init(|| Name::from(format!("{}:{}", location.file(), location.line())))
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
        self.core.get().map_or(self.limit, |core| core.limit())
    }

    /// Permits held now: the calls running, each counted by its weight (1 unless
    /// `weight = …` or `acquire_many` says otherwise).
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
        self.core.get().map_or(0, |core| core.running())
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
        self.core.get().map_or(0, |core| core.waiting())
    }

    /// Calls in flight now: made and not finished, whether running, waiting, or not polled
    /// yet, and futures [`track`](Self::track)ed here. This is what [`drain`](Self::drain) and
    /// [`drain()`](crate::drain) wait for.
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
        self.core.get().map_or(0, |core| core.in_flight())
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
        match self.core.get() {
            Some(core) => core.stats(),
            None => Stats {
                name: self.owned_name(),
                limit: self.limit,
                running: 0,
                waiting: 0,
                in_flight: 0,
                admitted: 0,
                rejected: 0,
                peak_running: 0,
                active_keys: 0,
                fleet: None,
                // What a controller that has seen no call shows.
                adaptive: self
                    .adaptive
                    .map(|bounds| crate::adaptive::state::State::new(bounds).stats()),
            },
        }
    }

    /// Changes the limit, at once. Growing admits waiting calls right away. Shrinking never
    /// revokes a running call: new calls are admitted only while fewer than `limit` run.
    /// `set_limit(0)` pauses admission until the limit grows again. For a function with
    /// `key = …`, it changes the limit of every key.
    ///
    /// # Panics
    ///
    /// If `limit` is above [`MAX_LIMIT`](Self::MAX_LIMIT), at the caller's line, naming the
    /// limiter and the value. [`try_set_limit`](Self::try_set_limit) returns an error
    /// instead.
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
    #[track_caller]
    pub fn set_limit(&self, limit: usize) {
        if let Err(error) = self.try_set_limit(limit) {
            panic!("{error}; `try_set_limit` returns this as an error");
        }
    }

    /// [`set_limit`](Self::set_limit), for a limit that comes from outside the program
    /// (configuration, an operator's request): a limit above
    /// [`MAX_LIMIT`](Self::MAX_LIMIT) is an error, and the limit stays as it was.
    ///
    /// # Errors
    ///
    /// [`LimitTooLarge`] when `limit` is above `MAX_LIMIT`.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// let jobs = Limiter::new(4).with_name("jobs");
    /// let error = jobs.try_set_limit(3_000_000_000).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     r#"concurrency limit "jobs": a limit of 3000000000 is above the maximum of 2147483647 (`Limiter::MAX_LIMIT`)"#
    /// );
    /// assert_eq!(jobs.limit(), 4);
    /// assert!(jobs.try_set_limit(8).is_ok());
    /// ```
    pub fn try_set_limit(&self, limit: usize) -> Result<(), LimitTooLarge> {
        if limit > MAX_LIMIT {
            return Err(LimitTooLarge::new(self.owned_name(), limit));
        }
        self.core_with(|| limit, None).set_limit(limit);
        Ok(())
    }

    /// Waits for a permit, in FIFO order. It counts as a call in flight (for
    /// [`drain()`](crate::drain)) from the moment `acquire` is called, as a call of an
    /// annotated function does, until the permit is dropped (or the wait is). For a permit
    /// that outlives the borrow (to move into a spawned task), see
    /// [`acquire_owned`](Self::acquire_owned); for several permits at once,
    /// [`acquire_many`](Self::acquire_many).
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
    pub fn acquire(&self) -> impl Future<Output = Permit<'_>> {
        // Counted when called, as a call of an annotated function is: not an `async fn`.
        let call = Self::call_shared_weighted(self, 1, OnHeavy::Panic);
        async move { Permit::new(call.admit().await) }
    }

    /// Waits for `n` permits at once, in FIFO order with every other call of this limiter: a
    /// heavy waiter at the head of the line is not overtaken by lighter ones behind it. While
    /// the permit lives it holds `n` of the limit's permits ([`running`](Self::running)
    /// counts permits), and it counts as one call in flight. `n = 0` is granted at once,
    /// without a permit. `n` is checked when this is called, not when the future is first
    /// polled.
    ///
    /// # Panics
    ///
    /// Where it is called, when `n` is above the limit in force then (unless the limit is 0,
    /// which pauses admission and refuses nobody) or above [`MAX_LIMIT`](Self::MAX_LIMIT):
    /// no number of permits given back could admit it. [`try_acquire_many`](Self::try_acquire_many)
    /// returns [`LimitError::TooHeavy`] instead.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static UPLOAD_BYTES: Limiter = Limiter::new(64 << 20).with_name("upload-bytes");
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let body = vec![0u8; 8 << 20];
    /// let permit = UPLOAD_BYTES.acquire_many(body.len()).await;
    /// assert_eq!((permit.permits(), UPLOAD_BYTES.running()), (8 << 20, 8 << 20));
    /// assert_eq!(UPLOAD_BYTES.in_flight(), 1); // one call
    /// # }
    /// ```
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> impl Future<Output = Permit<'_>> {
        let call = Self::call_shared_weighted(self, n, OnHeavy::Panic);
        async move { Permit::new(call.admit().await) }
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
    pub fn try_acquire(&self) -> Result<Permit<'_>, LimitError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free now and no call waits ahead, without waiting.
    ///
    /// # Errors
    ///
    /// [`LimitError::NoPermit`] when fewer than `n` are free (or calls wait for them), and
    /// [`LimitError::TooHeavy`] when `n` is above the limit (unless it is 0) or above
    /// [`MAX_LIMIT`](Self::MAX_LIMIT).
    ///
    /// ```
    /// use limit_runtime::{LimitError, Limiter};
    ///
    /// static BYTES: Limiter = Limiter::new(100);
    ///
    /// let permit = BYTES.try_acquire_many(60).unwrap();
    /// assert!(matches!(BYTES.try_acquire_many(60), Err(LimitError::NoPermit { .. })));
    /// assert!(matches!(BYTES.try_acquire_many(101), Err(LimitError::TooHeavy { .. })));
    /// assert_eq!(BYTES.try_acquire_many(40).unwrap().permits(), 40);
    /// drop(permit);
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Result<Permit<'_>, LimitError> {
        try_admit(Self::call_shared_weighted(self, n, OnHeavy::Refuse)).map(Permit::new)
    }

    /// [`acquire`](Self::acquire), for a limiter in an `Arc`: the permit holds the `Arc`, so
    /// it is `Send + 'static` and moves into a spawned task. It counts for `drain()` like a
    /// call until it is dropped.
    ///
    /// This is how a producer waits its turn: take the permit, then spawn.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let jobs = Arc::new(Limiter::new(2));
    /// for id in 0..10 {
    ///     // Waits here while 2 jobs run, so at most 3 jobs exist at once.
    ///     let permit = Arc::clone(&jobs).acquire_owned().await;
    ///     tokio::spawn(async move {
    ///         let _permit = permit;
    ///         tokio::task::yield_now().await;
    ///         id
    ///     });
    /// }
    /// jobs.drain().await;
    /// assert_eq!(jobs.stats().admitted, 10);
    /// # }
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> impl Future<Output = OwnedPermit> {
        let call = Self::call_shared_weighted(self, 1, OnHeavy::Panic);
        async move { OwnedPermit::new(call.admit().await) }
    }

    /// [`acquire_many`](Self::acquire_many), for a limiter in an `Arc`: see
    /// [`acquire_owned`](Self::acquire_owned).
    ///
    /// # Panics
    ///
    /// As [`acquire_many`](Self::acquire_many) does, where it is called.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bytes = Arc::new(Limiter::new(1024));
    /// let permit = Arc::clone(&bytes).acquire_many_owned(512).await;
    /// tokio::spawn(async move {
    ///     let _permit = permit; // 512 permits, until the task ends
    /// });
    /// bytes.drain().await;
    /// assert_eq!(bytes.running(), 0);
    /// # }
    /// ```
    #[track_caller]
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> impl Future<Output = OwnedPermit> {
        let call = Self::call_shared_weighted(self, n, OnHeavy::Panic);
        async move { OwnedPermit::new(call.admit().await) }
    }

    /// [`try_acquire`](Self::try_acquire), for a limiter in an `Arc`: see
    /// [`acquire_owned`](Self::acquire_owned).
    ///
    /// # Errors
    ///
    /// [`LimitError::NoPermit`] when every permit is taken.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// let one = Arc::new(Limiter::new(1));
    /// let permit = Arc::clone(&one).try_acquire_owned().unwrap();
    /// assert!(Arc::clone(&one).try_acquire_owned().is_err());
    /// drop(permit);
    /// assert!(one.try_acquire_owned().is_ok());
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedPermit, LimitError> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Self::try_acquire_many), for a limiter in an `Arc`: see
    /// [`acquire_owned`](Self::acquire_owned).
    ///
    /// # Errors
    ///
    /// As [`try_acquire_many`](Self::try_acquire_many).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// let bytes = Arc::new(Limiter::new(10));
    /// let permit = Arc::clone(&bytes).try_acquire_many_owned(10).unwrap();
    /// assert!(Arc::clone(&bytes).try_acquire_many_owned(1).is_err());
    /// drop(permit);
    /// ```
    pub fn try_acquire_many_owned(self: Arc<Self>, n: usize) -> Result<OwnedPermit, LimitError> {
        try_admit(Self::call_shared_weighted(self, n, OnHeavy::Refuse)).map(OwnedPermit::new)
    }

    /// Counts `future` as in flight on this limiter, from now until it completes or is
    /// dropped, without taking a permit: [`drain`](Self::drain) (and the process-wide
    /// [`drain()`](crate::drain)) wait for it. For a `static` limiter, the future can be
    /// spawned; for one in an `Arc`, see [`track_owned`](Self::track_owned).
    ///
    /// ```
    /// use limit_runtime::Limiter;
    ///
    /// static HANDLERS: Limiter = Limiter::new(100);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let task = HANDLERS.track(async { tokio::task::yield_now().await });
    /// assert_eq!(HANDLERS.in_flight(), 1); // counted from the call, not the first poll
    /// tokio::spawn(task);
    /// HANDLERS.drain().await;
    /// # }
    /// ```
    pub fn track<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        tracked(Self::call_shared(self), future)
    }

    /// [`track`](Self::track), for a limiter in an `Arc`: the returned future holds the
    /// `Arc`, so it can be spawned.
    ///
    /// ```
    /// use limit_runtime::Limiter;
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handlers = Arc::new(Limiter::new(100));
    /// tokio::spawn(Arc::clone(&handlers).track_owned(async { 1 + 1 }));
    /// assert_eq!(handlers.in_flight(), 1);
    /// handlers.drain().await;
    /// # }
    /// ```
    pub fn track_owned<F: Future>(self: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        tracked(Self::call_shared(self), future)
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
        if let Some(core) = self.core.get() {
            core.counter().wait_idle(&registry::BUSY_LIMITERS).await;
        }
    }

    /// Registers a call of a function's own limiter, found through `handle`: it is in flight
    /// from now until the returned guard is dropped. `limit` is evaluated by the first call
    /// only, however many calls race to be first; it is a `fn` pointer, so that it cannot
    /// capture `self` or an argument (the limit is one per function). For a method's limiter,
    /// `type_name` gives `core::any::type_name::<Self>()`, which names the limiter at its
    /// first call. Not a public API.
    ///
    /// # Panics
    ///
    /// When the limit is 0 or above [`MAX_LIMIT`](Self::MAX_LIMIT), naming the function and
    /// the value.
    #[doc(hidden)]
    #[inline]
    #[track_caller]
    pub fn call<H: Handle>(
        handle: H,
        limit: fn() -> usize,
        type_name: Option<fn() -> &'static str>,
    ) -> Call<H> {
        handle.limiter().core_with(limit, type_name).enter();
        Call::entered(handle, Unkeyed)
    }

    /// `call`, for a function with `key = …`: each distinct key has its own limit. Not a
    /// public API.
    #[doc(hidden)]
    #[track_caller]
    pub fn call_keyed<H: Handle, K>(
        handle: H,
        limit: fn() -> usize,
        type_name: Option<fn() -> &'static str>,
        key: K,
    ) -> Call<H, Keyed>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
    {
        let slot = handle
            .limiter()
            .core_with(limit, type_name)
            .enter_keyed(key);
        Call::entered(handle, Keyed(slot))
    }

    /// `call`, for a limiter that has its limit (`limiter = …`, `acquire`). Not a public API.
    #[doc(hidden)]
    #[inline]
    pub fn call_shared<H: Handle>(handle: H) -> Call<H> {
        handle.limiter().core_with(|| 0, None).enter();
        Call::entered(handle, Unkeyed)
    }

    /// `call`, for `limiter = EXPR`: a `&Limiter` or an `Arc<Limiter>`. Not a public API.
    #[doc(hidden)]
    #[inline]
    // `H` is a parameter rather than `L::Handle`, so that an `L` of the wrong type is one
    // error, here: the unresolved `H` raises no second one where the call is used.
    pub fn call_instance<L, H>(limiter: L) -> Call<H>
    where
        L: IntoHandle<Handle = H>,
        H: Handle,
    {
        Self::call_shared(limiter.into_handle())
    }

    /// `call`, for a function with `weight = …`: the call takes `weight` permits. `on_heavy`
    /// says what a weight above the limit does (see [`Weighted::new`]): a panic here, at
    /// the caller's line, or a refusal when the call is polled. Not a public API.
    ///
    /// # Panics
    ///
    /// As `call` does, and when the weight is above the limit and `on_heavy` says so.
    #[doc(hidden)]
    #[track_caller]
    pub fn call_weighted<H: Handle>(
        handle: H,
        limit: fn() -> usize,
        type_name: Option<fn() -> &'static str>,
        weight: usize,
        on_heavy: OnHeavy,
    ) -> Call<H, Weighted> {
        let core = handle.limiter().core_with(limit, type_name);
        let limit = weigh(core, weight, on_heavy);
        core.enter();
        Call::entered(handle, Weighted::new(Unkeyed, weight, limit))
    }

    /// `call_weighted`, for a function with `key = …` too: `weight` permits of its key's
    /// limit. Not a public API.
    #[doc(hidden)]
    #[track_caller]
    pub fn call_keyed_weighted<H: Handle, K>(
        handle: H,
        limit: fn() -> usize,
        type_name: Option<fn() -> &'static str>,
        key: K,
        weight: usize,
        on_heavy: OnHeavy,
    ) -> Call<H, Weighted<Keyed>>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
    {
        let core = handle.limiter().core_with(limit, type_name);
        // Checked before the key is entered, so that a panic leaves nothing to undo; every
        // key's limit is the limiter's.
        let limit = weigh(core, weight, on_heavy);
        let slot = core.enter_keyed(key);
        Call::entered(handle, Weighted::new(Keyed(slot), weight, limit))
    }

    /// `call_weighted`, for a limiter that has its limit (`limiter = …`, `acquire_many`). Not
    /// a public API.
    #[doc(hidden)]
    #[track_caller]
    pub fn call_shared_weighted<H: Handle>(
        handle: H,
        weight: usize,
        on_heavy: OnHeavy,
    ) -> Call<H, Weighted> {
        // A limiter that has its limit never calls the limit function.
        Self::call_weighted(handle, || 0, None, weight, on_heavy)
    }

    /// `call_weighted`, for `limiter = EXPR`. Not a public API.
    #[doc(hidden)]
    #[track_caller]
    pub fn call_instance_weighted<L, H>(
        limiter: L,
        weight: usize,
        on_heavy: OnHeavy,
    ) -> Call<H, Weighted>
    where
        L: IntoHandle<Handle = H>,
        H: Handle,
    {
        Self::call_shared_weighted(limiter.into_handle(), weight, on_heavy)
    }

    /// Whether the limiter still has the name of the place it was defined at: no name was
    /// given (a fleet needs one that every process agrees on).
    #[cfg(feature = "redis")]
    pub(crate) fn has_default_name(&self) -> bool {
        matches!(self.name, Setup::DefinedAt(_))
    }

    /// The core, created if this is the first use; for sharing it, which is no call.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_core(&self) -> &Core {
        self.core_with(|| 0, None)
    }

    /// Whether the limit is adaptive: read from the handle, without the core, so that a call
    /// of a fixed limit given by `limiter = …` pays one compare for it (`call.rs`).
    #[inline]
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// The core, which exists once a call has been made (the guards' `Handle`s reach it
    /// through here).
    #[inline]
    pub(crate) fn core(&self) -> &Core {
        self.core_with(|| 0, None)
    }

    /// The core, created if this is the first use. `limit` gives a function's own limiter
    /// its limit, and `type_name` a method's limiter its type; neither is called otherwise.
    #[inline]
    #[track_caller]
    fn core_with(
        &self,
        limit: impl FnOnce() -> usize,
        type_name: Option<fn() -> &'static str>,
    ) -> &Core {
        match self.core.get() {
            Some(core) => core,
            None => self.core_cold(limit, type_name),
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn core_cold(
        &self,
        limit: impl FnOnce() -> usize,
        type_name: Option<fn() -> &'static str>,
    ) -> &Core {
        // One first use at a time: a function's limit expression runs exactly once, however
        // many calls race to be first. If it panics (or its value is rejected), the limiter
        // stays without a core and the next call tries again. The rejection panics here,
        // not in a closure, so that `track_caller` points at the user's line.
        let _init = self.init.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(core) = self.core.get() {
            return core;
        }
        let name = match (&self.name, type_name) {
            (Setup::Method(method), Some(type_name)) => method_name(type_name(), method),
            _ => self.owned_name(),
        };
        let limit = if self.per_fn {
            let limit = limit();
            assert!(
                limit != 0,
                "#[concurrency_limit] on `{name}`: the limit evaluated to 0; it must be at least 1",
            );
            assert!(
                limit <= MAX_LIMIT,
                "#[concurrency_limit] on `{name}`: the limit evaluated to {limit}, above the \
                 maximum of {MAX_LIMIT} (`Limiter::MAX_LIMIT`)",
            );
            limit
        } else {
            self.limit
        };
        let core = registry::register(name, limit, self.adaptive);
        observe::registered(&core);
        self.core.get_or_init(|| core)
    }
}

/// The name of a method's own limiter: its type's path, without generic arguments (so that
/// every instantiation shares it), and the method's name.
fn method_name(type_name: &str, method: &str) -> Name {
    let path = type_name.split('<').next().unwrap_or(type_name);
    Name::from(format!("{path}::{method}"))
}

/// Takes a permit for `call` if one is free now.
/// Checks `weight` against `core`'s limit now, and returns that limit: a weight that could
/// never be admitted panics here, at the caller's line, when `on_heavy` says so (otherwise
/// the call is refused when polled).
#[track_caller]
fn weigh(core: &Core, weight: usize, on_heavy: OnHeavy) -> usize {
    let limit = core.limit();
    if on_heavy == OnHeavy::Panic && crate::call::too_heavy(weight, limit) {
        let (bound, what) = if weight > MAX_LIMIT {
            (MAX_LIMIT, "maximum (`Limiter::MAX_LIMIT`)")
        } else {
            (limit, "limit")
        };
        panic!(
            "concurrency limit {:?}: a call of weight {weight} is above the {what} of {bound}, \
             and could never be admitted",
            core.name().as_str()
        );
    }
    limit
}

fn try_admit<H: Handle, K: Claim>(call: Call<H, K>) -> Result<Admitted<H, K>, LimitError> {
    call.try_admit().map_err(|refused| refused.error())
}

/// `future`, counted as the in-flight call `call` until it completes or is dropped.
#[expect(
    clippy::manual_async_fn,
    reason = "an `async fn` would keep each argument twice: captured, and moved into a local"
)]
fn tracked<H: Handle, F: Future>(call: Call<H>, future: F) -> impl Future<Output = F::Output> {
    async move {
        let _call = call;
        future.await
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
