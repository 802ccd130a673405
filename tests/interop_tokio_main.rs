//! Annotated functions and `drain()` under tokio's own entry-point attributes:
//! `#[tokio::test]` in both flavors (and with a paused clock), and `#[tokio::main]` on a
//! function of this file called from a plain `#[test]`, in both flavors.
//!
//! Both attributes turn an `async fn` into a plain `fn` that builds a runtime and blocks on
//! the body, so what is checked here is that the limiter and `drain()` behave the same inside
//! those runtimes as anywhere else: the limit holds and is reached, calls spawned before any
//! task ran are waited for, and a runtime shut down with calls still in flight drops them,
//! which ends them for `drain()` too.
//!
//! No test relies on timing: bodies wait on a `tokio::sync::Barrier` sized to the limit, so
//! the peak reaches the limit without sleeping. `drain()` sees every limited call in the
//! process and the tests of one file run as threads of one process, so every test takes
//! the file-wide lock first (`serial()`, `serial_async()`) and leaves nothing in flight.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use limit_runtime::{LimitError, concurrency_limit, drain, limiter};
use limit_suite::{Gauge, HANG, assert_nothing_in_flight, serial, serial_async};
use tokio::sync::{Barrier, oneshot};
use tokio::time::timeout;

/// A limited job: it counts itself in `gauge` while it runs, and waits in `group` until as
/// many jobs as the group's size run at once.
struct Jobs {
    running: Gauge,
    group: Barrier,
    done: AtomicUsize,
}

impl Jobs {
    fn new(limit: usize) -> Self {
        Self {
            running: Gauge::new(),
            group: Barrier::new(limit),
            done: AtomicUsize::new(0),
        }
    }

    async fn work(&self) {
        let _running = self.running.enter();
        self.group.wait().await;
        self.done.fetch_add(1, SeqCst);
    }

    #[track_caller]
    fn assert_all_done(&self, calls: usize, limit: usize) {
        assert_eq!(self.done.load(SeqCst), calls, "drain() returned early");
        assert_eq!(self.running.current(), 0);
        assert_eq!(self.running.peak(), limit, "the limit held and was reached");
    }
}

// ---------------------------------------------------------------------------------------
// #[tokio::test]
// ---------------------------------------------------------------------------------------

static CURRENT: LazyLock<Jobs> = LazyLock::new(|| Jobs::new(3));

#[concurrency_limit(3)]
async fn current_job() {
    CURRENT.work().await;
}

#[tokio::test]
async fn tokio_test_current_thread_waits_for_spawned_calls() {
    let _serial = serial_async().await;
    for _ in 0..30 {
        // No spawned task runs before this one yields, first inside drain(): it returns
        // after these calls only because they count from the moment they are made.
        tokio::spawn(current_job());
    }
    timeout(HANG, drain()).await.expect("drain() hung");
    CURRENT.assert_all_done(30, 3);
}

static MULTI: LazyLock<Jobs> = LazyLock::new(|| Jobs::new(4));

#[concurrency_limit(4)]
async fn multi_job() {
    MULTI.work().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_test_multi_thread_waits_for_spawned_calls() {
    let _serial = serial_async().await;
    for _ in 0..100 {
        tokio::spawn(multi_job());
    }
    timeout(HANG, drain()).await.expect("drain() hung");
    MULTI.assert_all_done(100, 4);
    let stats = limiter("interop_tokio_main::multi_job")
        .expect("registered")
        .stats();
    assert_eq!((stats.admitted, stats.peak_running), (100, 4));
}

#[concurrency_limit(1, max_wait = Duration::from_secs(5), name = "paused")]
async fn paused_job(gate: oneshot::Receiver<()>) -> Result<(), LimitError> {
    let _ = gate.await;
    Ok(())
}

/// `max_wait` runs on tokio's timer, so a paused test clock drives it: the runtime, idle
/// while the second call waits, jumps the clock to the earliest deadline, which is the
/// call's 5 s (it must be shorter than `HANG`, whose timer runs on the same virtual clock).
#[tokio::test(start_paused = true)]
async fn tokio_test_with_a_paused_clock_drives_max_wait() {
    let _serial = serial_async().await;
    let (open, gate) = oneshot::channel();
    let holder = tokio::spawn(paused_job(gate));
    tokio::task::yield_now().await;
    assert_eq!(limiter("paused").expect("registered").running(), 1);

    let refused = timeout(HANG, paused_job(oneshot::channel().1))
        .await
        .expect("max_wait ends the call before HANG");
    match refused {
        Err(LimitError::Timeout { limit, waited, .. }) => {
            assert_eq!((limit, waited), (1, Duration::from_secs(5)));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }

    open.send(()).unwrap();
    holder.await.unwrap().unwrap();
    timeout(HANG, drain()).await.expect("drain() hung");
}

// ---------------------------------------------------------------------------------------
// #[tokio::main]
// ---------------------------------------------------------------------------------------

static MAIN_MULTI: LazyLock<Jobs> = LazyLock::new(|| Jobs::new(2));
static MAIN_CURRENT: LazyLock<Jobs> = LazyLock::new(|| Jobs::new(2));

#[concurrency_limit(2)]
async fn main_multi_job() {
    MAIN_MULTI.work().await;
}

#[concurrency_limit(2)]
async fn main_current_job() {
    MAIN_CURRENT.work().await;
}

/// What a program's `main` would be: spawn the work, then drain before returning.
#[tokio::main(worker_threads = 2)]
async fn run_multi_thread(jobs: usize) -> usize {
    for _ in 0..jobs {
        tokio::spawn(main_multi_job());
    }
    timeout(HANG, drain()).await.expect("drain() hung");
    MAIN_MULTI.done.load(SeqCst)
}

#[tokio::main(flavor = "current_thread")]
async fn run_current_thread(jobs: usize) -> usize {
    for _ in 0..jobs {
        tokio::spawn(main_current_job());
    }
    timeout(HANG, drain()).await.expect("drain() hung");
    MAIN_CURRENT.done.load(SeqCst)
}

#[test]
fn tokio_main_multi_thread_drains_before_returning() {
    let _serial = serial();
    assert_eq!(run_multi_thread(40), 40);
    MAIN_MULTI.assert_all_done(40, 2);
    assert_nothing_in_flight();
}

#[test]
fn tokio_main_current_thread_drains_before_returning() {
    let _serial = serial();
    assert_eq!(run_current_thread(40), 40);
    MAIN_CURRENT.assert_all_done(40, 2);
    assert_nothing_in_flight();
}

// ---------------------------------------------------------------------------------------
// A runtime shut down with calls in flight
// ---------------------------------------------------------------------------------------

static ABANDONED: Gauge = Gauge::new();

#[concurrency_limit(2)]
async fn never_finishes(started: Arc<Barrier>) {
    let _running = ABANDONED.enter();
    started.wait().await;
    std::future::pending::<()>().await;
}

/// Spawns five calls that never finish, waits until two of them run (the other three wait
/// for a permit), and returns without draining: the runtime then shuts down with all five
/// in flight.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn abandon_calls() -> (usize, usize) {
    let started = Arc::new(Barrier::new(3));
    for _ in 0..5 {
        tokio::spawn(never_finishes(Arc::clone(&started)));
    }
    timeout(HANG, started.wait())
        .await
        .expect("two calls never started");
    let limiter = limiter("interop_tokio_main::never_finishes").expect("registered");
    (limiter.in_flight(), limiter.running())
}

#[test]
fn shutting_down_a_tokio_main_runtime_ends_the_calls_it_held() {
    let _serial = serial();
    assert_eq!(
        abandon_calls(),
        (5, 2),
        "five in flight, two of them running"
    );
    // The runtime is gone, and dropping its tasks dropped the calls' futures: every call
    // ended, running or waiting, so nothing is left for drain() to wait for.
    let stats = limiter("interop_tokio_main::never_finishes")
        .expect("registered")
        .stats();
    assert_eq!((stats.in_flight, stats.running, stats.waiting), (0, 0, 0));
    assert_eq!((ABANDONED.current(), ABANDONED.peak()), (0, 2));
    assert_nothing_in_flight();
}
