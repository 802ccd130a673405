//! The options of `#[concurrency_limit]` and the handles that come with them: `limiter = PATH`
//! (a shared `static Limiter`, also used by hand), `max_wait`, `queue`, `key` and `name`, the
//! combinations of them that must work, `LimitError`, `Stats`, and the registry lookups
//! `limiter(name)`, `limiters()` and `stragglers()`.
//!
//! Every test has its own annotated functions and statics, so each has its own limiter, and
//! none calls the process-wide `drain()`. The one test that needs the whole process quiet
//! (`stragglers()` with nothing in flight) takes `SERIAL` for writing; every other test holds
//! it for reading while it has calls in flight, and ends all of them before it lets go.
//!
//! Tests that need a timer (`max_wait` above zero) run on a paused tokio clock, so a wait is
//! virtual: `advance` moves the clock, and a call is polled by hand to see where it stands.
//! Most others need no runtime at all, which also keeps tokio's cooperative budget out of the
//! poll-by-poll checks. The one test on a multi-thread runtime, in real time, checks only
//! what holds for every schedule.

use std::error::Error;
use std::fmt::{Debug, Display};
use std::pin::pin;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::Poll;
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit, limiters, stragglers};
use limit_suite::Gauge;
use tokio::sync::{RwLock, RwLockReadGuard, oneshot};
use tokio::time::{advance, timeout};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

/// Long enough that only a hang reaches it (on a paused clock, a hang gets there at once).
const HANG: Duration = Duration::from_secs(30);

/// Readers: tests that put calls in flight. The writer: the test that needs none anywhere.
static SERIAL: RwLock<()> = RwLock::const_new(());

/// For a test without a runtime.
fn shared_process() -> RwLockReadGuard<'static, ()> {
    SERIAL.blocking_read()
}

/// For a test on a tokio runtime.
async fn shared_process_async() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().await
}

/// A gate that holds a body mid-run until its sender sends or is dropped.
fn gate() -> (oneshot::Sender<()>, oneshot::Receiver<()>) {
    oneshot::channel()
}

/// A gate that is already open: the body runs straight through.
fn open() -> oneshot::Receiver<()> {
    oneshot::channel().1
}

/// The error type of the "API" functions: anything with `From<LimitError>` will do.
#[derive(Debug)]
struct ApiError(LimitError);

impl From<LimitError> for ApiError {
    fn from(error: LimitError) -> Self {
        Self(error)
    }
}

/// The `LimitError` a refused call returned.
#[track_caller]
fn refusal<T: Debug>(result: Result<T, ApiError>) -> LimitError {
    match result {
        Err(ApiError(error)) => error,
        Ok(value) => panic!("expected the call to be refused, but it returned Ok({value:?})"),
    }
}

/// The output of a call that must finish at its first poll. Awaiting a call that waits
/// instead would hang a test without a runtime; this fails the test.
#[track_caller]
fn at_once<F: Future>(call: F) -> impl Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    async move {
        let mut call = pin!(call);
        match futures::poll!(call.as_mut()) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("{caller}: the call waited instead of finishing at once"),
        }
    }
}

/// The limiter registered under `name`.
#[track_caller]
fn named(name: &str) -> Limiter {
    limit_runtime::limiter(name).unwrap_or_else(|| panic!("no limiter named {name:?}"))
}

/// How many times `limiter` is listed by `limiters()`, found by its name (unique here).
fn listed(limiter: &Limiter) -> usize {
    let name = limiter.name();
    limiters().filter(|l| l.name() == name).count()
}

// ---------------------------------------------------------------------------------------
// `limiter = PATH`: one static, shared by functions and by code that takes permits by hand.

#[test]
fn functions_naming_one_static_limiter_share_its_single_limit() {
    let _serial = shared_process();
    static DATABASE: Limiter = Limiter::new(2).with_name("options/shared-database");
    static GAUGE: Gauge = Gauge::new();

    #[concurrency_limit(limiter = DATABASE)]
    async fn load_user(id: u64, gate: oneshot::Receiver<()>) -> u64 {
        let _running = GAUGE.enter();
        let _ = gate.await;
        id
    }

    #[concurrency_limit(limiter = DATABASE)]
    async fn save_user(gate: oneshot::Receiver<()>) {
        let _running = GAUGE.enter();
        let _ = gate.await;
    }

    let (release_load, hold_load) = gate();
    let (release_save, hold_save) = gate();
    let mut loading = task::spawn(load_user(1, hold_load));
    let mut saving = task::spawn(save_user(hold_save));
    let mut third = task::spawn(load_user(3, open()));
    let mut fourth = task::spawn(save_user(open()));
    assert_pending!(loading.poll());
    assert_pending!(saving.poll());
    assert_pending!(third.poll(), "one load and one save take both permits");
    assert_pending!(fourth.poll());
    assert_eq!(GAUGE.current(), 2);
    assert_eq!(
        (DATABASE.running(), DATABASE.waiting(), DATABASE.in_flight()),
        (2, 2, 4)
    );

    release_load.send(()).unwrap();
    assert_eq!(assert_ready!(loading.poll()), 1);
    assert!(
        third.is_woken(),
        "the load's permit goes to the next waiter"
    );
    assert_eq!(assert_ready!(third.poll()), 3);
    assert!(fourth.is_woken());
    assert_ready!(fourth.poll());
    assert_pending!(saving.poll());
    release_save.send(()).unwrap();
    assert_ready!(saving.poll());

    assert_eq!((GAUGE.current(), GAUGE.peak()), (0, 2));
    let stats = DATABASE.stats();
    assert_eq!(
        (
            stats.running,
            stats.in_flight,
            stats.admitted,
            stats.peak_running
        ),
        (0, 0, 4, 2)
    );
}

#[test]
fn a_permit_taken_by_hand_and_an_annotated_call_exclude_each_other() {
    let _serial = shared_process();
    static DATABASE: Limiter = Limiter::new(1).with_name("options/by-hand");
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(limiter = DATABASE)]
    async fn query(gate: oneshot::Receiver<()>) -> u32 {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        7
    }

    // A permit taken by hand first: the function waits for it.
    let mut by_hand = task::spawn(DATABASE.acquire());
    let permit = assert_ready!(by_hand.poll());
    drop(by_hand);
    assert!(ptr::eq(permit.limiter(), &DATABASE));
    assert_eq!((DATABASE.running(), DATABASE.in_flight()), (1, 1));
    let mut call = task::spawn(query(open()));
    assert_pending!(call.poll());
    assert_eq!(
        BODIES.load(SeqCst),
        0,
        "the body waits for the hand-taken permit"
    );
    assert!(matches!(
        DATABASE.try_acquire(),
        Err(LimitError::NoPermit { limit: 1, .. })
    ));
    drop(permit);
    assert!(call.is_woken());
    assert_eq!(assert_ready!(call.poll()), 7);

    // The function first: neither `try_acquire` nor `acquire` gets a permit until it ends.
    let (release, hold) = gate();
    let mut call = task::spawn(query(hold));
    assert_pending!(call.poll());
    let error = DATABASE.try_acquire().unwrap_err();
    assert!(matches!(error, LimitError::NoPermit { limit: 1, .. }));
    assert_eq!(error.name(), DATABASE.name());
    let mut by_hand = task::spawn(DATABASE.acquire());
    assert_pending!(by_hand.poll());
    assert_eq!(
        (DATABASE.running(), DATABASE.waiting(), DATABASE.in_flight()),
        (1, 1, 2)
    );
    release.send(()).unwrap();
    assert_eq!(assert_ready!(call.poll()), 7);
    assert!(by_hand.is_woken());
    let permit = assert_ready!(by_hand.poll());
    assert_eq!((DATABASE.running(), DATABASE.waiting()), (1, 0));
    drop(permit);

    assert_eq!(BODIES.load(SeqCst), 2);
    assert_eq!((DATABASE.running(), DATABASE.in_flight()), (0, 0));
    assert!(DATABASE.try_acquire().is_ok());
}

#[test]
fn hand_taken_permits_and_unpolled_calls_are_in_flight_for_the_limiters_drain() {
    let _serial = shared_process();
    static JOBS: Limiter = Limiter::new(2).with_name("options/drain-one");

    #[concurrency_limit(limiter = JOBS)]
    async fn job() -> u8 {
        1
    }

    let mut idle = task::spawn(JOBS.drain());
    assert_ready!(idle.poll(), "nothing in flight: drain returns at once");

    let permit = JOBS.try_acquire().expect("a permit is free");
    let unpolled = job();
    assert_eq!(
        (JOBS.in_flight(), JOBS.running(), JOBS.waiting()),
        (2, 1, 0)
    );
    let mut drain = task::spawn(JOBS.drain());
    assert_pending!(drain.poll());
    drop(unpolled);
    assert_eq!(JOBS.in_flight(), 1);
    assert_pending!(drain.poll(), "the hand-taken permit is still in flight");
    drop(permit);
    assert_eq!(JOBS.in_flight(), 0);
    assert!(drain.is_woken());
    assert_ready!(drain.poll());

    // A permit refused by `try_acquire` leaves nothing in flight.
    let (a, b) = (JOBS.try_acquire().unwrap(), JOBS.try_acquire().unwrap());
    assert!(JOBS.try_acquire().is_err());
    assert_eq!(JOBS.in_flight(), 2);
    drop((a, b));
    assert_eq!(JOBS.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_shared_limiter_takes_max_wait_and_queue_per_function() {
    let _serial = shared_process_async().await;
    static POOL: Limiter = Limiter::new(1).with_name("options/pool");
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(limiter = POOL, max_wait = Duration::from_millis(100))]
    async fn checkout_within(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(1)
    }

    #[concurrency_limit(limiter = POOL, queue = 1)]
    async fn checkout_queued(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(2)
    }

    let permit = POOL.try_acquire().unwrap();

    let mut within = task::spawn(checkout_within(open()));
    assert_pending!(within.poll());
    advance(Duration::from_millis(99)).await;
    assert_pending!(within.poll());
    advance(Duration::from_millis(1)).await;
    assert!(within.is_woken(), "the timer wakes the call");
    let error = refusal(assert_ready!(within.poll()));
    assert!(matches!(error, LimitError::Timeout { limit: 1, .. }));
    assert_eq!(error.name(), POOL.name());
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "options/pool" (1): no permit within 100ms"#
    );

    let mut queued = task::spawn(checkout_queued(open()));
    assert_pending!(queued.poll());
    let mut overflow = task::spawn(checkout_queued(open()));
    let error = refusal(assert_ready!(overflow.poll()));
    assert!(matches!(
        error,
        LimitError::QueueFull {
            limit: 1,
            queue: 1,
            ..
        }
    ));
    assert_eq!(error.name(), POOL.name());
    assert_eq!(BODIES.load(SeqCst), 0, "no refused body ran");
    assert_eq!((POOL.in_flight(), POOL.waiting()), (2, 1));

    drop(permit);
    assert!(queued.is_woken());
    assert_eq!(assert_ready!(queued.poll()).unwrap(), 2);
    assert_eq!(BODIES.load(SeqCst), 1);
    let stats = POOL.stats();
    assert_eq!(
        (
            stats.in_flight,
            stats.running,
            stats.waiting,
            stats.rejected,
            stats.admitted
        ),
        (0, 0, 0, 2, 2)
    );
}

// ---------------------------------------------------------------------------------------
// `max_wait`

#[tokio::test(start_paused = true)]
async fn max_wait_refuses_a_call_not_admitted_in_time_without_running_its_body() {
    let _serial = shared_process_async().await;
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
        r#"concurrency limit "options::call_api_with_deadline" (1): no permit within 200ms"#
    );
    assert_eq!(BODIES.load(SeqCst), 1, "the refused call's body never ran");

    assert_eq!(error.name(), "options::call_api_with_deadline");
    let limiter = named(error.name());
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
    let _serial = shared_process_async().await;

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
    let stats = named("options::patient").stats();
    assert_eq!((stats.admitted, stats.rejected, stats.in_flight), (2, 0, 0));
}

#[test]
fn max_wait_zero_refuses_at_once_without_any_tokio_runtime() {
    let _serial = shared_process();
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
            r#"concurrency limit "options::fail_fast" (1): no permit free, and the call may not wait"#
        );
        assert_eq!(BODIES.load(SeqCst), 2, "the refused call's body never ran");
        let limiter = named(error.name());
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
    let _serial = shared_process_async().await;

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
    assert_eq!(limit_error.name(), "options::fetch_report");

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

// ---------------------------------------------------------------------------------------
// `queue`

#[test]
fn queue_lets_n_calls_wait_and_refuses_the_next_at_its_first_poll() {
    let _serial = shared_process();
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, queue = 2)]
    async fn enqueue(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(1)
    }

    let (release, hold) = gate();
    let mut running = task::spawn(enqueue(hold));
    assert_pending!(running.poll());
    let mut first = task::spawn(enqueue(open()));
    let mut second = task::spawn(enqueue(open()));
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    let mut third = task::spawn(enqueue(open()));
    let error = refusal(assert_ready!(third.poll()));
    assert!(matches!(
        error,
        LimitError::QueueFull {
            limit: 1,
            queue: 2,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "options::enqueue" (1): no permit free, and the queue (at most 2 waiting) is full"#
    );
    assert_eq!(BODIES.load(SeqCst), 1, "only the running call's body ran");
    let limiter = named(error.name());
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.waiting,
            stats.in_flight,
            stats.rejected
        ),
        (1, 2, 3, 1)
    );

    release.send(()).unwrap();
    assert_eq!(assert_ready!(running.poll()).unwrap(), 1);
    assert_eq!(assert_ready!(first.poll()).unwrap(), 1);
    assert_eq!(assert_ready!(second.poll()).unwrap(), 1);
    assert_eq!(BODIES.load(SeqCst), 3);
    assert_eq!((limiter.in_flight(), limiter.waiting()), (0, 0));
}

#[test]
fn queue_counts_only_calls_waiting_now_not_running_unpolled_or_gone_ones() {
    let _serial = shared_process();
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(2, queue = 1)]
    async fn bounded(gate: oneshot::Receiver<()>) -> Result<(), ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(())
    }

    // Made, not polled: not waiting yet, so none of them takes the queue's place.
    let (release_a, hold_a) = gate();
    let (release_b, hold_b) = gate();
    let mut a = task::spawn(bounded(hold_a));
    let mut b = task::spawn(bounded(hold_b));
    let mut c = task::spawn(bounded(open()));
    let mut d = task::spawn(bounded(open()));
    let limiter = named("options::bounded");
    assert_eq!((limiter.in_flight(), limiter.waiting()), (4, 0));

    // Two run; running calls do not count against the queue of 1.
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll(), "the queue has room for one waiting call");
    assert_eq!((limiter.running(), limiter.waiting()), (2, 1));
    assert!(matches!(
        refusal(assert_ready!(d.poll())),
        LimitError::QueueFull { queue: 1, .. }
    ));

    // A waiting call that is dropped gives its place back.
    drop(c);
    assert_eq!(limiter.waiting(), 0);
    let mut e = task::spawn(bounded(open()));
    assert_pending!(e.poll());
    let mut f = task::spawn(bounded(open()));
    assert!(matches!(
        refusal(assert_ready!(f.poll())),
        LimitError::QueueFull { .. }
    ));

    // A waiting call that is admitted gives its place back too.
    release_a.send(()).unwrap();
    assert_ready!(a.poll()).unwrap();
    assert_ready!(e.poll()).unwrap();
    assert_eq!((limiter.running(), limiter.waiting()), (1, 0));
    let (release_g, hold_g) = gate();
    let mut g = task::spawn(bounded(hold_g));
    assert_pending!(g.poll(), "runs: one permit was free");
    assert_eq!(limiter.running(), 2);
    let mut h = task::spawn(bounded(open()));
    assert_pending!(h.poll(), "waits: the queue is empty again");

    release_b.send(()).unwrap();
    release_g.send(()).unwrap();
    assert_ready!(b.poll()).unwrap();
    assert_ready!(g.poll()).unwrap();
    assert_ready!(h.poll()).unwrap();
    assert_eq!(BODIES.load(SeqCst), 5, "a, b, e, g, h ran; c, d, f did not");
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.in_flight,
            stats.waiting,
            stats.rejected,
            stats.admitted
        ),
        (0, 0, 2, 5)
    );
}

#[test]
fn queue_zero_refuses_at_once_without_any_tokio_runtime() {
    let _serial = shared_process();
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, queue = 0)]
    async fn no_waiting(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(9)
    }

    futures::executor::block_on(async {
        assert_eq!(at_once(no_waiting(open())).await.unwrap(), 9);
        let (release, hold) = gate();
        let mut running = pin!(no_waiting(hold));
        assert!(futures::poll!(running.as_mut()).is_pending());
        let error = refusal(at_once(no_waiting(open())).await);
        assert!(matches!(
            error,
            LimitError::QueueFull {
                limit: 1,
                queue: 0,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            r#"concurrency limit "options::no_waiting" (1): no permit free, and `queue = 0` lets no call wait"#
        );
        assert_eq!(BODIES.load(SeqCst), 2);
        assert_eq!(named(error.name()).in_flight(), 1);
        release.send(()).unwrap();
        assert_eq!(at_once(running).await.unwrap(), 9);
        assert_eq!(named(error.name()).in_flight(), 0);
    });
}

#[tokio::test(start_paused = true)]
async fn queue_with_max_wait_refuses_overflow_at_once_and_a_timeout_frees_its_place() {
    let _serial = shared_process_async().await;
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, queue = 1, max_wait = Duration::from_millis(100))]
    async fn bounded_wait(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(4)
    }

    let (release, hold) = gate();
    let mut running = task::spawn(bounded_wait(hold));
    assert_pending!(running.poll());
    let mut waiter = task::spawn(bounded_wait(open()));
    assert_pending!(waiter.poll());
    let mut overflow = task::spawn(bounded_wait(open()));
    assert!(
        matches!(
            refusal(assert_ready!(overflow.poll())),
            LimitError::QueueFull { queue: 1, .. }
        ),
        "refused at its first poll, without waiting for max_wait"
    );

    advance(Duration::from_millis(100)).await;
    assert!(waiter.is_woken());
    assert!(matches!(
        refusal(assert_ready!(waiter.poll())),
        LimitError::Timeout { .. }
    ));
    let limiter = named("options::bounded_wait");
    assert_eq!((limiter.waiting(), limiter.in_flight()), (0, 1));

    // The timed-out call left the queue: another call may wait in its place.
    let mut next = task::spawn(bounded_wait(open()));
    assert_pending!(next.poll());
    advance(Duration::from_millis(60)).await;
    release.send(()).unwrap();
    assert_eq!(assert_ready!(running.poll()).unwrap(), 4);
    assert!(next.is_woken());
    assert_eq!(assert_ready!(next.poll()).unwrap(), 4);

    assert_eq!(BODIES.load(SeqCst), 2);
    let stats = limiter.stats();
    assert_eq!((stats.in_flight, stats.rejected, stats.admitted), (0, 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_contention_every_call_runs_once_or_is_refused_and_the_bounds_hold() {
    let _serial = shared_process_async().await;
    const CALLS: usize = 400;
    static GAUGE: Gauge = Gauge::new();
    static BODIES: AtomicUsize = AtomicUsize::new(0);
    static MOST_WAITING: AtomicUsize = AtomicUsize::new(0);

    // Real time here: which calls time out depends on scheduling, so only the invariants
    // that hold for every schedule are checked.
    #[concurrency_limit(3, queue = 5, max_wait = Duration::from_millis(1), name = "options/contention")]
    async fn contended(round: usize) -> Result<usize, ApiError> {
        let _running = GAUGE.enter();
        BODIES.fetch_add(1, SeqCst);
        MOST_WAITING.fetch_max(named("options/contention").waiting(), SeqCst);
        if round.is_multiple_of(2) {
            // Longer than max_wait, so that some waiters give up.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for _ in 0..round % 4 {
            tokio::task::yield_now().await;
        }
        Ok(round)
    }

    // In bursts, so that calls arrive both while the queue is full and while it has room.
    let mut calls = Vec::with_capacity(CALLS);
    for round in 0..CALLS {
        calls.push(tokio::spawn(contended(round)));
        if round % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let results = timeout(HANG, futures::future::join_all(calls))
        .await
        .expect("every call finishes");
    let (mut ran, mut timed_out, mut queue_full) = (0, 0, 0);
    for (round, result) in results.into_iter().enumerate() {
        match result.expect("no call panics") {
            Ok(returned) => {
                assert_eq!(returned, round);
                ran += 1;
            }
            Err(ApiError(LimitError::Timeout { .. })) => timed_out += 1,
            Err(ApiError(LimitError::QueueFull { queue: 5, .. })) => queue_full += 1,
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
    assert_eq!(ran + timed_out + queue_full, CALLS);
    assert_eq!(BODIES.load(SeqCst), ran, "a refused call's body never runs");
    eprintln!("{ran} ran, {timed_out} timed out, {queue_full} found the queue full");
    assert!(ran >= 3, "at least the first calls run: {ran}");
    assert!(GAUGE.peak() <= 3, "peak {}", GAUGE.peak());
    assert!(MOST_WAITING.load(SeqCst) <= 5);
    let stats = named("options/contention").stats();
    assert_eq!(
        (stats.admitted, stats.rejected),
        (ran as u64, (timed_out + queue_full) as u64),
        "one body per admitted call, none for a refused one"
    );
    assert!(stats.peak_running <= 3);
    assert_eq!((stats.running, stats.waiting, stats.in_flight), (0, 0, 0));
}

// ---------------------------------------------------------------------------------------
// `key`

fn host_of(url: &str) -> String {
    url.split('/').nth(2).unwrap_or_default().to_owned()
}

#[test]
fn each_distinct_key_gets_its_own_limit() {
    let _serial = shared_process();
    static GAUGE: Gauge = Gauge::new();

    #[concurrency_limit(2, key = host_of(&url))]
    async fn fetch_page(url: String, gate: oneshot::Receiver<()>) -> String {
        let _running = GAUGE.enter();
        let _ = gate.await;
        url
    }

    let mut releases = Vec::new();
    let mut held = Vec::new();
    for url in [
        "https://a.example/1",
        "https://a.example/2",
        "https://b.example/1",
        "https://b.example/2",
    ] {
        let (release, hold) = gate();
        releases.push(release);
        let mut call = task::spawn(fetch_page(url.to_owned(), hold));
        assert_pending!(call.poll());
        held.push(call);
    }
    assert_eq!(GAUGE.current(), 4, "two per host, on two hosts");
    let limiter = named("options::fetch_page");
    assert_eq!(limiter.limit(), 2, "the limit of each key");

    let mut third_a = task::spawn(fetch_page("https://a.example/3".to_owned(), open()));
    assert_pending!(third_a.poll(), "a.example has its two calls");
    let mut first_c = task::spawn(fetch_page("https://c.example/1".to_owned(), open()));
    assert_eq!(assert_ready!(first_c.poll()), "https://c.example/1");
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.waiting,
            stats.in_flight,
            stats.active_keys
        ),
        (4, 1, 5, 2)
    );

    // A permit of b.example does nothing for a.example.
    releases.remove(2).send(()).unwrap();
    assert_eq!(assert_ready!(held[2].poll()), "https://b.example/1");
    assert_pending!(third_a.poll());
    releases.remove(0).send(()).unwrap();
    assert_eq!(assert_ready!(held[0].poll()), "https://a.example/1");
    assert!(third_a.is_woken());
    assert_eq!(assert_ready!(third_a.poll()), "https://a.example/3");

    drop(releases);
    for index in [1, 3] {
        assert_ready!(held[index].poll());
    }
    // Four held, and c.example's call alongside them.
    assert_eq!(GAUGE.peak(), 5);
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.in_flight,
            stats.active_keys,
            stats.peak_running
        ),
        (0, 0, 0, 5),
        "a key is forgotten with its last call"
    );
}

#[test]
fn the_key_borrows_the_arguments_and_is_evaluated_when_the_call_is_made() {
    let _serial = shared_process();
    static KEY_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);

    fn tenant_of(target: &Mutex<String>) -> String {
        KEY_EVALUATIONS.fetch_add(1, SeqCst);
        target.lock().unwrap().clone()
    }

    #[concurrency_limit(1, key = tenant_of(target))]
    async fn serve(target: &Mutex<String>, gate: oneshot::Receiver<()>) -> usize {
        let _ = gate.await;
        target.lock().unwrap().len()
    }

    let target = Mutex::new("alpha".to_owned());
    let (release, hold) = gate();
    let mut first = task::spawn(serve(&target, hold));
    assert_eq!(
        KEY_EVALUATIONS.load(SeqCst),
        1,
        "evaluated by the call itself"
    );
    let limiter = named("options::serve");
    assert_eq!((limiter.in_flight(), limiter.stats().active_keys), (1, 1));
    assert_pending!(first.poll());

    // Made while the target says "alpha": its key is "alpha", whatever the target says when
    // it is first polled.
    let mut second = task::spawn(serve(&target, open()));
    *target.lock().unwrap() = "beta".to_owned();
    assert_pending!(second.poll(), "waits behind the other \"alpha\" call");
    let mut third = task::spawn(serve(&target, open()));
    assert_eq!(limiter.stats().active_keys, 2);
    assert_eq!(
        assert_ready!(third.poll()),
        4,
        "\"beta\" has a permit of its own"
    );
    assert_eq!(
        KEY_EVALUATIONS.load(SeqCst),
        3,
        "once per call, not per poll"
    );

    release.send(()).unwrap();
    assert_ready!(first.poll());
    assert!(second.is_woken());
    assert_ready!(second.poll());
    assert_eq!(KEY_EVALUATIONS.load(SeqCst), 3);
    assert_eq!((limiter.in_flight(), limiter.stats().active_keys), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn key_with_max_wait_times_out_one_key_while_other_keys_run() {
    let _serial = shared_process_async().await;
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, key = tenant, max_wait = Duration::from_millis(100))]
    async fn per_tenant(tenant: u32, gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(tenant)
    }

    let (release, hold) = gate();
    let mut busy = task::spawn(per_tenant(1, hold));
    assert_pending!(busy.poll());
    let mut late = task::spawn(per_tenant(1, open()));
    assert_pending!(late.poll());
    assert_eq!(
        assert_ready!(task::spawn(per_tenant(2, open())).poll()).unwrap(),
        2,
        "tenant 2 is not held up by tenant 1"
    );
    advance(Duration::from_millis(100)).await;
    assert!(late.is_woken());
    let error = refusal(assert_ready!(late.poll()));
    assert!(matches!(error, LimitError::Timeout { limit: 1, .. }));
    assert_eq!(BODIES.load(SeqCst), 2);
    let stats = named(error.name()).stats();
    assert_eq!(
        (stats.in_flight, stats.active_keys, stats.rejected),
        (1, 1, 1),
        "the refused call of tenant 1 left nothing behind"
    );

    release.send(()).unwrap();
    assert_eq!(assert_ready!(busy.poll()).unwrap(), 1);
    let stats = named(error.name()).stats();
    assert_eq!((stats.in_flight, stats.active_keys), (0, 0));
}

// ---------------------------------------------------------------------------------------
// `name`, `limiter(name)`, `limiters()`, `stragglers()`

mod nested {
    #[limit_runtime::concurrency_limit(3)]
    pub async fn nested_default_name() -> u8 {
        1
    }
}

#[test]
fn the_default_name_is_the_module_path_and_the_function_name() {
    let _serial = shared_process();

    #[concurrency_limit(2)]
    async fn default_named() -> u8 {
        2
    }

    #[concurrency_limit(2)]
    async fn r#match() -> u8 {
        3
    }

    assert!(limit_runtime::limiter("options::default_named").is_none());
    assert_eq!(assert_ready!(task::spawn(default_named()).poll()), 2);
    assert_eq!(
        assert_ready!(task::spawn(nested::nested_default_name()).poll()),
        1
    );
    assert_eq!(assert_ready!(task::spawn(r#match()).poll()), 3);

    let limiter = named("options::default_named");
    assert_eq!(
        (limiter.name(), limiter.limit()),
        ("options::default_named", 2)
    );
    assert_eq!(limiter.stats().name, "options::default_named");
    let nested = named("options::nested::nested_default_name");
    assert_eq!(nested.limit(), 3);
    assert_eq!(
        named("options::match").limit(),
        2,
        "a raw name loses its `r#`"
    );
}

#[test]
fn a_custom_name_labels_the_limiter_in_lookups_stats_and_errors() {
    let _serial = shared_process();

    #[concurrency_limit(5, name = "github-api", max_wait = Duration::ZERO)]
    async fn github_request(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        let _ = gate.await;
        Ok(200)
    }

    assert!(
        limit_runtime::limiter("github-api").is_none(),
        "not called yet, so not registered"
    );
    let (release, holds): (Vec<_>, Vec<_>) = (0..5).map(|_| gate()).unzip();
    let mut running: Vec<_> = holds
        .into_iter()
        .map(|hold| task::spawn(github_request(hold)))
        .collect();
    let limiter = named("github-api");
    assert_eq!((limiter.name(), limiter.limit()), ("github-api", 5));
    assert!(limit_runtime::limiter("options::github_request").is_none());
    for call in &mut running {
        assert_pending!(call.poll());
    }

    let error = refusal(assert_ready!(task::spawn(github_request(open())).poll()));
    assert_eq!(error.name(), limiter.name());
    assert_eq!(error.name(), "github-api");
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "github-api" (5): no permit free, and the call may not wait"#
    );
    let stats = limiter.stats();
    assert_eq!(stats.name, "github-api");
    assert_eq!((stats.running, stats.rejected), (5, 1));

    drop(release);
    for call in &mut running {
        assert_eq!(assert_ready!(call.poll()).unwrap(), 200);
    }
    assert_eq!(limiter.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn name_combines_with_key_queue_and_max_wait() {
    let _serial = shared_process_async().await;
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(
        1,
        key = tenant,
        queue = 1,
        max_wait = Duration::from_millis(100),
        name = "options/everything-but-limiter"
    )]
    async fn tenant_call(tenant: u32, gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(tenant)
    }

    let (release, hold) = gate();
    let mut busy = task::spawn(tenant_call(7, hold));
    assert_pending!(busy.poll());
    let limiter = named("options/everything-but-limiter");
    assert_eq!(limiter.stats().active_keys, 1);

    let mut waiter = task::spawn(tenant_call(7, open()));
    assert_pending!(waiter.poll());
    let full = refusal(assert_ready!(task::spawn(tenant_call(7, open())).poll()));
    assert_eq!(
        full.to_string(),
        r#"concurrency limit "options/everything-but-limiter" (1): no permit free, and the queue (at most 1 waiting) is full"#
    );
    assert_eq!(
        assert_ready!(task::spawn(tenant_call(8, open())).poll()).unwrap(),
        8,
        "another key runs at once"
    );

    advance(Duration::from_millis(100)).await;
    let timed_out = refusal(assert_ready!(waiter.poll()));
    assert_eq!(
        timed_out.to_string(),
        r#"concurrency limit "options/everything-but-limiter" (1): no permit within 100ms"#
    );
    assert_eq!(timed_out.name(), limiter.name());
    assert_eq!(BODIES.load(SeqCst), 2);

    release.send(()).unwrap();
    assert_eq!(assert_ready!(busy.poll()).unwrap(), 7);
    let stats = limiter.stats();
    assert_eq!(stats.name, "options/everything-but-limiter");
    assert_eq!(
        (
            stats.in_flight,
            stats.active_keys,
            stats.rejected,
            stats.admitted
        ),
        (0, 0, 2, 2)
    );
}

#[test]
fn limiters_lists_function_limiters_after_their_first_call_and_statics_after_first_use() {
    let _serial = shared_process();
    static NEVER_USED: Limiter = Limiter::new(1).with_name("options/never-used");
    static SHARED: Limiter = Limiter::new(3).with_name("options/listed-static");
    static BY_HAND: Limiter = Limiter::new(1);

    #[concurrency_limit(2, name = "options/listed-fn")]
    async fn listed_fn() {}

    #[concurrency_limit(limiter = SHARED)]
    async fn through_shared() {}

    // Reading a static's state is not a use.
    assert_eq!((SHARED.limit(), SHARED.in_flight()), (3, 0));
    assert_eq!(listed(&SHARED), 0);
    assert!(limit_runtime::limiter("options/listed-fn").is_none());
    assert!(limit_runtime::limiter("options/listed-static").is_none());

    // The first call registers the function's limiter, even before it is polled.
    let call = listed_fn();
    let function = named("options/listed-fn");
    assert_eq!(listed(&function), 1);
    drop(call);
    assert_ready!(task::spawn(listed_fn()).poll());
    assert_eq!(
        listed(&function),
        1,
        "listed once, however often it is called"
    );

    assert_ready!(task::spawn(through_shared()).poll());
    assert_eq!(listed(&SHARED), 1);
    // The listed limiter is the static: a permit taken through one is held in the other.
    let listed_static = named("options/listed-static");
    let permit = listed_static.try_acquire().unwrap();
    assert_eq!(SHARED.running(), 1);
    drop(permit);

    // A static used only by hand is listed too; unnamed, it is named after where it is.
    assert_eq!(listed(&BY_HAND), 0);
    drop(BY_HAND.try_acquire().unwrap());
    assert_eq!(listed(&BY_HAND), 1);
    assert!(
        BY_HAND.name().contains("options.rs:"),
        "named after its place of definition: {}",
        BY_HAND.name()
    );

    assert_eq!(listed(&NEVER_USED), 0);
    assert!(limit_runtime::limiter("options/never-used").is_none());
}

#[test]
fn stragglers_lists_limiters_with_calls_in_flight_and_says_when_there_are_none() {
    // Nothing else in this process may have a call in flight meanwhile.
    let _alone = SERIAL.blocking_write();
    static HELD: Limiter = Limiter::new(2).with_name("options/held-by-hand");

    #[concurrency_limit(1, name = "options/straggler")]
    async fn straggler(gate: oneshot::Receiver<()>) {
        let _ = gate.await;
    }

    assert!(stragglers().is_empty());
    assert_eq!(stragglers().to_string(), "no limited call in flight");

    let (release, hold) = gate();
    let mut running = task::spawn(straggler(hold));
    assert_pending!(running.poll());
    let mut waiting = task::spawn(straggler(open()));
    assert_pending!(waiting.poll());
    let unpolled = straggler(open());
    let permit = HELD.try_acquire().unwrap();

    let report = stragglers();
    assert_eq!(report.stats().len(), 2);
    let text = report.to_string();
    assert!(
        text.starts_with("2 limiters with calls in flight: "),
        "{text}"
    );
    assert!(
        text.contains(r#""options/straggler" (3 in flight: 1 running, 1 waiting)"#),
        "{text}"
    );
    assert!(
        text.contains(r#""options/held-by-hand" (1 in flight: 1 running, 0 waiting)"#),
        "{text}"
    );

    drop(unpolled);
    drop(permit);
    assert_eq!(
        stragglers().to_string(),
        r#"1 limiter with calls in flight: "options/straggler" (2 in flight: 1 running, 1 waiting)"#
    );
    release.send(()).unwrap();
    assert_ready!(running.poll());
    assert_ready!(waiting.poll());
    assert!(stragglers().is_empty());
    assert_eq!(stragglers().to_string(), "no limited call in flight");
}

// ---------------------------------------------------------------------------------------
// `LimitError` and `Stats`

#[test]
fn limit_error_is_a_cloneable_thread_safe_static_error() {
    fn assert_traits<E: Error + Display + Debug + Send + Sync + Clone + 'static>() {}
    assert_traits::<LimitError>();

    let _serial = shared_process();
    static ONE: Limiter = Limiter::new(1).with_name("options/error-traits");
    let permit = ONE.try_acquire().unwrap();
    let error = ONE.try_acquire().unwrap_err();
    drop(permit);

    let clone = error.clone();
    assert_eq!(
        clone.to_string(),
        error.to_string(),
        "still usable after a clone"
    );
    assert!(format!("{error:?}").contains("NoPermit"), "{error:?}");
    assert!(error.source().is_none());
    let boxed: Box<dyn Error + Send + Sync + 'static> = Box::new(error);
    assert_eq!(
        boxed.downcast_ref::<LimitError>().unwrap().to_string(),
        r#"concurrency limit "options/error-traits" (1): no permit free, and the call may not wait"#
    );
    let from_thread = std::thread::spawn(move || clone.name().clone())
        .join()
        .unwrap();
    assert_eq!(from_thread, "options/error-traits");
}

#[tokio::test(start_paused = true)]
async fn each_limit_error_names_the_limiter_its_limit_and_why_the_call_was_refused() {
    let _serial = shared_process_async().await;
    static GITHUB: Limiter = Limiter::new(5).with_name("options/github");

    #[concurrency_limit(limiter = GITHUB, max_wait = Duration::from_millis(200))]
    async fn within_200ms() -> Result<(), ApiError> {
        Ok(())
    }

    #[concurrency_limit(limiter = GITHUB, queue = 3)]
    async fn queue_of_3() -> Result<(), ApiError> {
        Ok(())
    }

    #[concurrency_limit(limiter = GITHUB, queue = 0)]
    async fn queue_of_0() -> Result<(), ApiError> {
        Ok(())
    }

    #[concurrency_limit(limiter = GITHUB, max_wait = Duration::ZERO)]
    async fn never_wait() -> Result<(), ApiError> {
        Ok(())
    }

    let permits: Vec<_> = (0..5).map(|_| GITHUB.try_acquire().unwrap()).collect();

    let mut timed = task::spawn(within_200ms());
    assert_pending!(timed.poll());
    advance(Duration::from_millis(200)).await;
    let timeout_error = refusal(assert_ready!(timed.poll()));

    let mut waiters: Vec<_> = (0..3).map(|_| task::spawn(queue_of_3())).collect();
    for waiter in &mut waiters {
        assert_pending!(waiter.poll());
    }
    let full = refusal(assert_ready!(task::spawn(queue_of_3()).poll()));
    let no_queue = refusal(assert_ready!(task::spawn(queue_of_0()).poll()));
    let no_wait = refusal(assert_ready!(task::spawn(never_wait()).poll()));
    let by_hand = GITHUB.try_acquire().unwrap_err();

    let prefix = r#"concurrency limit "options/github" (5): "#;
    for (error, reason) in [
        (&timeout_error, "no permit within 200ms"),
        (
            &full,
            "no permit free, and the queue (at most 3 waiting) is full",
        ),
        (
            &no_queue,
            "no permit free, and `queue = 0` lets no call wait",
        ),
        (&no_wait, "no permit free, and the call may not wait"),
        (&by_hand, "no permit free, and the call may not wait"),
    ] {
        assert_eq!(error.to_string(), format!("{prefix}{reason}"));
        assert_eq!(error.name(), GITHUB.name());
    }
    assert!(matches!(
        timeout_error,
        LimitError::Timeout { limit: 5, waited, .. } if waited == Duration::from_millis(200)
    ));
    assert!(matches!(
        full,
        LimitError::QueueFull {
            limit: 5,
            queue: 3,
            ..
        }
    ));
    assert!(matches!(
        no_queue,
        LimitError::QueueFull {
            limit: 5,
            queue: 0,
            ..
        }
    ));
    assert!(matches!(no_wait, LimitError::NoPermit { limit: 5, .. }));

    drop(permits);
    for waiter in &mut waiters {
        assert_ready!(waiter.poll()).unwrap();
    }
    let stats = GITHUB.stats();
    assert_eq!((stats.in_flight, stats.rejected, stats.admitted), (0, 5, 8));
}

#[test]
fn stats_follow_a_call_from_made_to_waiting_running_refused_and_done() {
    let _serial = shared_process();

    #[concurrency_limit(2, queue = 1, name = "options/stats")]
    async fn counted(gate: oneshot::Receiver<()>) -> Result<(), ApiError> {
        let _ = gate.await;
        Ok(())
    }

    fn counters(limiter: &Limiter) -> [u64; 6] {
        let stats = limiter.stats();
        [
            stats.running as u64,
            stats.waiting as u64,
            stats.in_flight as u64,
            stats.admitted,
            stats.rejected,
            stats.peak_running as u64,
        ]
    }

    let (release_a, hold_a) = gate();
    let (release_b, hold_b) = gate();
    let mut a = task::spawn(counted(hold_a));
    let mut b = task::spawn(counted(hold_b));
    let mut c = task::spawn(counted(open()));
    let mut d = task::spawn(counted(open()));
    let limiter = &named("options/stats");
    let stats = limiter.stats();
    assert_eq!(stats.name, "options/stats");
    assert_eq!((stats.limit, stats.active_keys), (2, 0));
    // [running, waiting, in_flight, admitted, rejected, peak_running]
    assert_eq!(counters(limiter), [0, 0, 4, 0, 0, 0], "made, none polled");

    assert_pending!(a.poll());
    assert_eq!(counters(limiter), [1, 0, 4, 1, 0, 1]);
    assert_pending!(b.poll());
    assert_eq!(counters(limiter), [2, 0, 4, 2, 0, 2]);
    assert_pending!(c.poll());
    assert_eq!(counters(limiter), [2, 1, 4, 2, 0, 2]);
    refusal(assert_ready!(d.poll()));
    assert_eq!(
        counters(limiter),
        [2, 1, 3, 2, 1, 2],
        "the refused call is out of flight as soon as it returns"
    );

    release_a.send(()).unwrap();
    assert_ready!(a.poll()).unwrap();
    assert!(c.is_woken());
    assert_ready!(c.poll()).unwrap();
    assert_eq!(counters(limiter), [1, 0, 1, 3, 1, 2]);

    let mut drain = task::spawn(limiter.drain());
    assert_pending!(drain.poll());
    release_b.send(()).unwrap();
    assert_ready!(b.poll()).unwrap();
    assert_eq!(counters(limiter), [0, 0, 0, 3, 1, 2]);
    assert!(drain.is_woken());
    assert_ready!(drain.poll());
}

// ---------------------------------------------------------------------------------------
// A refused call stays in flight until its future completes
// ---------------------------------------------------------------------------------------

/// What `From<LimitError>` saw: the refused call's limiter, in flight at conversion time.
static IN_FLIGHT_AT_CONVERSION: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct ObservedError;

impl From<LimitError> for ObservedError {
    fn from(error: LimitError) -> Self {
        IN_FLIGHT_AT_CONVERSION
            .lock()
            .unwrap()
            .push(named(error.name()).in_flight());
        ObservedError
    }
}

#[concurrency_limit(1, max_wait = Duration::ZERO, name = "options/refused-in-flight")]
async fn refused_in_flight(hold: Option<oneshot::Receiver<()>>) -> Result<(), ObservedError> {
    if let Some(hold) = hold {
        let _ = hold.await;
    }
    Ok(())
}

#[test]
fn a_refused_call_is_in_flight_until_its_error_is_converted_and_returned() {
    let _serial = shared_process();
    let (release, hold) = oneshot::channel();
    let mut holder = task::spawn(refused_in_flight(Some(hold)));
    assert_pending!(holder.poll());
    let limiter = limit_runtime::limiter("options/refused-in-flight").expect("called");
    assert_eq!(limiter.in_flight(), 1);

    let mut refused = task::spawn(refused_in_flight(None));
    assert!(matches!(assert_ready!(refused.poll()), Err(ObservedError)));
    // The holder and the refused call itself were both in flight during the conversion.
    assert_eq!(*IN_FLIGHT_AT_CONVERSION.lock().unwrap(), [2]);
    drop(refused);
    assert_eq!(limiter.in_flight(), 1);

    release.send(()).unwrap();
    assert!(assert_ready!(holder.poll()).is_ok());
    assert_eq!(limiter.in_flight(), 0);
}
