//! The handles that come with the options: the registry lookups `limiters()` and
//! `stragglers()`, `LimitError` (its traits, its `Display` for each refusal, its
//! conversion into the function's error type, during which the refused call is still in
//! flight) and `Stats`, followed through a call's life. (`limiter(name)` is used throughout;
//! `tests/option_name.rs` owns what the names are.)
//!
//! `stragglers()` sees the whole process, so every test here holds the file-wide lock
//! (`serial()`, `serial_async()`) while it has calls in flight, and ends all of them before
//! it lets go: the `stragglers()` test then sees only its own calls.
//!
//! Tests that need a timer run on a paused tokio clock, so a wait is virtual: `advance`
//! moves the clock, and a call is polled by hand to see where it stands. The others need no
//! runtime at all.

use std::error::Error;
use std::fmt::{Debug, Display};
use std::sync::Mutex;
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit, limiters, stragglers};
use limit_suite::{ApiError, gate, limiter_of, open, refusal, serial, serial_async};
use tokio::sync::oneshot;
use tokio::time::advance;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

/// How many times `limiter` is listed by `limiters()`, found by its name (unique here).
fn listed(limiter: &Limiter) -> usize {
    let name = limiter.name();
    limiters().filter(|l| l.name() == name).count()
}

#[test]
fn limiters_lists_function_limiters_after_their_first_call_and_statics_after_first_use() {
    let _serial = serial();
    static NEVER_USED: Limiter = Limiter::new(1).with_name("handles/never-used");
    static SHARED: Limiter = Limiter::new(3).with_name("handles/listed-static");
    static BY_HAND: Limiter = Limiter::new(1);

    #[concurrency_limit(2, name = "handles/listed-fn")]
    async fn listed_fn() {}

    #[concurrency_limit(limiter = SHARED)]
    async fn through_shared() {}

    // Reading a static's state is not a use.
    assert_eq!((SHARED.limit(), SHARED.in_flight()), (3, 0));
    assert_eq!(listed(&SHARED), 0);
    assert!(limit_runtime::limiter("handles/listed-fn").is_none());
    assert!(limit_runtime::limiter("handles/listed-static").is_none());

    // The first call registers the function's limiter, even before it is polled.
    let call = listed_fn();
    let function = limiter_of("handles/listed-fn");
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
    let listed_static = limiter_of("handles/listed-static");
    let permit = listed_static.try_acquire().unwrap();
    assert_eq!(SHARED.running(), 1);
    drop(permit);

    // A static used only by hand is listed too; unnamed, it is named after where it is.
    assert_eq!(listed(&BY_HAND), 0);
    drop(BY_HAND.try_acquire().unwrap());
    assert_eq!(listed(&BY_HAND), 1);
    assert!(
        BY_HAND.name().contains("handles.rs:"),
        "named after its place of definition: {}",
        BY_HAND.name()
    );

    assert_eq!(listed(&NEVER_USED), 0);
    assert!(limit_runtime::limiter("handles/never-used").is_none());
}

#[test]
fn stragglers_lists_limiters_with_calls_in_flight_and_says_when_there_are_none() {
    // Nothing else in this process may have a call in flight meanwhile.
    let _alone = serial();
    static HELD: Limiter = Limiter::new(2).with_name("handles/held-by-hand");

    #[concurrency_limit(1, name = "handles/straggler")]
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
        text.contains(r#""handles/straggler" (3 in flight: 1 running, 1 waiting)"#),
        "{text}"
    );
    assert!(
        text.contains(r#""handles/held-by-hand" (1 in flight: 1 running, 0 waiting)"#),
        "{text}"
    );

    drop(unpolled);
    drop(permit);
    assert_eq!(
        stragglers().to_string(),
        r#"1 limiter with calls in flight: "handles/straggler" (2 in flight: 1 running, 1 waiting)"#
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

    let _serial = serial();
    static ONE: Limiter = Limiter::new(1).with_name("handles/error-traits");
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
        r#"concurrency limit "handles/error-traits" (1): no permit free, and the call may not wait"#
    );
    let from_thread = std::thread::spawn(move || clone.name().clone())
        .join()
        .unwrap();
    assert_eq!(from_thread, "handles/error-traits");
}

#[tokio::test(start_paused = true)]
async fn each_limit_error_names_the_limiter_its_limit_and_why_the_call_was_refused() {
    let _serial = serial_async().await;
    static GITHUB: Limiter = Limiter::new(5).with_name("handles/github");

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

    let prefix = r#"concurrency limit "handles/github" (5): "#;
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
    let _serial = serial();

    #[concurrency_limit(2, queue = 1, name = "handles/stats")]
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
    let limiter = &limiter_of("handles/stats");
    let stats = limiter.stats();
    assert_eq!(stats.name, "handles/stats");
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
            .push(limiter_of(error.name()).in_flight());
        ObservedError
    }
}

#[concurrency_limit(1, max_wait = Duration::ZERO, name = "handles/refused-in-flight")]
async fn refused_in_flight(hold: Option<oneshot::Receiver<()>>) -> Result<(), ObservedError> {
    if let Some(hold) = hold {
        let _ = hold.await;
    }
    Ok(())
}

#[test]
fn a_refused_call_is_in_flight_until_its_error_is_converted_and_returned() {
    let _serial = serial();
    let (release, hold) = oneshot::channel();
    let mut holder = task::spawn(refused_in_flight(Some(hold)));
    assert_pending!(holder.poll());
    let limiter = limit_runtime::limiter("handles/refused-in-flight").expect("called");
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
