//! `max_wait = DURATION`: a call not admitted in time is refused with `LimitError::Timeout`
//! without running its body; the wait counts from the call's first poll; `max_wait =
//! Duration::ZERO` refuses at once without any tokio runtime; and a refusal comes back
//! through `io::Result`, `anyhow::Result`, a crate's own `Result` alias and a boxed error.
//!
//! Every test has its own annotated functions, so each has its own limiter, and none calls
//! the process-wide `drain()` or `stragglers()`: the tests run in parallel.
//!
//! Tests that need a timer (`max_wait` above zero) run on a paused tokio clock, so a wait is
//! virtual: `advance` moves the clock, and a call is polled by hand to see where it stands.
//! The `Duration::ZERO` test needs no runtime at all.

use std::error::Error;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::{LimitError, concurrency_limit};
use limit_suite::{ApiError, HANG, at_once, gate, limiter_of, open, refusal};
use tokio::sync::oneshot;
use tokio::time::{advance, timeout};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

// ---------------------------------------------------------------------------------------
// `max_wait`

#[tokio::test(start_paused = true)]
async fn max_wait_refuses_a_call_not_admitted_in_time_without_running_its_body() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, max_wait = Duration::from_millis(200))]
    async fn call_api_with_deadline(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(1)
    }

    let (release, hold) = gate();
    let mut running = task::spawn(call_api_with_deadline(hold));
    assert_pending!(running.poll());
    let mut late = task::spawn(call_api_with_deadline(open()));
    assert_pending!(late.poll());
    advance(Duration::from_millis(199)).await;
    assert_pending!(late.poll(), "199ms is within max_wait");
    advance(Duration::from_millis(1)).await;
    assert!(late.is_woken(), "max_wait's timer wakes the call");
    let error = refusal(assert_ready!(late.poll()));
    assert!(matches!(
        error,
        LimitError::Timeout { limit: 1, waited, .. } if waited == Duration::from_millis(200)
    ));
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "option_max_wait::call_api_with_deadline" (1): no permit within 200ms"#
    );
    assert_eq!(BODIES.load(SeqCst), 1, "the refused call's body never ran");

    assert_eq!(error.name(), "option_max_wait::call_api_with_deadline");
    let limiter = limiter_of(error.name());
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.waiting,
            stats.in_flight,
            stats.rejected
        ),
        (1, 0, 1, 1),
        "the refused call left nothing in flight or waiting"
    );

    release.send(()).unwrap();
    assert_eq!(assert_ready!(running.poll()).unwrap(), 1);
    assert_eq!(limiter.in_flight(), 0);
    // With the permit free, a call is admitted at once, and time need not move.
    assert_eq!(
        assert_ready!(task::spawn(call_api_with_deadline(open())).poll()).unwrap(),
        1
    );
    assert_eq!(limiter.stats().admitted, 2);
}

#[tokio::test(start_paused = true)]
async fn max_wait_counts_from_when_the_call_starts_waiting_and_a_shorter_wait_gets_in() {
    #[concurrency_limit(1, max_wait = Duration::from_millis(200))]
    async fn patient(gate: oneshot::Receiver<()>) -> Result<&'static str, ApiError> {
        let _ = gate.await;
        Ok("ran")
    }

    let (release, hold) = gate();
    let mut running = task::spawn(patient(hold));
    assert_pending!(running.poll());

    // Made long before it is first polled: the clock of its wait has not started.
    let mut waiter = task::spawn(patient(open()));
    advance(Duration::from_secs(1)).await;
    assert_pending!(waiter.poll(), "made 1s ago, but waiting only from now");
    advance(Duration::from_millis(199)).await;
    assert_pending!(waiter.poll());
    assert!(!waiter.is_woken());

    // The permit comes back after 199ms of waiting: the call gets in.
    release.send(()).unwrap();
    assert_eq!(assert_ready!(running.poll()).unwrap(), "ran");
    assert!(waiter.is_woken());
    assert_eq!(assert_ready!(waiter.poll()).unwrap(), "ran");
    let stats = limiter_of("option_max_wait::patient").stats();
    assert_eq!((stats.admitted, stats.rejected, stats.in_flight), (2, 0, 0));
}

#[test]
fn max_wait_zero_refuses_at_once_without_any_tokio_runtime() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, max_wait = Duration::ZERO)]
    async fn fail_fast(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(5)
    }

    futures::executor::block_on(async {
        assert_eq!(
            at_once(fail_fast(open())).await.unwrap(),
            5,
            "a free permit is taken"
        );

        let (release, hold) = gate();
        let mut running = pin!(fail_fast(hold));
        assert!(futures::poll!(running.as_mut()).is_pending());
        let error = refusal(at_once(fail_fast(open())).await);
        assert!(matches!(error, LimitError::NoPermit { limit: 1, .. }));
        assert_eq!(
            error.to_string(),
            r#"concurrency limit "option_max_wait::fail_fast" (1): no permit free, and the call may not wait"#
        );
        assert_eq!(BODIES.load(SeqCst), 2, "the refused call's body never ran");
        let limiter = limiter_of(error.name());
        assert_eq!(
            (
                limiter.in_flight(),
                limiter.waiting(),
                limiter.stats().rejected
            ),
            (1, 0, 1)
        );

        release.send(()).unwrap();
        assert_eq!(at_once(running).await.unwrap(), 5);
        assert_eq!(limiter.in_flight(), 0);
    });
}

#[tokio::test(start_paused = true)]
async fn max_wait_and_queue_return_through_io_anyhow_alias_and_boxed_error_results() {
    #[concurrency_limit(1, max_wait = Duration::from_millis(50))]
    async fn read_file(gate: oneshot::Receiver<()>) -> std::io::Result<u32> {
        let _ = gate.await;
        Ok(1)
    }

    #[concurrency_limit(1, queue = 0)]
    async fn read_socket(gate: oneshot::Receiver<()>) -> std::io::Result<u32> {
        let _ = gate.await;
        Ok(2)
    }

    #[concurrency_limit(1, max_wait = Duration::from_millis(50))]
    async fn fetch_report(gate: oneshot::Receiver<()>) -> anyhow::Result<u32> {
        let _ = gate.await;
        Ok(3)
    }

    mod api {
        /// A crate's own `Result` alias: its last segment is `Result`, so it qualifies.
        pub type Result<T> = std::result::Result<T, super::ApiError>;
    }

    #[concurrency_limit(1, max_wait = Duration::ZERO)]
    async fn through_alias(gate: oneshot::Receiver<()>) -> api::Result<u32> {
        let _ = gate.await;
        Ok(4)
    }

    #[concurrency_limit(1, queue = 0)]
    async fn boxed_error(
        gate: oneshot::Receiver<()>,
    ) -> Result<u32, Box<dyn Error + Send + Sync + 'static>> {
        let _ = gate.await;
        Ok(5)
    }

    fn inner(error: &std::io::Error) -> LimitError {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<LimitError>())
            .expect("the io::Error carries the LimitError")
            .clone()
    }

    let (release_file, hold_file) = gate();
    let mut file = task::spawn(read_file(hold_file));
    assert_pending!(file.poll());
    let error = timeout(HANG, read_file(open()))
        .await
        .expect("refused after 50ms, not hung")
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert!(matches!(inner(&error), LimitError::Timeout { .. }));
    assert_eq!(error.to_string(), inner(&error).to_string());

    let (release_socket, hold_socket) = gate();
    let mut socket = task::spawn(read_socket(hold_socket));
    assert_pending!(socket.poll());
    let error = assert_ready!(task::spawn(read_socket(open())).poll()).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::ResourceBusy);
    assert!(matches!(
        inner(&error),
        LimitError::QueueFull { queue: 0, .. }
    ));

    let (release_report, hold_report) = gate();
    let mut report = task::spawn(fetch_report(hold_report));
    assert_pending!(report.poll());
    let error = timeout(HANG, fetch_report(open()))
        .await
        .expect("refused after 50ms, not hung")
        .unwrap_err();
    let limit_error = error
        .downcast_ref::<LimitError>()
        .expect("the anyhow::Error is the LimitError");
    assert!(matches!(limit_error, LimitError::Timeout { .. }));
    assert_eq!(limit_error.name(), "option_max_wait::fetch_report");

    let (release_alias, hold_alias) = gate();
    let mut alias = task::spawn(through_alias(hold_alias));
    assert_pending!(alias.poll());
    let error = refusal(assert_ready!(task::spawn(through_alias(open())).poll()));
    assert!(matches!(error, LimitError::NoPermit { .. }));

    let (release_boxed, hold_boxed) = gate();
    let mut boxed = task::spawn(boxed_error(hold_boxed));
    assert_pending!(boxed.poll());
    let error = assert_ready!(task::spawn(boxed_error(open())).poll()).unwrap_err();
    assert!(matches!(
        error.downcast_ref::<LimitError>(),
        Some(LimitError::QueueFull { queue: 0, .. })
    ));

    release_file.send(()).unwrap();
    release_socket.send(()).unwrap();
    release_report.send(()).unwrap();
    release_alias.send(()).unwrap();
    release_boxed.send(()).unwrap();
    assert_eq!(assert_ready!(file.poll()).unwrap(), 1);
    assert_eq!(assert_ready!(socket.poll()).unwrap(), 2);
    assert_eq!(assert_ready!(report.poll()).unwrap(), 3);
    assert_eq!(assert_ready!(alias.poll()).unwrap(), 4);
    assert_eq!(assert_ready!(boxed.poll()).unwrap(), 5);
}
