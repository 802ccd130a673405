//! What `drain()` promises: it returns at the first moment no limited call is in flight
//! anywhere in the process, where a call is in flight from the moment it is made until its
//! future completes, is dropped, or its body panics.
//!
//! `drain()` sees every limited call in the process, and the tests of one file run as threads
//! of one process, so every test here takes `SERIAL` first and leaves nothing in flight.
//! Tests that need a runtime build their own inside the test, after taking the lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::{concurrency_limit, drain};
use limit_suite::{Gauge, HANG, gate, serial, wait_for};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

fn multi_thread(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("build a runtime")
}

// ---------------------------------------------------------------------------------------
// Idle, and what counts as in flight.

#[test]
fn drain_is_ready_at_once_when_nothing_is_in_flight() {
    let _serial = serial();
    assert_ready!(task::spawn(drain()).poll());
    // Also after limiters have been used and gone idle.
    assert_ready!(task::spawn(idle_after_use(None)).poll());
    assert_ready!(task::spawn(drain()).poll());
}

#[concurrency_limit(2)]
async fn idle_after_use(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[concurrency_limit(2)]
async fn counted_from_the_call(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn call_counts_in_flight_before_its_first_poll() {
    let _serial = serial();
    let mut call = task::spawn(counted_from_the_call(None));
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll(), "the unpolled call is in flight");
    assert_ready!(call.poll());
    assert!(draining.is_woken(), "the last call out wakes the drain");
    assert_ready!(draining.poll());
}

#[concurrency_limit(2)]
async fn dropped_unpolled(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn dropping_a_call_that_was_never_polled_ends_it() {
    let _serial = serial();
    let call = dropped_unpolled(None);
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());
    drop(call);
    assert!(draining.is_woken());
    assert_ready!(draining.poll());
}

#[concurrency_limit(1)]
async fn dropped_waiting(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn dropping_a_call_that_waits_for_a_permit_ends_it() {
    let _serial = serial();
    let (tx, rx) = gate();
    let mut running = task::spawn(dropped_waiting(Some(rx)));
    let mut waiting = task::spawn(dropped_waiting(None));
    assert_pending!(running.poll());
    assert_pending!(waiting.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());
    drop(waiting);
    assert_pending!(draining.poll(), "the running call is still in flight");
    tx.send(()).expect("the call is alive");
    assert_ready!(running.poll());
    assert!(draining.is_woken());
    assert_ready!(draining.poll(), "the dropped waiter no longer counts");
}

#[concurrency_limit(1)]
async fn dropped_running(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn dropping_a_call_in_the_middle_of_its_body_ends_it() {
    let _serial = serial();
    let (_tx, rx) = gate();
    let mut running = task::spawn(dropped_running(Some(rx)));
    assert_pending!(running.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());
    drop(running);
    assert!(draining.is_woken());
    assert_ready!(draining.poll());
}

#[concurrency_limit(1)]
async fn panics_in_body(panic: bool) {
    assert!(!panic, "the body panics on purpose");
}

#[test]
fn a_call_whose_body_panics_ends_even_while_its_future_is_kept() {
    let _serial = serial();
    let mut call = task::spawn(panics_in_body(true));
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());
    let unwound = catch_unwind(AssertUnwindSafe(|| call.poll()));
    assert!(unwound.is_err(), "the body panicked");
    assert!(draining.is_woken());
    assert_ready!(draining.poll(), "the poisoned future no longer counts");
    drop(call);
}

#[concurrency_limit(1)]
async fn panics_in_spawned_body(panic: bool) {
    tokio::task::yield_now().await;
    assert!(!panic, "the body panics on purpose");
}

#[test]
fn drain_returns_after_a_spawned_call_panics() {
    let _serial = serial();
    current_thread().block_on(async {
        let handle = tokio::spawn(panics_in_spawned_body(true));
        timeout(HANG, drain()).await.expect("drain returns");
        assert!(handle.await.expect_err("panicked").is_panic());
    });
}

// ---------------------------------------------------------------------------------------
// drain() waits for everything made before it, and made while it waits.

static SPAWNED_DONE: AtomicUsize = AtomicUsize::new(0);

#[concurrency_limit(5)]
async fn spawned_job(id: usize) -> usize {
    for _ in 0..id % 4 {
        tokio::task::yield_now().await;
    }
    SPAWNED_DONE.fetch_add(1, SeqCst);
    id
}

#[test]
fn drain_waits_for_every_spawned_call_even_those_not_started_yet() {
    let _serial = serial();
    current_thread().block_on(async {
        for id in 0..50 {
            // On a current-thread runtime none of these has started when drain() is called.
            drop(tokio::spawn(spawned_job(id)));
        }
        assert_eq!(SPAWNED_DONE.load(SeqCst), 0);
        timeout(HANG, drain()).await.expect("drain returns");
        assert_eq!(SPAWNED_DONE.load(SeqCst), 50);
    });
}

static CHAIN_DONE: AtomicUsize = AtomicUsize::new(0);

/// Each link makes the next call before it ends, so the in-flight count never reaches zero
/// until the last link.
#[concurrency_limit(1)]
async fn chain_link(next: Option<Box<dyn FnOnce() + Send>>) {
    tokio::task::yield_now().await;
    if let Some(make_next_call) = next {
        make_next_call();
    }
    CHAIN_DONE.fetch_add(1, SeqCst);
}

/// What a link runs at its end: spawn a call of the next link, if any is left.
fn next_link(remaining: usize) -> Option<Box<dyn FnOnce() + Send>> {
    (remaining > 0).then(|| -> Box<dyn FnOnce() + Send> {
        Box::new(move || drop(tokio::spawn(chain_link(next_link(remaining - 1)))))
    })
}

#[test]
fn drain_waits_for_calls_made_while_it_is_pending() {
    let _serial = serial();
    current_thread().block_on(async {
        drop(tokio::spawn(chain_link(next_link(19))));
        timeout(HANG, drain()).await.expect("drain returns");
        assert_eq!(CHAIN_DONE.load(SeqCst), 20);
    });
}

#[concurrency_limit(1)]
async fn first_limiter(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[concurrency_limit(1)]
async fn second_limiter(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn drain_waits_for_a_call_on_another_function_made_while_it_is_pending() {
    let _serial = serial();
    let (first_tx, first_rx) = gate();
    let (second_tx, second_rx) = gate();
    let mut first = task::spawn(first_limiter(Some(first_rx)));
    assert_pending!(first.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());

    // Made before the first call ends: there is no idle moment between them.
    let mut second = task::spawn(second_limiter(Some(second_rx)));
    first_tx.send(()).expect("the call is alive");
    assert_ready!(first.poll());
    assert_pending!(draining.poll(), "the second call is in flight");
    assert_pending!(second.poll());
    assert_pending!(draining.poll());

    second_tx.send(()).expect("the call is alive");
    assert_ready!(second.poll());
    assert!(draining.is_woken());
    assert_ready!(draining.poll());
}

// ---------------------------------------------------------------------------------------
// "The first moment": once nothing was in flight after the drain started waiting, it is
// ready, even if new calls were made before it was polled again.

#[concurrency_limit(1)]
async fn zero_moment_same_fn(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn drain_is_ready_after_a_zero_moment_even_if_the_same_function_is_called_again() {
    let _serial = serial();
    let (tx, rx) = gate();
    let mut last = task::spawn(zero_moment_same_fn(Some(rx)));
    assert_pending!(last.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());

    tx.send(()).expect("the call is alive");
    assert_ready!(last.poll(), "the last call ends: a zero moment");
    let later = zero_moment_same_fn(None);
    assert!(draining.is_woken());
    assert_ready!(draining.poll(), "the zero moment happened before `later`");
    drop(later);
}

#[concurrency_limit(1)]
async fn zero_moment_busy(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[concurrency_limit(1)]
async fn zero_moment_other(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn drain_is_ready_after_a_zero_moment_even_if_another_function_is_called_next() {
    let _serial = serial();
    // Both limiters exist (have been called) before the drain starts.
    assert_ready!(task::spawn(zero_moment_other(None)).poll());
    let (tx, rx) = gate();
    let mut last = task::spawn(zero_moment_busy(Some(rx)));
    assert_pending!(last.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());

    tx.send(()).expect("the call is alive");
    assert_ready!(last.poll(), "the last call ends: a zero moment");
    let later = zero_moment_other(None);
    assert!(draining.is_woken());
    let ready = draining.poll().is_ready();
    drop(later);
    assert!(
        ready,
        "nothing was in flight between the end of `zero_moment_busy` and the call of \
         `zero_moment_other`, so the drain must be ready"
    );
}

#[concurrency_limit(1)]
async fn zero_moment_pair_a(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[concurrency_limit(1)]
async fn zero_moment_pair_b(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn drain_is_ready_after_a_zero_moment_when_several_functions_were_busy() {
    let _serial = serial();
    let (a_tx, a_rx) = gate();
    let (b_tx, b_rx) = gate();
    let mut a = task::spawn(zero_moment_pair_a(Some(a_rx)));
    let mut b = task::spawn(zero_moment_pair_b(Some(b_rx)));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());

    // `b` ends, then `a` ends (a zero moment), then `a`'s function is called again, all
    // before the drain is polled.
    b_tx.send(()).expect("the call is alive");
    assert_ready!(b.poll());
    a_tx.send(()).expect("the call is alive");
    assert_ready!(a.poll());
    let later = zero_moment_pair_a(None);
    let ready = draining.poll().is_ready();
    drop(later);
    assert!(
        ready,
        "nothing was in flight between the end of `a` and the next call, so the drain must \
         be ready"
    );
}

// ---------------------------------------------------------------------------------------
// Cancel safety and concurrent drains.

#[concurrency_limit(1)]
async fn outlives_a_timeout(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn a_drain_bounded_by_timeout_can_time_out_and_a_later_drain_still_works() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("build a runtime");
    runtime.block_on(async {
        let (tx, rx) = gate();
        let handle = tokio::spawn(outlives_a_timeout(Some(rx)));
        // Time is paused and auto-advances when idle, so this elapses without real waiting.
        let bounded = timeout(Duration::from_secs(1), drain()).await;
        assert!(bounded.is_err(), "the call is still in flight");

        tx.send(()).expect("the call is alive");
        timeout(HANG, drain())
            .await
            .expect("a later drain returns once the call ends");
        handle.await.expect("no panic");
    });
}

#[concurrency_limit(1)]
async fn outlives_a_dropped_drain(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn dropping_a_pending_drain_leaves_later_drains_working() {
    let _serial = serial();
    let (tx, rx) = gate();
    let mut call = task::spawn(outlives_a_dropped_drain(Some(rx)));
    assert_pending!(call.poll());
    let mut abandoned = task::spawn(drain());
    assert_pending!(abandoned.poll());
    drop(abandoned);

    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll());
    tx.send(()).expect("the call is alive");
    assert_ready!(call.poll());
    assert!(draining.is_woken());
    assert_ready!(draining.poll());
    // And with nothing in flight, a fresh drain is ready at once.
    assert_ready!(task::spawn(drain()).poll());
}

#[concurrency_limit(1)]
async fn watched_by_many(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn every_pending_drain_is_woken_when_the_last_call_ends() {
    let _serial = serial();
    let (tx, rx) = gate();
    let mut call = task::spawn(watched_by_many(Some(rx)));
    assert_pending!(call.poll());
    let mut drains: Vec<_> = (0..4).map(|_| task::spawn(drain())).collect();
    for draining in &mut drains {
        assert_pending!(draining.poll());
    }
    tx.send(()).expect("the call is alive");
    assert_ready!(call.poll());
    for draining in &mut drains {
        assert!(draining.is_woken());
        assert_ready!(draining.poll());
    }
}

// ---------------------------------------------------------------------------------------
// No lost wake-up: exits on worker threads race with drains registering.

static STRESS_DONE: AtomicUsize = AtomicUsize::new(0);
static STRESS_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(3)]
async fn stress_a(yields: usize) {
    let _running = STRESS_GAUGE.enter();
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
    STRESS_DONE.fetch_add(1, SeqCst);
}

#[concurrency_limit(2)]
async fn stress_b(yields: usize) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
    STRESS_DONE.fetch_add(1, SeqCst);
}

#[test]
fn drain_never_misses_the_last_exit_on_a_multi_thread_runtime() {
    let _serial = serial();
    multi_thread(4).block_on(async {
        let mut made = 0;
        for round in 0..2_000 {
            let calls = 1 + round % 13;
            for i in 0..calls {
                if (i + round) % 3 == 0 {
                    drop(tokio::spawn(stress_b(i % 3)));
                } else {
                    drop(tokio::spawn(stress_a(i % 4)));
                }
            }
            made += calls;
            // Some rounds race the drains against calls that are already finishing.
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            }
            let watchers: Vec<_> = (0..round % 3).map(|_| tokio::spawn(drain())).collect();
            timeout(HANG, drain())
                .await
                .unwrap_or_else(|_| panic!("drain hung in round {round}"));
            assert_eq!(STRESS_DONE.load(SeqCst), made, "round {round}");
            for watcher in watchers {
                timeout(HANG, watcher)
                    .await
                    .unwrap_or_else(|_| panic!("a concurrent drain hung in round {round}"))
                    .expect("no panic");
            }
        }
    });
    assert!(STRESS_GAUGE.peak() <= 3);
}
