//! Support code shared by this workspace's integration tests and examples. Not published.

use std::sync::atomic::{AtomicUsize, Ordering};

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
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self)
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
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::SeqCst);
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
