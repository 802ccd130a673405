//! Limit how many calls of an async function run at once, and wait for all of them to finish.
//!
//! Put [`#[concurrency_limit(N)]`](concurrency_limit) on an `async fn` and at most `N` calls
//! of it run at once; the others wait their turn, first come, first served. Call
//! [`drain()`] at shutdown and it returns once every call made so far has finished,
//! including calls that were spawned but have not started yet.
//!
//! ```
//! use limit_runtime::{concurrency_limit, drain};
//!
//! #[concurrency_limit(5)] // at most 5 calls of `fetch` run at once
//! async fn fetch(url: String) -> usize {
//!     url.len()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! for i in 0..50 {
//!     tokio::spawn(fetch(format!("https://example.com/{i}")));
//! }
//! drain().await; // returns once every call made so far has finished
//! # }
//! ```
//!
//! # Semantics
//!
//! - At most `N` bodies of an annotated function run at once, and `N` do run when there is
//!   enough work.
//! - A call counts as *in flight* from the moment it is made (the function is called and its
//!   future created), not from its first poll. It stops counting when its future completes,
//!   is dropped (never polled, waiting, or mid-body), or its body panics. That is what makes
//!   `for job in jobs { tokio::spawn(f(job)); } drain().await;` wait for every job.
//! - The permit is held only while the body runs. Waiting is FIFO. Cancelling a call at any
//!   point returns its permit and its in-flight count at once.
//! - [`drain()`] returns the first moment no limited call is in flight anywhere in the
//!   process. It is cancel-safe; bound it with `tokio::time::timeout`.
//! - There is one limit per annotated function item, shared by all callers, threads,
//!   runtimes, receivers and generic instantiations.
//! - Nothing here needs a particular executor: the limiter is built on `tokio::sync`, which
//!   works under any runtime, `futures::executor::block_on` included. Only `max_wait` with a
//!   non-zero duration needs a tokio runtime with its time driver.
//!
//! # Handles
//!
//! Every annotated function has a [`Limiter`] of its own, and a `static` [`Limiter`] can be
//! shared by several functions (`#[concurrency_limit(limiter = DATABASE)]`) and by code that
//! takes permits by hand. [`limiters()`] lists the limiters used so far, [`limiter()`] finds
//! one by name, [`Limiter::stats`] reads its counters, [`Limiter::set_limit`] resizes it, and
//! [`stragglers()`] reports what is still in flight when a bounded [`drain()`] times out.
//!
//! # Limitations
//!
//! - A limited function that awaits itself (directly or not) while its own callers hold all
//!   `N` permits waits forever: keep recursion depth below the limit.
//! - A limited call held un-polled while its task waits on something else (a `select!` branch
//!   that is not polled, say) still counts as in flight and may hold its permit;
//!   [`drain()`] waits for it.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// Under `--cfg loom` only the model-checked parts are built, with loom's primitives, and the
// models in `loom_models` run against them (see the README's Testing section).
#![cfg_attr(loom, allow(dead_code))]

#[cfg(not(loom))]
mod call;
#[cfg(not(loom))]
mod error;
mod gate;
mod in_flight;
#[cfg(not(loom))]
mod keyed;
#[cfg(not(loom))]
mod limiter;
#[cfg(all(loom, test))]
mod loom_models;
#[cfg(not(loom))]
mod registry;
#[cfg(not(loom))]
mod stats;
mod sync;

#[cfg(not(loom))]
pub use call::Permit;
#[cfg(not(loom))]
pub use error::LimitError;
/// Limits how many calls of an `async fn` run at once.
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// #[concurrency_limit(5)]
/// async fn fetch(url: String) -> usize {
///     url.len()
/// }
/// # futures::executor::block_on(async { assert_eq!(fetch("abc".into()).await, 3) });
/// ```
///
/// # The limit
///
/// A positive integer literal, or any expression of type `usize`. An expression is
/// evaluated once, at the first call, so it may read configuration or the environment. It
/// is evaluated in the function's scope, so `Self::CONSTANT` works in methods.
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// const MAX_JOBS: usize = 8;
///
/// fn limit_from_config() -> usize {
///     std::env::var("WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4)
/// }
///
/// #[concurrency_limit(MAX_JOBS)]
/// async fn job(id: u32) -> u32 {
///     id
/// }
///
/// #[concurrency_limit(limit_from_config())]
/// async fn crawl(url: &str) -> usize {
///     url.len()
/// }
///
/// struct Client;
///
/// impl Client {
///     const LIMIT: usize = 16;
///
///     #[concurrency_limit(Self::LIMIT)]
///     async fn get(&self, path: &str) -> String {
///         format!("GET {path}")
///     }
/// }
/// # futures::executor::block_on(async {
/// #     assert_eq!(job(1).await + crawl("ab").await as u32, 3);
/// #     assert_eq!(Client.get("/").await, "GET /");
/// # });
/// ```
///
/// A literal `0`, a negative, string or non-integer literal, or a literal above
/// [`Limiter::MAX_LIMIT`] (2^31 − 1) is a compile error. An expression that evaluates to 0 or above
/// the maximum panics at the first call, with a message that names the function and the
/// value:
///
/// ```should_panic
/// use limit_runtime::concurrency_limit;
///
/// fn no_workers() -> usize {
///     0
/// }
///
/// #[concurrency_limit(no_workers())]
/// async fn job() {}
///
/// let _ = job(); // panics: "… the limit evaluated to 0; it must be at least 1"
/// ```
///
/// # Options
///
/// Options follow the limit, in any order, and combine unless said otherwise.
///
/// - `limiter = PATH`: use the `static` [`Limiter`] at `PATH`, shared with every function
///   that names it, instead of a limiter of the function's own. It replaces the positional
///   limit, and excludes `key` and `name`. The expansion's handle type returns `&PATH`
///   where a function with its own limiter has its `static`.
/// - `max_wait = EXPR`: a `Duration`. If no permit comes in time, the body does not run and
///   the call returns `Err(From::from(LimitError::Timeout { .. }))`. `Duration::ZERO` fails
///   at once (`LimitError::NoPermit`) and needs no runtime; any other value needs a tokio
///   runtime with the time driver (`tokio::time::timeout` is used).
/// - `queue = N`: at most `N` calls wait at once (from their first poll until they are
///   admitted); a call that finds `N` waiting fails at once with `LimitError::QueueFull`.
///   `queue = 0` lets no call wait.
/// - `key = EXPR`: evaluated when the call is made, so it may borrow the arguments; it yields
///   an owned `Hash + Eq + Send + Sync + 'static` value, and each distinct key gets its own
///   limit of `N`. A key with no call in flight is forgotten.
/// - `name = "…"`: the limiter's name in [`Stats`], [`LimitError`] and [`stragglers()`]. The
///   default is `module_path!()` + `::` + the function's name.
///
/// `max_wait` and `queue` need a return type that is a path ending in `Result`
/// (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`) with `E: From<LimitError>`. The
/// refused call returns before its body runs; `max_wait` and `queue` are evaluated when the
/// call is made.
///
/// ```
/// use limit_runtime::{concurrency_limit, LimitError, Limiter};
/// use std::time::Duration;
///
/// static DATABASE: Limiter = Limiter::new(10).with_name("database");
///
/// #[derive(Debug)]
/// struct ApiError(LimitError);
///
/// impl From<LimitError> for ApiError {
///     fn from(error: LimitError) -> Self {
///         ApiError(error)
///     }
/// }
///
/// #[concurrency_limit(limiter = DATABASE)]
/// async fn load_user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// #[concurrency_limit(5, max_wait = Duration::from_millis(200), name = "github-api")]
/// async fn call_api(path: &str) -> Result<String, ApiError> {
///     Ok(format!("GET {path}"))
/// }
///
/// #[concurrency_limit(5, queue = 100, max_wait = Duration::from_secs(1))]
/// async fn render(page: u32) -> std::io::Result<u32> {
///     Ok(page)
/// }
///
/// fn host_of(url: &str) -> String {
///     url.split('/').nth(2).unwrap_or_default().to_owned()
/// }
///
/// #[concurrency_limit(2, key = host_of(&url), max_wait = Duration::from_millis(500))]
/// async fn crawl(url: String) -> anyhow::Result<usize> {
///     Ok(url.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// assert_eq!(load_user(1).await, "user 1");
/// assert_eq!(call_api("/repos").await.unwrap(), "GET /repos");
/// assert_eq!(render(3).await?, 3);
/// assert_eq!(crawl("https://example.com/a".into()).await?, 21);
/// assert_eq!(limit_runtime::limiter("github-api").unwrap().stats().admitted, 1);
/// # Ok(())
/// # }
/// ```
///
/// # What it expands to
///
/// The `async fn` becomes a plain `fn` returning `impl Future`. The plain `fn` registers the
/// call, so the call is in flight from the moment it is made; the future it returns waits
/// for a permit and then runs the body. For
///
/// ```
/// # use limit_runtime::concurrency_limit;
/// #[concurrency_limit(5)]
/// async fn fetch(url: String) -> usize {
///     url.len()
/// }
/// ```
///
/// `cargo expand` shows (this block compiles as it stands):
///
/// ```
/// fn fetch(url: String) -> impl ::core::future::Future<Output = usize> {
///     let __call = {
///         struct __Limiter;
///         impl ::limit_runtime::__private::Handle for __Limiter {
///             #[inline]
///             fn limiter(&self) -> &'static ::limit_runtime::__private::Limiter {
///                 static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
///                     ::core::concat!(::core::module_path!(), "::fetch"),
///                 );
///                 &__LIMITER
///             }
///         }
///         ::limit_runtime::__private::Limiter::call(__Limiter, || 5)
///     };
///     async move {
///         let __permit = __call.admit().await;
///         let url = url;
///         #[allow(clippy::diverging_sub_expression)]
///         let __ret: usize = { url.len() };
///         #[allow(unreachable_code)] __ret
///     }
/// }
/// # futures::executor::block_on(async { assert_eq!(fetch("ab".into()).await, 2) });
/// ```
///
/// The zero-sized `__Limiter` type finds the function's limiter, a `static`, so the call's
/// guards take no space in its future. Written by hand, that is a `static`
/// `tokio::sync::Semaphore`, plus an in-flight counter
/// and a `Notify` for [`drain()`], plus a guard created *before* the `async` block so that an
/// unpolled call is counted, plus a `let` for each argument so that arguments the body does
/// not mention still live as long as the body, as in an `async fn`, plus a `let` with the
/// declared type so that the body's value is coerced to it, as in an `async fn`.
///
/// The returned future captures every lifetime in scope, as an `async fn`'s does, also in
/// edition-2021 crates; it is `Send` exactly when the body's future is.
///
/// # Where it applies
///
/// Any `async fn`: free functions of any visibility, methods with any receiver (`&self`,
/// `&mut self`, `self`, `self: Arc<Self>`, `self: Pin<&mut Self>`), generic functions,
/// `async fn` in trait impls. One limiter per function item is shared by every caller,
/// receiver and generic instantiation:
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// struct Store;
///
/// impl Store {
///     // `a.load()` and `b.load()` share these 2 permits, as do `load::<u8>` and
///     // `load::<String>` below.
///     #[concurrency_limit(2)]
///     async fn load<T: Default>(&self) -> T {
///         T::default()
///     }
/// }
/// # futures::executor::block_on(async {
/// #     let (a, b) = (Store, Store);
/// #     assert_eq!(a.load::<u8>().await, 0);
/// #     assert_eq!(b.load::<String>().await, "");
/// # });
/// ```
///
/// Methods of an `#[async_trait]` impl work too: `#[async_trait]` runs first and hands the
/// attribute a `fn` returning `Pin<Box<dyn Future + Send + 'async_trait>>` whose body is
/// `Box::pin(async move { … })`; the attribute recognises that form and limits the boxed
/// block, still counting the call from the moment it is made.
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// #[async_trait::async_trait]
/// trait Service {
///     async fn call(&self, request: u32) -> u32;
/// }
///
/// struct Doubler;
///
/// #[async_trait::async_trait]
/// impl Service for Doubler {
///     #[concurrency_limit(4)]
///     async fn call(&self, request: u32) -> u32 {
///         request * 2
///     }
/// }
/// # futures::executor::block_on(async { assert_eq!(Doubler.call(2).await, 4) });
/// ```
///
/// Anything else is a compile error that says what is accepted: a plain `fn`, a `const fn`,
/// a trait method declaration without a body (put the attribute on the impl), or an item
/// that is not a function.
#[cfg(not(loom))]
#[doc(inline)]
pub use limit_macro::concurrency_limit;
#[cfg(not(loom))]
pub use limiter::Limiter;
#[cfg(not(loom))]
pub use registry::{drain, limiter, limiters};
#[cfg(not(loom))]
pub use stats::{Stats, Stragglers, stragglers};

/// What the expansion of `#[concurrency_limit]` refers to. Not a public API: it may change
/// in any release.
#[cfg(not(loom))]
#[doc(hidden)]
pub mod __private {
    pub use crate::call::{Admitted, Call, Handle, Key, Keyed, Policy, Refused, Unkeyed};
    pub use crate::limiter::Limiter;
}
