//! Every limiter that has been used in this process, and the process-wide `drain()`.
//!
//! A limiter joins the registry at its first call, before that call is counted, so a drain
//! that walks the registry can never miss a call. Nothing here is touched per call: `drain()`
//! reads each limiter's own counter instead of a global one.

use std::sync::{Mutex, PoisonError};

use crate::in_flight::Snapshot;
use crate::limiter::Limiter;

static LIMITERS: Mutex<Vec<&'static Limiter>> = Mutex::new(Vec::new());

pub(crate) fn register(limiter: &'static Limiter) {
    LIMITERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(limiter);
}

/// One reading of every registered limiter, in registration order.
fn read_all() -> Vec<(&'static Limiter, Snapshot)> {
    let limiters = LIMITERS.lock().unwrap_or_else(PoisonError::into_inner);
    limiters
        .iter()
        .map(|limiter| (*limiter, limiter.in_flight().snapshot()))
        .collect()
}

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
    loop {
        let before = read_all();
        let Some(busy) = before.iter().position(|(_, s)| s.in_flight != 0) else {
            // Idle at one reading each; a second identical reading proves they were idle
            // together at the moment between the two.
            if unchanged_and_idle(&before, &read_all(), None) {
                return;
            }
            continue;
        };
        before[busy].0.in_flight().wait_idle().await;
        // `busy` was idle at some moment after the first reading. If every other limiter
        // was idle and untouched from the first reading to this one, that moment was idle
        // everywhere.
        if unchanged_and_idle(&before, &read_all(), Some(busy)) {
            return;
        }
    }
}

/// Whether every limiter but `except` was idle in `before` and untouched up to `after`, and
/// no limiter was registered in between.
fn unchanged_and_idle(
    before: &[(&'static Limiter, Snapshot)],
    after: &[(&'static Limiter, Snapshot)],
    except: Option<usize>,
) -> bool {
    before.len() == after.len()
        && before.iter().zip(after).enumerate().all(|(i, (b, a))| {
            Some(i) == except || (std::ptr::eq(b.0, a.0) && b.1 == a.1 && b.1.in_flight == 0)
        })
}
