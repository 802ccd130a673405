//! The basic form of `#[concurrency_limit]`, and `drain()`, need no tokio runtime: every test
//! here runs on `futures::executor::block_on` and checks inside the bodies that no runtime
//! is around.
//!
//! Some of these tests call the process-wide `drain()`, and any limited call in flight would
//! delay it, so every test takes the file-wide lock first (`serial()`, which also checks
//! that the previous test left nothing in flight).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Context;
use std::time::Duration;

use futures::executor::block_on;
use futures::future::{join, join_all};
use limit_runtime::{concurrency_limit, drain};
use limit_suite::{Gauge, serial, yield_now};

fn assert_no_runtime() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "this test must run outside any tokio runtime"
    );
}

#[concurrency_limit(2)]
async fn single(text: &'static str) -> usize {
    assert_no_runtime();
    yield_now().await;
    text.len()
}

#[test]
fn a_single_call_completes_under_block_on() {
    let _serial = serial();
    assert_eq!(block_on(single("hello")), 5);
}

static JOINED_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(2)]
async fn joined(id: usize) -> usize {
    assert_no_runtime();
    let _running = JOINED_GAUGE.enter();
    for _ in 0..3 {
        yield_now().await;
    }
    id * 10
}

#[test]
fn joined_calls_share_the_limit_under_block_on() {
    let _serial = serial();
    let results = block_on(join_all((0..6).map(joined)));
    assert_eq!(results, [0, 10, 20, 30, 40, 50]);
    assert_eq!((JOINED_GAUGE.current(), JOINED_GAUGE.peak()), (0, 2));
}

#[concurrency_limit(3)]
async fn drained(id: usize) -> usize {
    assert_no_runtime();
    for _ in 0..id % 3 {
        yield_now().await;
    }
    id
}

#[test]
fn drain_works_under_block_on() {
    let _serial = serial();
    block_on(drain());

    let calls: Vec<_> = (0..10).map(drained).collect();
    // The calls are in flight before they are polled: the drain is not ready yet.
    let mut draining = Box::pin(drain());
    let waker = futures::task::noop_waker();
    assert!(
        draining
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let (results, ()) = block_on(join(join_all(calls), draining));
    assert_eq!(results, (0..10).collect::<Vec<_>>());
    block_on(drain());
}

#[concurrency_limit(1)]
async fn panics_without_runtime(panic: bool) -> u8 {
    assert_no_runtime();
    assert!(!panic, "the body panics on purpose");
    1
}

#[test]
fn a_panicking_body_frees_its_permit_and_in_flight_count_under_block_on() {
    let _serial = serial();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        block_on(panics_without_runtime(true));
    }));
    assert!(unwound.is_err());
    assert_eq!(block_on(panics_without_runtime(false)), 1);
    block_on(drain());
}

static THREADED_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(1)]
async fn woken_across_threads(
    entered: Option<std::sync::mpsc::Sender<()>>,
    gate: Option<futures::channel::oneshot::Receiver<()>>,
) {
    assert_no_runtime();
    let _running = THREADED_GAUGE.enter();
    if let Some(entered) = entered {
        let _ = entered.send(());
    }
    if let Some(gate) = gate {
        let _ = gate.await;
    }
}

#[test]
fn a_waiting_call_is_woken_by_a_call_ending_on_another_thread() {
    let _serial = serial();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = futures::channel::oneshot::channel();
    std::thread::scope(|scope| {
        let first =
            scope.spawn(move || block_on(woken_across_threads(Some(entered_tx), Some(release_rx))));
        entered_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the first body runs");
        let second = scope.spawn(|| block_on(woken_across_threads(None, None)));
        // Whether or not `second` has started waiting yet, it must get the permit after
        // `first` ends: either way it is woken or admitted directly.
        let _ = release_tx.send(());
        first.join().expect("first thread");
        second.join().expect("second thread");
    });
    assert_eq!(THREADED_GAUGE.peak(), 1);
    block_on(drain());
}
