//! `weight = EXPR`: a call holds that many permits while its body runs; `acquire_many` and
//! its siblings take many permits by hand. Units: permits for `running`, `peak_running` and
//! the limit; calls for `waiting`, `in_flight`, `queue`, `admitted` and `rejected`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use limit_runtime::{LimitError, Limiter, concurrency_limit};
use limit_suite::{Gauge, limiter_of, panic_of};

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(std::task::Waker::noop()))
}

#[concurrency_limit(10, weight = body.len(), name = "weight::upload")]
async fn upload(body: Vec<u8>, gauge: &Gauge) -> usize {
    let _inside = gauge.enter_by(body.len());
    tokio::task::yield_now().await;
    body.len()
}

#[tokio::test]
async fn a_call_holds_its_weight_and_the_limit_counts_permits() {
    let gauge = Gauge::default();
    let calls: Vec<_> = [4, 4, 4, 2, 6, 1, 9]
        .into_iter()
        .map(|n| upload(vec![0; n], &gauge))
        .collect();
    let lengths = futures::future::join_all(calls).await;
    assert_eq!(lengths, [4, 4, 4, 2, 6, 1, 9]);
    assert!(gauge.peak() <= 10, "{} permits held at once", gauge.peak());
    let stats = limiter_of("weight::upload").stats();
    assert_eq!((stats.admitted, stats.running, stats.in_flight), (7, 0, 0));
    assert!(stats.peak_running <= 10 && stats.peak_running >= 9);
}

static BYTES: Limiter = Limiter::new(8).with_name("weight::bytes");

#[concurrency_limit(limiter = BYTES, weight = n)]
async fn take(n: usize, hold: tokio::sync::oneshot::Receiver<()>) -> usize {
    let _ = hold.await;
    n
}

#[test]
fn running_counts_permits_and_waiting_counts_calls() {
    let (release_a, hold_a) = tokio::sync::oneshot::channel();
    let (_release_b, hold_b) = tokio::sync::oneshot::channel();
    let (_release_c, hold_c) = tokio::sync::oneshot::channel();
    let mut a = pin!(take(5, hold_a));
    let mut b = pin!(take(4, hold_b));
    let mut c = pin!(take(1, hold_c));
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(
        poll_once(b.as_mut()).is_pending(),
        "4 more than the 3 left: waits"
    );
    assert!(
        poll_once(c.as_mut()).is_pending(),
        "1 fits, but may not overtake b (FIFO)"
    );
    let stats = BYTES.stats();
    assert_eq!((stats.running, stats.waiting, stats.in_flight), (5, 2, 3));
    release_a.send(()).unwrap();
    assert_eq!(poll_once(a.as_mut()), Poll::Ready(5));
    assert!(poll_once(b.as_mut()).is_pending(), "b got its 4 and runs");
    assert!(poll_once(c.as_mut()).is_pending(), "c got its 1 and runs");
    let stats = BYTES.stats();
    assert_eq!((stats.running, stats.waiting, stats.in_flight), (5, 0, 2));
}

#[concurrency_limit(4, weight = 0, name = "weight::zero")]
async fn weightless() -> u8 {
    std::future::pending::<()>().await;
    0
}

#[test]
fn weight_zero_is_admitted_at_once_and_still_counts_for_drain() {
    let calls: Vec<_> = (0..10).map(|_| weightless()).collect();
    let mut calls: Vec<_> = calls.into_iter().map(Box::pin).collect();
    for call in &mut calls {
        assert!(
            poll_once(call.as_mut()).is_pending(),
            "running, not waiting"
        );
    }
    let stats = limiter_of("weight::zero").stats();
    assert_eq!(
        (
            stats.running,
            stats.waiting,
            stats.in_flight,
            stats.admitted
        ),
        (0, 0, 10, 10)
    );
    drop(calls);
    assert_eq!(limiter_of("weight::zero").in_flight(), 0);
}

#[concurrency_limit(4, weight = n, name = "weight::fallible")]
async fn fallible(n: usize) -> Result<usize, LimitError> {
    Ok(n)
}

#[concurrency_limit(4, weight = n, name = "weight::infallible")]
async fn infallible(n: usize) -> usize {
    n
}

#[test]
fn a_weight_above_the_limit_is_an_error_for_a_result_function() {
    let error = fallible(5).now_or_never().unwrap().unwrap_err();
    assert!(matches!(
        error,
        LimitError::TooHeavy {
            weight: 5,
            limit: 4,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "weight::fallible" (4): a call of weight 5 can never be admitted"#
    );
    let stats = limiter_of("weight::fallible").stats();
    assert_eq!((stats.rejected, stats.admitted, stats.in_flight), (1, 0, 0));
    assert_eq!(fallible(4).now_or_never().unwrap().unwrap(), 4);
}

#[test]
fn a_weight_above_the_limit_panics_at_the_callers_line_for_other_functions() {
    let line = line!() + 1;
    let (message, location) = panic_of(|| drop(infallible(5)));
    assert_eq!(
        message,
        r#"concurrency limit "weight::infallible": a call of weight 5 is above the limit of 4, and could never be admitted"#
    );
    assert!(
        location.starts_with(&format!("tests/option_weight.rs:{line}:")),
        "the panic points at {location}, not at the caller's line {line}"
    );
    assert_eq!(limiter_of("weight::infallible").in_flight(), 0);
    assert_eq!(infallible(4).now_or_never(), Some(4));
}

static PAUSED: Limiter = Limiter::new(2).with_name("weight::paused");

#[concurrency_limit(limiter = PAUSED, weight = n)]
async fn paused(n: usize) -> Result<usize, LimitError> {
    Ok(n)
}

#[test]
fn a_limit_of_zero_refuses_no_weight_and_a_later_shrink_never_revokes_a_queued_call() {
    PAUSED.set_limit(0);
    let mut call = pin!(paused(2));
    assert!(poll_once(call.as_mut()).is_pending(), "paused, not refused");
    PAUSED.set_limit(1);
    assert!(
        poll_once(call.as_mut()).is_pending(),
        "still queued under a smaller limit"
    );
    assert_eq!(PAUSED.stats().waiting, 1);
    PAUSED.set_limit(2);
    assert!(matches!(poll_once(call.as_mut()), Poll::Ready(Ok(2))));
}

#[concurrency_limit(3, weight = n, queue = 1, max_wait = Duration::ZERO, name = "weight::policy")]
async fn with_policy(n: usize) -> Result<usize, LimitError> {
    std::future::pending::<()>().await;
    Ok(n)
}

#[test]
fn weight_combines_with_max_wait_and_queue() {
    let mut first = pin!(with_policy(2));
    assert!(poll_once(first.as_mut()).is_pending());
    let refused = with_policy(2).now_or_never().unwrap().unwrap_err();
    assert!(matches!(refused, LimitError::NoPermit { .. }));
    assert!(matches!(
        with_policy(4).now_or_never().unwrap().unwrap_err(),
        LimitError::TooHeavy {
            weight: 4,
            limit: 3,
            ..
        }
    ));
    assert_eq!(limiter_of("weight::policy").stats().rejected, 2);
}

#[concurrency_limit(2, key = key, weight = n, name = "weight::keyed")]
async fn keyed(key: u8, n: usize) -> usize {
    std::future::pending::<()>().await;
    n
}

#[test]
fn weight_combines_with_key() {
    let mut a = pin!(keyed(1, 2));
    let mut b = pin!(keyed(1, 1));
    let mut c = pin!(keyed(2, 2));
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    assert!(poll_once(c.as_mut()).is_pending());
    let stats = limiter_of("weight::keyed").stats();
    assert_eq!(
        (stats.running, stats.waiting),
        (4, 1),
        "key 1 is full with 2, b waits"
    );
}

#[tokio::test]
async fn admitted_takes_the_weight_in_the_producers_task() {
    static JOBS: Limiter = Limiter::new(4).with_name("weight::admitted");
    #[concurrency_limit(limiter = JOBS, weight = n)]
    async fn job(n: usize) -> usize {
        tokio::task::yield_now().await;
        n
    }
    let mut handles = Vec::new();
    for n in [3, 2, 4, 1] {
        let admitted = job(n).admitted().await;
        let running = JOBS.running();
        assert!(
            (n..=4).contains(&running),
            "{running} permits held after admitting {n}"
        );
        handles.push(tokio::spawn(admitted));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    JOBS.drain().await;
    assert_eq!(JOBS.stats().admitted, 4);
}

#[tokio::test]
async fn acquire_many_by_hand() {
    let limiter = Arc::new(Limiter::new(10).with_name("weight::by_hand"));
    let eight = limiter.acquire_many(8).await;
    assert_eq!(
        (eight.permits(), limiter.running(), limiter.in_flight()),
        (8, 8, 1)
    );
    assert!(matches!(
        limiter.try_acquire_many(3),
        Err(LimitError::NoPermit { .. })
    ));
    assert!(matches!(
        limiter.try_acquire_many(11),
        Err(LimitError::TooHeavy { .. })
    ));
    let two = Arc::clone(&limiter).try_acquire_many_owned(2).unwrap();
    let mut waiter = pin!(Arc::clone(&limiter).acquire_many_owned(5));
    assert!(poll_once(waiter.as_mut()).is_pending());
    drop(eight);
    let Poll::Ready(five) = poll_once(waiter.as_mut()) else {
        panic!("5 of the 8 given back go to the waiter");
    };
    assert_eq!(
        (five.permits(), two.permits(), limiter.running()),
        (5, 2, 7)
    );
    assert_eq!(limiter.acquire_many(0).await.permits(), 0);
    drop((five, two));
    assert_eq!(limiter.running(), 0);
}

#[test]
fn acquire_many_above_the_limit_panics_when_called() {
    static TEN: Limiter = Limiter::new(10).with_name("weight::ten");
    // Through `panic_of`, like the other panic of this file: one panic hook at a time.
    let line = line!() + 1;
    let (message, location) = panic_of(|| drop(TEN.acquire_many(11)));
    assert_eq!(
        message,
        r#"concurrency limit "weight::ten": a call of weight 11 is above the limit of 10, and could never be admitted"#
    );
    assert!(location.starts_with(&format!("tests/option_weight.rs:{line}:")));
    assert_eq!(TEN.in_flight(), 0);
}
