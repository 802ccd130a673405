//! `queue = N`: at most N calls wait, the next is refused with `LimitError::QueueFull` at
//! its first poll; only calls waiting now count (not running, unpolled or gone ones);
//! `queue = 0` refuses at once without any tokio runtime; with `max_wait`, a timed-out call
//! frees its place; and under contention every call runs once or is refused.
//!
//! Every test has its own annotated functions, so each has its own limiter, and none calls
//! the process-wide `drain()` or `stragglers()`: the tests run in parallel.
//!
//! The test with `max_wait` runs on a paused tokio clock, so a wait is virtual. The one test
//! on a multi-thread runtime, in real time, checks only what holds for every schedule; the
//! others need no runtime at all, which also keeps tokio's cooperative budget out of the
//! poll-by-poll checks.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::{LimitError, concurrency_limit};
use limit_suite::{ApiError, Gauge, HANG, at_once, gate, limiter_of, open, refusal};
use tokio::sync::oneshot;
use tokio::time::{advance, timeout};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

// ---------------------------------------------------------------------------------------
// `queue`

#[test]
fn queue_lets_n_calls_wait_and_refuses_the_next_at_its_first_poll() {
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
        r#"concurrency limit "option_queue::enqueue" (1): no permit free, and the queue (at most 2 waiting) is full"#
    );
    assert_eq!(BODIES.load(SeqCst), 1, "only the running call's body ran");
    let limiter = limiter_of(error.name());
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
    let limiter = limiter_of("option_queue::bounded");
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
            r#"concurrency limit "option_queue::no_waiting" (1): no permit free, and `queue = 0` lets no call wait"#
        );
        assert_eq!(BODIES.load(SeqCst), 2);
        assert_eq!(limiter_of(error.name()).in_flight(), 1);
        release.send(()).unwrap();
        assert_eq!(at_once(running).await.unwrap(), 9);
        assert_eq!(limiter_of(error.name()).in_flight(), 0);
    });
}

#[tokio::test(start_paused = true)]
async fn queue_with_max_wait_refuses_overflow_at_once_and_a_timeout_frees_its_place() {
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
    let limiter = limiter_of("option_queue::bounded_wait");
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
    const CALLS: usize = 400;
    static GAUGE: Gauge = Gauge::new();
    static BODIES: AtomicUsize = AtomicUsize::new(0);
    static MOST_WAITING: AtomicUsize = AtomicUsize::new(0);

    // Real time here: which calls time out depends on scheduling, so only the invariants
    // that hold for every schedule are checked.
    #[concurrency_limit(3, queue = 5, max_wait = Duration::from_millis(1), name = "option_queue/contention")]
    async fn contended(round: usize) -> Result<usize, ApiError> {
        let _running = GAUGE.enter();
        BODIES.fetch_add(1, SeqCst);
        MOST_WAITING.fetch_max(limiter_of("option_queue/contention").waiting(), SeqCst);
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
    let stats = limiter_of("option_queue/contention").stats();
    assert_eq!(
        (stats.admitted, stats.rejected),
        (ran as u64, (timed_out + queue_full) as u64),
        "one body per admitted call, none for a refused one"
    );
    assert!(stats.peak_running <= 3);
    assert_eq!((stats.running, stats.waiting, stats.in_flight), (0, 0, 0));
}
