//! Support code shared by this workspace's integration tests and examples. Not published.
//!
//! It depends only on what the root package's `[dependencies]` give it (limit-runtime,
//! tokio, and with `redis-tls` rustls, for the TLS test server's fixture). Only the
//! simulator (`sim`) runs on a tokio runtime, on its paused clock; the other helpers poll by
//! hand, with no runtime or `tokio_test`.

use std::fmt::Debug;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use limit_runtime::{LimitError, Limiter};
use tokio::sync::{Mutex, MutexGuard, oneshot};

/// Long enough that only a hang reaches it: a `timeout(HANG, …)` turns a regression into a
/// failure, not a stuck CI job. On a paused tokio clock a hang gets there at once, so the
/// length costs nothing there; in real time it is generous enough for a debug build under
/// load.
///
/// ```
/// assert!(limit_suite::HANG >= std::time::Duration::from_secs(30));
/// ```
pub const HANG: Duration = Duration::from_secs(60);

/// The file-wide lock of [`serial`] and [`serial_async`]. Each test file is a process of its
/// own, with its own copy of this static, so the lock is "file-wide". A tokio mutex, so that
/// a file with both plain and `#[tokio::test]` tests takes one lock from both; it is not
/// poisoned by a test that fails while holding it.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Takes the file-wide lock from a test without a runtime (a plain `#[test]`), and checks
/// that the previous test left nothing in flight, for the tests of a file that calls the
/// process-wide `drain()` or `stragglers()`, or measures the whole process.
///
/// Every test of such a file must hold it while it has calls in flight, or the check
/// fails. It panics inside a tokio runtime (use [`serial_async`] there).
///
/// ```
/// let _serial = limit_suite::serial();
/// // … this test alone has calls in flight …
/// ```
#[track_caller]
pub fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.blocking_lock();
    assert_nothing_in_flight();
    guard
}

/// The same as [`serial`], from a test on a tokio runtime (`#[tokio::test]`).
///
/// ```no_run
/// # async fn test() {
/// let _serial = limit_suite::serial_async().await;
/// // … this test alone has calls in flight …
/// # }
/// ```
pub async fn serial_async() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    assert_nothing_in_flight();
    guard
}

/// Checks that no limited call is in flight anywhere in the process: the process-wide
/// `drain()` is ready at its first poll. Needs no runtime.
///
/// ```
/// limit_suite::assert_nothing_in_flight();
/// ```
#[track_caller]
pub fn assert_nothing_in_flight() {
    let drain = pin!(limit_runtime::drain());
    assert!(
        drain
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready(),
        "a limited call is still in flight (did a previous test leave one?)"
    );
}

/// The limiter registered under `name`: an annotated function's limiter exists once the
/// function has been called (a call made and dropped unpolled is enough, and is never
/// admitted), a static's once it has been used.
///
/// ```
/// #[limit_runtime::concurrency_limit(1, name = "doc/limiter-of")]
/// async fn job() {}
///
/// drop(job()); // The first call registers the limiter.
/// assert_eq!(limit_suite::limiter_of("doc/limiter-of").limit(), 1);
/// ```
#[track_caller]
#[must_use]
pub fn limiter_of(name: &str) -> Limiter {
    limit_runtime::limiter(name).unwrap_or_else(|| panic!("no limiter named {name:?}"))
}

/// A current-thread runtime on a paused clock: calls take simulated time (an adaptive
/// limit's samples with them) and run on this thread, inside its subscriber or recorder.
///
/// ```
/// let runtime = limit_suite::paused_runtime();
/// runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_secs(60)).await }); // at once
/// ```
///
/// # Panics
///
/// If the runtime cannot be built.
#[must_use]
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// A gate that holds a body mid-run until its sender sends or is dropped: the body awaits
/// the receiver (or passes it to [`wait_for`]).
///
/// ```
/// let (release, hold) = limit_suite::gate();
/// release.send(()).unwrap();
/// futures::executor::block_on(hold).unwrap();
/// ```
#[must_use]
pub fn gate() -> (oneshot::Sender<()>, oneshot::Receiver<()>) {
    oneshot::channel()
}

/// A gate that is already open (its sender is gone): a body that awaits it runs straight
/// through.
///
/// ```
/// assert!(futures::executor::block_on(limit_suite::open()).is_err());
/// ```
#[must_use]
pub fn open() -> oneshot::Receiver<()> {
    oneshot::channel().1
}

/// Waits at `gate`, if there is one, until it opens. A dropped sender opens the gate too.
///
/// ```
/// futures::executor::block_on(limit_suite::wait_for(None));
/// futures::executor::block_on(limit_suite::wait_for(Some(limit_suite::open())));
/// ```
pub async fn wait_for(gate: Option<oneshot::Receiver<()>>) {
    if let Some(gate) = gate {
        let _ = gate.await;
    }
}

/// The error type of test "API" functions that return `Result`: anything with
/// `From<LimitError>` will do, and this one keeps the `LimitError` for [`refusal`].
#[derive(Debug)]
pub struct ApiError(pub LimitError);

impl From<LimitError> for ApiError {
    fn from(error: LimitError) -> Self {
        Self(error)
    }
}

/// The `LimitError` a refused call returned; panics if the call returned `Ok`.
///
/// ```
/// use limit_runtime::{LimitError, Limiter};
/// use limit_suite::{ApiError, refusal};
///
/// static ONE: Limiter = Limiter::new(1).with_name("doc/refusal");
/// let _permit = ONE.try_acquire().unwrap();
/// let refused: Result<(), ApiError> = ONE.try_acquire().map(drop).map_err(ApiError::from);
/// assert!(matches!(refusal(refused), LimitError::NoPermit { .. }));
/// ```
#[track_caller]
pub fn refusal<T: Debug>(result: Result<T, ApiError>) -> LimitError {
    match result {
        Err(ApiError(error)) => error,
        Ok(value) => panic!("expected the call to be refused, but it returned Ok({value:?})"),
    }
}

/// The output of a call that must finish at its first poll. Awaiting a call that waits
/// instead would hang a test without a runtime; this fails the test, naming the caller.
///
/// ```
/// let five = futures::executor::block_on(limit_suite::at_once(async { 5 }));
/// assert_eq!(five, 5);
/// ```
#[track_caller]
pub fn at_once<F: Future>(call: F) -> impl Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    async move {
        let mut call = pin!(call);
        match std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("{caller}: the call waited instead of finishing at once"),
        }
    }
}

/// Counts how many bodies run at once, and remembers the most it ever saw (a high-water
/// mark), so a test can check that a limit held and was reached.
///
/// ```
/// let gauge = limit_suite::Gauge::new();
/// {
///     let _a = gauge.enter();
///     let _b = gauge.enter();
///     assert_eq!(gauge.current(), 2);
/// }
/// assert_eq!((gauge.current(), gauge.peak()), (0, 2));
/// ```
#[derive(Debug, Default)]
pub struct Gauge {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    /// A gauge at zero.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            current: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Counts one more body running until the guard is dropped.
    pub fn enter(&self) -> GaugeGuard<'_> {
        self.enter_by(1)
    }

    /// Counts `n` more (a body's weight) until the guard is dropped.
    pub fn enter_by(&self, n: usize) -> GaugeGuard<'_> {
        let now = self.current.fetch_add(n, Ordering::SeqCst) + n;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self, n)
    }

    /// Bodies running now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    /// The most bodies ever seen running at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// One running body of a [`Gauge`].
#[derive(Debug)]
#[must_use = "the body stops counting when the guard is dropped"]
pub struct GaugeGuard<'a>(&'a Gauge, usize);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(self.1, Ordering::SeqCst);
    }
}

/// Yields to the executor once, on any executor (no tokio needed): the future returns
/// `Pending` a single time and wakes itself at once, so other calls get to run.
///
/// ```
/// futures::executor::block_on(limit_suite::yield_now());
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm`, for the tests that
/// check that memory stays flat. Elsewhere than on Linux there is no `statm`, and it is 0, so
/// those checks compare zero with zero.
///
/// ```
/// # #[cfg(target_os = "linux")]
/// assert!(limit_suite::resident_bytes() > 0);
/// ```
#[must_use]
pub fn resident_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|pages| pages.parse().ok())
            .expect("statm's second field is the resident page count");
        pages * page_size()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The page size, from the auxiliary vector (`AT_PAGESZ`), so no libc binding is needed.
#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let auxv = std::fs::read("/proc/self/auxv").expect("read /proc/self/auxv");
    let word = size_of::<usize>();
    let read = |at: &[u8]| -> u64 {
        let mut bytes = [0; 8];
        bytes[..word].copy_from_slice(at);
        u64::from_ne_bytes(bytes)
    };
    auxv.chunks_exact(2 * word)
        .map(|pair| (read(&pair[..word]), read(&pair[word..])))
        .find(|&(kind, _)| kind == AT_PAGESZ)
        .map(|(_, size)| size)
        .expect("the auxiliary vector gives the page size")
}

/// Runs `f`, which must panic, and returns the panic's message and location (`file:line:col`).
///
/// # Panics
///
/// When `f` does not panic.
pub fn panic_of(f: impl FnOnce()) -> (String, String) {
    static SEEN: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);
    static HOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = HOOK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| {
                info.payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
            })
            .unwrap_or_default();
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        *SEEN.lock().unwrap() = Some((message, location));
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    assert!(result.is_err(), "expected a panic");
    SEEN.lock().unwrap().take().expect("the hook saw the panic")
}

/// Every text an error shows: its `Display` and `Debug` (both forms), and those of every
/// error in its `source()` chain. For tests that check what an error never shows (a
/// password, a key).
pub fn every_text_of(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = vec![
        error.to_string(),
        format!("{error:?}"),
        format!("{error:#?}"),
    ];
    let mut source = error.source();
    while let Some(cause) = source {
        texts.push(cause.to_string());
        texts.push(format!("{cause:?}"));
        source = cause.source();
    }
    texts
}

#[cfg(feature = "redis")]
pub mod redis_server;
pub mod sim;
