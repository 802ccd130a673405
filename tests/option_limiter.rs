//! `limiter = PATH`: functions that name one `static Limiter` share its single limit, with
//! each other and with code that takes its permits by hand (`acquire`, `try_acquire`), the
//! limiter's own `drain()` counts them all, and `max_wait` and `queue` still apply per
//! function.
//!
//! Every test has its own statics and annotated functions, so each has its own limiter, and
//! none calls the process-wide `drain()` or `stragglers()`: the tests run in parallel.
//!
//! The test that needs a timer runs on a paused tokio clock, so a wait is virtual: `advance`
//! moves the clock, and a call is polled by hand to see where it stands. The others need no
//! runtime at all, which also keeps tokio's cooperative budget out of the poll-by-poll
//! checks.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit};
use limit_suite::{ApiError, Gauge, gate, open, refusal};
use tokio::sync::oneshot;
use tokio::time::advance;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

// ---------------------------------------------------------------------------------------
// `limiter = PATH`: one static, shared by functions and by code that takes permits by hand.

#[test]
fn functions_naming_one_static_limiter_share_its_single_limit() {
    static DATABASE: Limiter = Limiter::new(2).with_name("option_limiter/shared-database");
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
    static DATABASE: Limiter = Limiter::new(1).with_name("option_limiter/by-hand");
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
    static JOBS: Limiter = Limiter::new(2).with_name("option_limiter/drain-one");

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
    static POOL: Limiter = Limiter::new(1).with_name("option_limiter/pool");
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
        r#"concurrency limit "option_limiter/pool" (1): no permit within 100ms"#
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
