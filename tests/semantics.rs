//! What `#[concurrency_limit]` promises about permits: how many bodies run at once, who gets
//! the next permit, what cancellation frees, when the future is `Send`, how the limit
//! expression is evaluated, and who shares one limit.
//!
//! Nothing here calls `drain()`: that waits on every limited call in the process, and the
//! tests of this file run in parallel. The in-flight side of the contract is in `drain.rs`.
//! Every test has its own annotated functions, so each has its own limiter.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::Duration;

use limit_runtime::concurrency_limit;
use limit_suite::{Gauge, HANG, gate, wait_for};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::timeout;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a runtime")
}

// ---------------------------------------------------------------------------------------
// The limit holds, and is reached.

static REACH_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(3)]
async fn reach_job(gate: oneshot::Receiver<()>) {
    let _running = REACH_GAUGE.enter();
    let _ = gate.await;
}

#[test]
fn exactly_limit_bodies_run_when_more_calls_are_waiting() {
    let mut senders = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (tx, rx) = gate();
        senders.push(tx);
        calls.push(task::spawn(reach_job(rx)));
    }
    for call in &mut calls {
        assert_pending!(call.poll());
    }
    assert_eq!(REACH_GAUGE.current(), 3, "three bodies run, five wait");
    // Polling the waiting calls again admits none of them.
    for call in &mut calls {
        assert_pending!(call.poll());
    }
    assert_eq!(REACH_GAUGE.current(), 3);

    // Release the bodies one at a time, in admission order: each end admits exactly one
    // waiter, and the calls not released yet stay pending.
    for (index, sender) in senders.into_iter().enumerate() {
        sender.send(()).expect("the call is alive");
        assert_ready!(calls[index].poll());
        for call in &mut calls[index + 1..] {
            assert_pending!(call.poll());
        }
        assert_eq!(REACH_GAUGE.current(), (8 - index - 1).min(3));
    }
    assert_eq!((REACH_GAUGE.current(), REACH_GAUGE.peak()), (0, 3));
}

static STRESS_GAUGE: Gauge = Gauge::new();
static STRESS_GATE: Semaphore = Semaphore::const_new(0);

#[concurrency_limit(4)]
async fn stress_job(yields: usize) {
    let _running = STRESS_GAUGE.enter();
    STRESS_GATE.acquire().await.expect("gate open").forget();
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limit_is_reached_and_never_exceeded_on_a_multi_thread_runtime() {
    const CALLS: usize = 200;
    let handles: Vec<_> = (0..CALLS)
        .map(|i| tokio::spawn(stress_job(i % 5)))
        .collect();
    // Every body stops at the gate, so the limit fills up and stays full.
    timeout(HANG, async {
        while STRESS_GAUGE.current() < 4 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("four bodies start");
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(STRESS_GAUGE.current(), 4);

    STRESS_GATE.add_permits(CALLS);
    timeout(HANG, futures::future::join_all(handles))
        .await
        .expect("every call finishes")
        .into_iter()
        .for_each(|joined| joined.expect("no call panics"));
    assert_eq!((STRESS_GAUGE.current(), STRESS_GAUGE.peak()), (0, 4));
}

const MAX_JOBS: usize = 2;
static CONST_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(MAX_JOBS)]
async fn const_limited(gate: oneshot::Receiver<()>) {
    let _running = CONST_GAUGE.enter();
    let _ = gate.await;
}

#[test]
fn limit_can_be_a_const_item() {
    let (senders, mut calls): (Vec<_>, Vec<_>) = (0..5)
        .map(|_| {
            let (tx, rx) = gate();
            (tx, task::spawn(const_limited(rx)))
        })
        .unzip();
    for call in &mut calls {
        assert_pending!(call.poll());
    }
    assert_eq!(CONST_GAUGE.current(), MAX_JOBS);
    drop(senders);
    for call in &mut calls {
        assert_ready!(call.poll());
    }
    assert_eq!(CONST_GAUGE.peak(), MAX_JOBS);
}

// ---------------------------------------------------------------------------------------
// The permit is held only while the body runs, and waiting is FIFO.

#[concurrency_limit(1)]
async fn unpolled_holder() -> &'static str {
    "done"
}

#[test]
fn a_call_that_was_made_but_never_polled_holds_no_permit() {
    // Made first, so it is in flight, but it has not asked for a permit yet.
    let mut first = task::spawn(unpolled_holder());
    let mut second = task::spawn(unpolled_holder());
    assert_eq!(assert_ready!(second.poll()), "done");
    // And nothing was taken from the first one either.
    assert_eq!(assert_ready!(first.poll()), "done");
}

static HELD_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(1)]
async fn held_while_running(gate: Option<oneshot::Receiver<()>>) -> usize {
    let _running = HELD_GAUGE.enter();
    wait_for(gate).await;
    HELD_GAUGE.current()
}

#[test]
fn permit_is_held_while_the_body_runs_and_returned_when_it_completes() {
    let (tx, rx) = gate();
    let mut running = task::spawn(held_while_running(Some(rx)));
    let mut waiting = task::spawn(held_while_running(None));
    assert_pending!(running.poll());
    assert_pending!(waiting.poll());
    assert_pending!(waiting.poll(), "still waiting: the body still runs");
    tx.send(()).expect("the call is alive");
    assert_eq!(assert_ready!(running.poll()), 1);
    // `running` is kept (completed, not dropped): completion alone returns the permit.
    assert!(
        waiting.is_woken(),
        "the waiter is woken when the permit comes back"
    );
    assert_eq!(assert_ready!(waiting.poll()), 1);
    drop(running);
    assert_eq!(HELD_GAUGE.peak(), 1);
}

static FIFO_LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[concurrency_limit(1)]
async fn fifo_job(name: &'static str, gate: Option<oneshot::Receiver<()>>) {
    FIFO_LOG
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(name);
    wait_for(gate).await;
}

#[test]
fn waiting_calls_are_admitted_in_the_order_they_started_waiting() {
    let (tx, rx) = gate();
    let mut a = task::spawn(fifo_job("a", Some(rx)));
    // Made in the order d, c, b but start waiting in the order b, c, d.
    let mut d = task::spawn(fifo_job("d", None));
    let mut c = task::spawn(fifo_job("c", None));
    let mut b = task::spawn(fifo_job("b", None));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll());
    assert_pending!(d.poll());

    tx.send(()).expect("the call is alive");
    assert_ready!(a.poll());
    // The permit belongs to `b` now, however eagerly the others are polled.
    assert_pending!(d.poll());
    assert_pending!(c.poll());
    assert_ready!(b.poll());
    assert_pending!(d.poll());
    assert_ready!(c.poll());
    assert_ready!(d.poll());
    assert_eq!(
        *FIFO_LOG.lock().unwrap_or_else(PoisonError::into_inner),
        ["a", "b", "c", "d"]
    );
}

// ---------------------------------------------------------------------------------------
// Cancellation frees the permit at once.

#[concurrency_limit(1)]
async fn cancel_running(gate: Option<oneshot::Receiver<()>>) -> u8 {
    wait_for(gate).await;
    7
}

#[test]
fn dropping_a_running_call_admits_the_next_waiter() {
    let (_tx, rx) = gate();
    let mut running = task::spawn(cancel_running(Some(rx)));
    let mut waiting = task::spawn(cancel_running(None));
    assert_pending!(running.poll());
    assert_pending!(waiting.poll());
    drop(running);
    assert!(waiting.is_woken());
    assert_eq!(assert_ready!(waiting.poll()), 7);
}

#[concurrency_limit(1)]
async fn cancel_waiting(gate: Option<oneshot::Receiver<()>>) -> u8 {
    wait_for(gate).await;
    8
}

#[test]
fn dropping_a_waiting_call_keeps_the_queue_behind_it_moving() {
    let (tx, rx) = gate();
    let mut running = task::spawn(cancel_waiting(Some(rx)));
    let mut dropped = task::spawn(cancel_waiting(None));
    let mut behind = task::spawn(cancel_waiting(None));
    assert_pending!(running.poll());
    assert_pending!(dropped.poll());
    assert_pending!(behind.poll());
    drop(dropped);
    assert_pending!(behind.poll(), "the permit is still taken");

    tx.send(()).expect("the call is alive");
    assert_eq!(assert_ready!(running.poll()), 8);
    assert!(behind.is_woken());
    assert_eq!(assert_ready!(behind.poll()), 8);
    // And the limiter is whole again: a new call runs straight through.
    assert_eq!(assert_ready!(task::spawn(cancel_waiting(None)).poll()), 8);
}

#[concurrency_limit(1)]
async fn cancel_after_admission(gate: Option<oneshot::Receiver<()>>) -> u8 {
    wait_for(gate).await;
    9
}

#[test]
fn dropping_a_call_that_was_admitted_and_waiting_for_its_turn_again_frees_the_permit() {
    // A call that was itself a waiter, got the permit, and is dropped before it is polled
    // again: the permit it was handed must not be lost.
    let (tx, rx) = gate();
    let mut running = task::spawn(cancel_after_admission(Some(rx)));
    let mut handed = task::spawn(cancel_after_admission(None));
    let mut last = task::spawn(cancel_after_admission(None));
    assert_pending!(running.poll());
    assert_pending!(handed.poll());
    assert_pending!(last.poll());
    tx.send(()).expect("the call is alive");
    assert_ready!(running.poll());
    assert!(
        handed.is_woken(),
        "the permit was handed to the first waiter"
    );
    drop(handed);
    assert!(last.is_woken());
    assert_eq!(assert_ready!(last.poll()), 9);
}

#[concurrency_limit(1)]
async fn panicking_body(panic: bool) -> u8 {
    tokio::task::yield_now().await;
    assert!(!panic, "the body panics on purpose");
    10
}

#[tokio::test]
async fn a_panicking_body_returns_its_permit() {
    let joined = timeout(HANG, tokio::spawn(panicking_body(true)))
        .await
        .expect("the call ends");
    assert!(joined.expect_err("the body panics").is_panic());
    let value = timeout(HANG, panicking_body(false))
        .await
        .expect("the permit came back");
    assert_eq!(value, 10);
}

#[concurrency_limit(1)]
async fn panicking_body_kept(panic: bool) -> u8 {
    assert!(!panic, "the body panics on purpose");
    11
}

#[test]
fn a_panicking_body_returns_its_permit_even_while_its_future_is_kept() {
    let mut panicked = task::spawn(panicking_body_kept(true));
    let unwound = catch_unwind(AssertUnwindSafe(|| panicked.poll()));
    assert!(unwound.is_err(), "the body panicked");
    // The poisoned future still exists; its permit must not.
    assert_eq!(
        assert_ready!(task::spawn(panicking_body_kept(false)).poll()),
        11
    );
    drop(panicked);
}

// ---------------------------------------------------------------------------------------
// `Send` exactly when the body is.

fn assert_send<T: Send>(_: &T) {}

/// Autoref specialization: `(&probe(&value)).is_send()` picks `SendKind` when the type is
/// `Send` (no autoref needed), and falls back to `AnyKind` (one more autoref) otherwise.
struct Probe<T>(PhantomData<T>);

macro_rules! is_send {
    ($value:expr) => {{
        // The borrow clippy calls needless is what makes the `AnyKind` fallback reachable.
        #[allow(clippy::needless_borrow)]
        let answer = (&probe(&$value)).is_send();
        answer
    }};
}

fn probe<T>(_: &T) -> Probe<T> {
    Probe(PhantomData)
}

trait SendKind {
    fn is_send(&self) -> bool {
        true
    }
}

impl<T: Send> SendKind for Probe<T> {}

trait AnyKind {
    fn is_send(&self) -> bool {
        false
    }
}

impl<T> AnyKind for &Probe<T> {}

#[concurrency_limit(2)]
async fn send_body(text: String) -> usize {
    tokio::task::yield_now().await;
    text.len()
}

#[concurrency_limit(2)]
async fn rc_across_await(value: usize) -> usize {
    let shared = Rc::new(value);
    tokio::task::yield_now().await;
    *shared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_is_send_when_the_body_is_send() {
    let call = send_body("four".to_owned());
    assert_send(&call);
    assert!(is_send!(call));
    let spawned = tokio::spawn(call);
    assert_eq!(timeout(HANG, spawned).await.expect("done").expect("ok"), 4);
}

#[tokio::test]
async fn future_is_not_send_when_the_body_holds_an_rc_across_an_await() {
    let call = rc_across_await(5);
    assert!(!is_send!(call));
    // It still runs where `Send` is not needed.
    assert_eq!(timeout(HANG, call).await.expect("done"), 5);
}

// ---------------------------------------------------------------------------------------
// The limit expression: evaluated once, lazily, and checked.

static CONFIG_EVALS: AtomicUsize = AtomicUsize::new(0);
static CONFIG_GAUGE: Gauge = Gauge::new();

fn limit_from_config() -> usize {
    CONFIG_EVALS.fetch_add(1, SeqCst);
    3
}

#[concurrency_limit(limit_from_config())]
async fn configured(round: usize) -> usize {
    let _running = CONFIG_GAUGE.enter();
    tokio::task::yield_now().await;
    round
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limit_expression_is_evaluated_lazily_and_exactly_once() {
    assert_eq!(
        CONFIG_EVALS.load(SeqCst),
        0,
        "not evaluated before any call"
    );
    let first = configured(0);
    assert_eq!(CONFIG_EVALS.load(SeqCst), 1, "evaluated by the first call");
    timeout(HANG, first).await.expect("first call");

    let makers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async {
                let calls: Vec<_> = (0..25)
                    .map(|round| tokio::spawn(configured(round)))
                    .collect();
                for call in calls {
                    call.await.expect("no call panics");
                }
            })
        })
        .collect();
    for maker in makers {
        timeout(HANG, maker).await.expect("done").expect("ok");
    }
    assert_eq!(CONFIG_EVALS.load(SeqCst), 1, "evaluated exactly once");
    assert!(
        CONFIG_GAUGE.peak() <= 3,
        "the evaluated limit is the one used"
    );
}

static RACE_EVALS: AtomicUsize = AtomicUsize::new(0);

fn slow_limit() -> usize {
    RACE_EVALS.fetch_add(1, SeqCst);
    // Widens the window in which other first calls arrive; the assertion below holds for
    // any length of this sleep.
    std::thread::sleep(Duration::from_millis(50));
    2
}

#[concurrency_limit(slow_limit())]
async fn raced_first_call() {}

#[test]
fn racing_first_calls_evaluate_the_limit_expression_exactly_once() {
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                futures::executor::block_on(raced_first_call());
            });
        }
    });
    assert_eq!(RACE_EVALS.load(SeqCst), 1);
}

mod config {
    use limit_runtime::concurrency_limit;

    pub(crate) fn zero() -> usize {
        0
    }

    #[concurrency_limit(zero())]
    pub(crate) async fn zero_limited() {}

    #[concurrency_limit(usize::MAX)]
    pub(crate) async fn too_large() {}
}

#[test]
fn limit_evaluating_to_zero_panics_at_the_first_call_naming_the_function_and_value() {
    let panicked = catch_unwind(config::zero_limited)
        .map(drop)
        .expect_err("the call itself panics, before any poll");
    let message = panic_message(&*panicked);
    assert!(
        message.contains("`semantics::config::zero_limited`"),
        "names the function: {message}"
    );
    assert!(
        message.contains("evaluated to 0"),
        "names the value: {message}"
    );
}

#[test]
fn limit_above_max_permits_panics_at_the_first_call_naming_the_function_and_value() {
    let panicked = catch_unwind(config::too_large)
        .map(drop)
        .expect_err("the call itself panics, before any poll");
    let message = panic_message(&*panicked);
    assert!(
        message.contains("`semantics::config::too_large`"),
        "names the function: {message}"
    );
    assert!(
        message.contains(&format!("evaluated to {}", usize::MAX)),
        "names the value: {message}"
    );
    assert!(
        message.contains(&limit_runtime::Limiter::MAX_LIMIT.to_string()),
        "names the maximum: {message}"
    );
}

// ---------------------------------------------------------------------------------------
// One limit per annotated function item.

#[concurrency_limit(1)]
async fn own_limit_a(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[concurrency_limit(1)]
async fn own_limit_b(gate: Option<oneshot::Receiver<()>>) {
    wait_for(gate).await;
}

#[test]
fn each_annotated_function_has_its_own_limit() {
    let (_tx, rx) = gate();
    let mut a = task::spawn(own_limit_a(Some(rx)));
    assert_pending!(a.poll());
    assert_ready!(task::spawn(own_limit_b(None)).poll());
    assert_pending!(task::spawn(own_limit_a(None)).poll());
}

static RUNTIMES_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(1)]
async fn across_runtimes(
    entered: Option<std::sync::mpsc::Sender<()>>,
    gate: Option<oneshot::Receiver<()>>,
) {
    let _running = RUNTIMES_GAUGE.enter();
    if let Some(entered) = entered {
        let _ = entered.send(());
    }
    wait_for(gate).await;
}

#[test]
fn limit_is_shared_across_threads_and_runtimes() {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = gate();
    let (waiting_tx, waiting_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            current_thread_runtime().block_on(async {
                timeout(HANG, across_runtimes(Some(entered_tx), Some(release_rx)))
                    .await
                    .expect("the first call finishes once released");
            });
        });
        entered_rx.recv_timeout(HANG).expect("the first body runs");
        let second = scope.spawn(move || {
            current_thread_runtime().block_on(async {
                let mut call = pin!(across_runtimes(None, None));
                let first_poll = futures::poll!(call.as_mut());
                let _ = waiting_tx.send(first_poll.is_pending());
                assert!(
                    first_poll.is_pending(),
                    "another runtime's call holds the permit"
                );
                timeout(HANG, call)
                    .await
                    .expect("admitted once the first call ends");
            });
        });
        let second_was_waiting = waiting_rx.recv_timeout(HANG);
        let _ = release_tx.send(());
        assert_eq!(second_was_waiting, Ok(true));
        first.join().expect("first thread");
        second.join().expect("second thread");
    });
    assert_eq!(RUNTIMES_GAUGE.peak(), 1);
}

static THREADS_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(3)]
async fn from_many_threads(yields: usize) {
    let _running = THREADS_GAUGE.enter();
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

#[test]
fn limit_holds_across_many_threads_each_with_its_own_runtime() {
    std::thread::scope(|scope| {
        for thread in 0..6 {
            scope.spawn(move || {
                current_thread_runtime().block_on(async move {
                    let calls: Vec<_> = (0..100)
                        .map(|i| tokio::spawn(from_many_threads((i + thread) % 4)))
                        .collect();
                    for call in calls {
                        timeout(HANG, call).await.expect("done").expect("ok");
                    }
                });
            });
        }
    });
    assert!(THREADS_GAUGE.peak() <= 3, "peak {}", THREADS_GAUGE.peak());
}

struct Worker {
    id: usize,
}

impl Worker {
    #[concurrency_limit(1)]
    async fn work(&self, gate: Option<oneshot::Receiver<()>>) -> usize {
        wait_for(gate).await;
        self.id
    }
}

#[test]
fn limit_is_shared_across_receivers() {
    let a = Worker { id: 1 };
    let b = Worker { id: 2 };
    let (tx, rx) = gate();
    let mut on_a = task::spawn(a.work(Some(rx)));
    let mut on_b = task::spawn(b.work(None));
    assert_pending!(on_a.poll());
    assert_pending!(on_b.poll(), "`a.work()` holds the one permit");
    tx.send(()).expect("the call is alive");
    assert_eq!(assert_ready!(on_a.poll()), 1);
    assert!(on_b.is_woken());
    assert_eq!(assert_ready!(on_b.poll()), 2);
}

#[concurrency_limit(1)]
async fn generic_job<T: Send>(value: T, gate: Option<oneshot::Receiver<()>>) -> T {
    wait_for(gate).await;
    value
}

#[test]
fn limit_is_shared_across_generic_instantiations() {
    let (tx, rx) = gate();
    let mut small = task::spawn(generic_job::<u8>(1, Some(rx)));
    let mut text = task::spawn(generic_job::<String>("two".to_owned(), None));
    assert_pending!(small.poll());
    assert_pending!(text.poll(), "`generic_job::<u8>` holds the one permit");
    tx.send(()).expect("the call is alive");
    assert_eq!(assert_ready!(small.poll()), 1);
    assert!(text.is_woken());
    assert_eq!(assert_ready!(text.poll()), "two");
}

#[concurrency_limit(1)]
async fn instant_job(id: u32) -> u32 {
    id
}

/// A call that finds a free permit spends the task's cooperative budget, as tokio's own
/// `Semaphore::acquire` does: a loop of such calls yields now and then, so other tasks of a
/// current-thread runtime get to run. (Without it, this loop would never end: the spawned
/// task could not run while the loop never yields.)
#[tokio::test(flavor = "current_thread")]
async fn a_loop_of_calls_that_find_a_free_permit_lets_other_tasks_run() {
    let other_ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&other_ran);
    tokio::spawn(async move { flag.store(true, SeqCst) });
    let mut calls = 0_u32;
    while !other_ran.load(SeqCst) {
        assert_eq!(instant_job(calls).await, calls);
        calls += 1;
        assert!(
            calls < 1_000_000,
            "a million calls never yielded to the other task"
        );
    }
    // tokio's budget is 128 operations per poll of a task today.
    assert!(calls <= 1024, "yielded only after {calls} calls");
}
