//! Every limiter that has been used in this process, and the process-wide `drain()`.
//!
//! A limiter joins the registry at its first call, before that call is counted, so a drain
//! that walks the registry can never miss a call. Nothing here is written per call while no
//! drain is pending: see `in_flight` for how busy limiters are counted.

use std::sync::{Mutex, PoisonError};

use crate::in_flight::InFlight;
use crate::limiter::Limiter;

static LIMITERS: Mutex<Vec<&'static Limiter>> = Mutex::new(Vec::new());

pub(crate) fn register(limiter: &'static Limiter) {
    LIMITERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(limiter);
}

/// How many limiters are counted as busy. A limiter is marked busy by its first call and
/// unmarked only while a drain is pending (see `in_flight`), so this is written per call only
/// while someone drains.
pub(crate) static BUSY_LIMITERS: InFlight = InFlight::new();

/// Waits until no call of any `#[concurrency_limit]` function is in flight.
///
/// A call is in flight from the moment the function is called (its future is created) until
/// that future completes, is dropped, or panics. `drain()` returns at the first moment it
/// can establish at which nothing was in flight, and it waits for calls made while it is
/// pending too. It returns at once when nothing is in flight.
///
/// It is cancel-safe: drop it, or bound it with `tokio::time::timeout`, and nothing leaks.
/// It needs no particular runtime.
///
/// # Examples
///
/// ```
/// use limit_runtime::{concurrency_limit, drain};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static DONE: AtomicUsize = AtomicUsize::new(0);
///
/// #[concurrency_limit(5)]
/// async fn job(_id: u32) {
///     tokio::task::yield_now().await;
///     DONE.fetch_add(1, Ordering::Relaxed);
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// for id in 0..50 {
///     tokio::spawn(job(id));
/// }
/// drain().await; // every call made above has finished
/// assert_eq!(DONE.load(Ordering::Relaxed), 50);
/// # }
/// ```
///
/// Bounding the wait at shutdown:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// if tokio::time::timeout(Duration::from_secs(10), limit_runtime::drain()).await.is_err() {
///     eprintln!("some limited calls were still running after 10s");
/// }
/// # }
/// ```
pub async fn drain() {
    BUSY_LIMITERS
        .wait_idle_after(|| {
            let limiters = LIMITERS.lock().unwrap_or_else(PoisonError::into_inner);
            for limiter in limiters.iter() {
                limiter.counter().unmark(&BUSY_LIMITERS);
            }
        })
        .await;
}

/// Every limiter used so far in this process, in the order of first use: each annotated
/// function's own limiter (once the function has been called), and each `static`
/// [`Limiter`] (once it has been used). This answers "what is still running?" at shutdown;
/// [`stragglers()`](crate::stragglers) formats the answer for a log line.
///
/// A function's limiter is named after the function's path, `module_path!()` + `::` + the
/// function's name (so `my_crate::api::fetch`), unless `name = "…"` says otherwise.
///
/// ```
/// use limit_runtime::{concurrency_limit, limiters};
///
/// mod api {
///     #[limit_runtime::concurrency_limit(3)]
///     pub async fn fetch() {}
/// }
///
/// let call = api::fetch();
/// let limiter = limiters()
///     .find(|limiter| limiter.name().ends_with("api::fetch"))
///     .expect("called once, so registered");
/// assert_eq!((limiter.limit(), limiter.in_flight()), (3, 1));
/// # drop(call);
/// ```
pub fn limiters() -> impl Iterator<Item = &'static Limiter> {
    LIMITERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .into_iter()
}

/// The limiter named `name`, if one has been used in this process (the first one, if
/// several share the name). See [`limiters()`] for the naming rule.
///
/// ```
/// use limit_runtime::{concurrency_limit, limiter};
///
/// #[concurrency_limit(2, name = "thumbnails")]
/// async fn thumbnail(id: u32) -> u32 {
///     id
/// }
///
/// # futures::executor::block_on(async {
/// thumbnail(1).await;
/// assert_eq!(limiter("thumbnails").unwrap().stats().admitted, 1);
/// # });
/// ```
#[must_use]
pub fn limiter(name: &str) -> Option<&'static Limiter> {
    limiters().find(|limiter| limiter.name() == name)
}
