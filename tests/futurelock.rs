//! Futurelock (Oxide RFD 609): a task holds a limited call's future, pinned and un-polled, in
//! a `tokio::select!` loop, and then, in another branch, waits for a second permit of the
//! same limiter. The held call took the last permit on its first poll and can give it back
//! only by being polled to completion, which its own task never does while it waits: the
//! task never proceeds.
//!
//! The library cannot prevent this (the held future is the user's), and does not try: a
//! permit is held until the body ends or the future is dropped. What it promises is that
//! the situation is *diagnosable*, and that is what this file proves:
//!
//! - `Limiter::stats()` shows every permit taken (`running == limit`) and a call waiting;
//! - `stragglers()` and `limiters()` name the limiter;
//! - `drain()` does not return (bounded by `tokio::time::timeout`, it times out);
//!
//! and that the fixes work: run the held call in its own task, drop it before waiting, or
//! drive it to completion before waiting.
//!
//! The runtime's clock is paused: when every task is blocked, tokio jumps the clock to the
//! next timer, so each `timeout` here fires as soon as the runtime is idle, which is exactly
//! when the deadlock is established. No assertion depends on how fast the machine is, and a
//! deadlock costs no wall-clock time.
//!
//! `drain()` is process-wide, so the tests of this file run one at a time (`serial_async()`).

use std::pin::pin;
use std::time::Duration;

use limit_runtime::{Limiter, concurrency_limit, drain, limiters, stragglers};
use limit_suite::serial_async;
use tokio::time::{interval, sleep, timeout};

static POOL: Limiter = Limiter::new(1).with_name("futurelock-pool");

/// Longer than any timer in these tests. With the clock paused, reaching it costs nothing
/// and means that every task was blocked: the deadlock is real, not slow.
const FOREVER: Duration = Duration::from_secs(3600);

/// A limited call with a short body. It finishes promptly whenever it is polled.
#[concurrency_limit(limiter = POOL)]
async fn query(_sql: &'static str) {
    sleep(Duration::from_millis(1)).await;
}

/// The hazard, as it appears in real code: a call made, pinned, and raced against a timer
/// in a loop; the timer's branch makes another call of the same limiter and awaits it.
///
/// `biased` makes the interleaving the test's choice rather than `select!`'s random one:
/// `first` is polled first and takes the only permit, then the first tick (which is
/// immediate) runs its branch, and from then on `first` is never polled again.
async fn select_loop_holding(first: impl Future<Output = ()>) {
    let mut first = pin!(first);
    let mut ticks = interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            biased;
            () = &mut first => return,
            _ = ticks.tick() => query("SELECT 2").await,
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_futurelocked_task_is_visible_in_stats_and_stragglers() {
    let _serial = serial_async().await;
    // The call is made here, before the task first runs, so it is in flight from now on.
    let mut task = tokio::spawn(select_loop_holding(query("SELECT 1")));

    assert!(
        timeout(FOREVER, &mut task).await.is_err(),
        "the task holding an un-polled call while waiting for the same limiter never finishes"
    );

    // Every permit is held (by the call nobody polls), and a call waits for one.
    let stats = POOL.stats();
    assert_eq!(stats.running, stats.limit, "{stats:?}");
    assert!(stats.waiting >= 1, "{stats:?}");
    assert_eq!(stats.in_flight, 2, "{stats:?}");

    // What an operator sees at shutdown: the limiter, by name, with its counts.
    assert!(
        limiters().any(|limiter| limiter.name() == "futurelock-pool"),
        "limiters() lists the limiter"
    );
    let report = stragglers();
    assert!(
        report
            .stats()
            .iter()
            .any(|stats| stats.name == "futurelock-pool" && stats.running == 1),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains(r#""futurelock-pool" (2 in flight: 1 running, 1 waiting)"#),
        "{report}"
    );

    // `drain()` waits for both calls, as it should, so at shutdown it must be bounded.
    assert!(timeout(FOREVER, drain()).await.is_err(), "drain() waits");
    assert!(
        timeout(FOREVER, POOL.drain()).await.is_err(),
        "Limiter::drain waits"
    );

    // Aborting the task drops the held call, which gives its permit back.
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert_eq!(POOL.stats().in_flight, 0);
    assert_eq!(POOL.stats().running, 0);
    timeout(FOREVER, drain())
        .await
        .expect("nothing in flight once the task is gone");
}

/// The ways out: never hold a limited call's future un-polled across a wait for the same
/// limiter.
#[derive(Clone, Copy, Debug)]
enum Fix {
    /// Spawn the call: its own task polls it, whatever the select loop awaits.
    OwnTask,
    /// Drop the held call (cancelling it) before waiting for another permit.
    DropFirst,
    /// Drive the held call to completion before waiting for another permit.
    FinishFirst,
}

async fn select_loop_fixed(fix: Fix) {
    let mut ticks = interval(Duration::from_millis(10));
    match fix {
        Fix::OwnTask => {
            let mut first = tokio::spawn(query("SELECT 1"));
            loop {
                tokio::select! {
                    biased;
                    done = &mut first => return done.expect("the call does not panic"),
                    _ = ticks.tick() => query("SELECT 2").await,
                }
            }
        }
        Fix::DropFirst => {
            let mut first = Box::pin(query("SELECT 1"));
            tokio::select! {
                biased;
                () = &mut first => {}
                _ = ticks.tick() => {
                    // Cancels the held call, which gives its permit back, before the wait.
                    drop(first);
                    query("SELECT 2").await;
                }
            }
        }
        Fix::FinishFirst => {
            let mut first = pin!(query("SELECT 1"));
            tokio::select! {
                biased;
                () = &mut first => {}
                _ = ticks.tick() => {
                    // Finishes the held call, which gives its permit back, before the wait.
                    (&mut first).await;
                    query("SELECT 2").await;
                }
            }
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn not_holding_the_call_across_the_wait_avoids_the_futurelock() {
    let _serial = serial_async().await;
    for fix in [Fix::OwnTask, Fix::DropFirst, Fix::FinishFirst] {
        let before = POOL.stats().admitted;
        timeout(FOREVER, select_loop_fixed(fix))
            .await
            .unwrap_or_else(|_| panic!("{fix:?}: the loop finishes"));
        let stats = POOL.stats();
        assert_eq!(
            (stats.running, stats.waiting, stats.in_flight),
            (0, 0, 0),
            "{fix:?}: {stats:?}"
        );
        // Both calls were admitted in every variant (`first` on its first poll, before the
        // tick): the loop got past the wait for the second permit.
        assert_eq!(stats.admitted, before + 2, "{fix:?}: {stats:?}");
        timeout(FOREVER, drain())
            .await
            .unwrap_or_else(|_| panic!("{fix:?}: drain() returns"));
    }
}
