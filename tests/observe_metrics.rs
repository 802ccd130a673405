//! The `metrics` feature: the exact metrics a limiter reports, read back from metrics-util's
//! `DebuggingRecorder`.
//!
//! - Gauges `concurrency_limit_running` and `concurrency_limit_waiting` are the limiter's
//!   `running()` and `waiting()` after every change: admission, release, queuing, leaving
//!   the queue, cancellation and panic, for keyed limiters and permits taken by hand too.
//! - Counters `concurrency_limit_admitted_total` and `concurrency_limit_rejected_total` count
//!   what `Stats::admitted` and `Stats::rejected` count.
//! - Histogram `concurrency_limit_wait_seconds` records every admission's wait, 0 for a call
//!   admitted at once, so its count is the admitted counter.
//! - Gauge `concurrency_limit_limit` is the limiter's limit: set when it is registered, at
//!   every `set_limit`, and at each change of an adaptive limit by its controller (not a
//!   key's: a key's limit is its own, and the gauge is the limiter's).
//! - Every metric has exactly one label, `limiter` = the limiter's name, and all six exist
//!   from the limiter's first call on.
//!
//! Each test records into a recorder of its own, made this thread's with
//! `metrics::with_local_recorder`, and polls its futures on this thread, so tests running in
//! parallel do not see each other's metrics. Each test has its own limiters: a limiter reports
//! its metrics at zero when it is registered, at its first call, and that must happen inside
//! its test's recorder.
#![cfg(feature = "metrics")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready, task};

const RUNNING: &str = "concurrency_limit_running";
const WAITING: &str = "concurrency_limit_waiting";
const ADMITTED: &str = "concurrency_limit_admitted_total";
const REJECTED: &str = "concurrency_limit_rejected_total";
const WAIT_SECONDS: &str = "concurrency_limit_wait_seconds";
const LIMIT: &str = "concurrency_limit_limit";

// ---------------------------------------------------------------------------------------
// Reading the recorder
// ---------------------------------------------------------------------------------------

/// A gauge value no limiter ever sets.
const UNSET: f64 = -1.0;

/// One limiter's metrics as they stand.
#[derive(Clone, Debug, Default, PartialEq)]
struct Now {
    running: f64,
    waiting: f64,
    /// The gauge `concurrency_limit_limit`.
    limit: f64,
    admitted: u64,
    rejected: u64,
    /// Every value the histogram recorded, in order.
    waits: Vec<f64>,
}

/// Reads one limiter's metrics out of a `DebuggingRecorder`.
///
/// A snapshot of that recorder *consumes* what it reports: counters read as what was added
/// since the last snapshot, histograms as the values recorded since, and gauges as the last
/// value set since, or 0 if none was. So `Meter` adds counters up and collects histogram
/// values, and, so that "set to 0" and "not set" differ, sets the gauges to `UNSET` after
/// each snapshot: a gauge still `UNSET` at the next one was not set in between, and keeps
/// its value.
struct Meter {
    snapshotter: Snapshotter,
    limiter: &'static str,
    now: Now,
}

impl Meter {
    fn new(recorder: &DebuggingRecorder, limiter: &'static str) -> Self {
        let meter = Self {
            snapshotter: recorder.snapshotter(),
            limiter,
            // Until the limiter reports them.
            now: Now {
                running: UNSET,
                waiting: UNSET,
                limit: UNSET,
                ..Now::default()
            },
        };
        meter.arm();
        meter
    }

    fn arm(&self) {
        metrics::gauge!(RUNNING, "limiter" => self.limiter).set(UNSET);
        metrics::gauge!(WAITING, "limiter" => self.limiter).set(UNSET);
        metrics::gauge!(LIMIT, "limiter" => self.limiter).set(UNSET);
    }

    /// The limiter's metrics now.
    fn now(&mut self) -> Now {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let labels: Vec<_> = key
                .key()
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            if labels != [("limiter".to_owned(), self.limiter.to_owned())] {
                continue;
            }
            let gauge = |value: &DebugValue, now: f64| match value {
                DebugValue::Gauge(value) if value.0 == UNSET => now,
                DebugValue::Gauge(value) => value.0,
                other => panic!("not a gauge: {other:?}"),
            };
            match (key.kind(), key.key().name(), &value) {
                (MetricKind::Gauge, RUNNING, _) => {
                    self.now.running = gauge(&value, self.now.running)
                }
                (MetricKind::Gauge, WAITING, _) => {
                    self.now.waiting = gauge(&value, self.now.waiting)
                }
                (MetricKind::Gauge, LIMIT, _) => self.now.limit = gauge(&value, self.now.limit),
                (MetricKind::Counter, ADMITTED, DebugValue::Counter(n)) => self.now.admitted += n,
                (MetricKind::Counter, REJECTED, DebugValue::Counter(n)) => self.now.rejected += n,
                (MetricKind::Histogram, WAIT_SECONDS, DebugValue::Histogram(values)) => {
                    self.now.waits.extend(values.iter().map(|value| value.0));
                }
                other => panic!("unexpected metric: {other:?}"),
            }
        }
        self.arm();
        self.now.clone()
    }

    /// The gauges now, as `(running, waiting)`.
    fn gauges(&mut self) -> (f64, f64) {
        let now = self.now();
        (now.running, now.waiting)
    }
}

/// Runs `test` with a fresh `DebuggingRecorder` as this thread's recorder.
fn metered(test: impl FnOnce(&DebuggingRecorder)) {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || test(&recorder));
}

/// What a limited body is told to do when it is released.
#[derive(Debug)]
enum Then {
    Return,
    Panic,
}

async fn hold_then(hold: oneshot::Receiver<Then>) {
    if let Ok(Then::Panic) = hold.await {
        panic!("the body panics, on purpose");
    }
}

// ---------------------------------------------------------------------------------------
// Gauges
// ---------------------------------------------------------------------------------------

#[concurrency_limit(2, name = "metered-gauges")]
async fn gauged(hold: oneshot::Receiver<Then>) {
    hold_then(hold).await;
}

#[test]
fn the_gauges_follow_admissions_releases_queueing_cancellations_and_panics() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-gauges");
        let (release_a, hold) = oneshot::channel();
        let mut a = task::spawn(gauged(hold));
        let (release_b, hold) = oneshot::channel();
        let mut b = task::spawn(gauged(hold));
        let (_release_c, hold) = oneshot::channel();
        let mut c = task::spawn(gauged(hold));
        let (_release_d, hold) = oneshot::channel();
        let mut d = task::spawn(gauged(hold));
        // Made, not polled: registered, so both gauges are reported, at 0.
        assert_eq!(meter.gauges(), (0.0, 0.0), "registered");

        assert_pending!(a.poll());
        assert_eq!(meter.gauges(), (1.0, 0.0), "a admitted at once");
        assert_pending!(b.poll());
        assert_eq!(meter.gauges(), (2.0, 0.0), "b admitted at once");
        assert_pending!(c.poll());
        assert_eq!(meter.gauges(), (2.0, 1.0), "c waits");
        assert_pending!(d.poll());
        assert_eq!(meter.gauges(), (2.0, 2.0), "d waits");
        drop(d);
        assert_eq!(meter.gauges(), (2.0, 1.0), "d cancelled while waiting");

        std::thread::sleep(Duration::from_millis(2)); // so that c's wait is measurable
        release_a.send(Then::Return).unwrap();
        assert_ready!(a.poll());
        assert_eq!(
            meter.gauges(),
            (1.0, 1.0),
            "a done; its permit is on its way to c"
        );
        assert_pending!(c.poll());
        assert_eq!(meter.gauges(), (2.0, 0.0), "c admitted after waiting");

        release_b.send(Then::Panic).unwrap();
        assert!(catch_unwind(AssertUnwindSafe(|| b.poll())).is_err());
        assert_eq!(meter.gauges(), (1.0, 0.0), "b's body panicked");
        drop(b);
        drop(c);
        assert_eq!(meter.gauges(), (0.0, 0.0), "c cancelled while running");

        let now = meter.now();
        assert_eq!((now.admitted, now.rejected), (3, 0));
        assert_eq!(
            now.waits.len(),
            3,
            "one value per admission: {:?}",
            now.waits
        );
        assert_eq!(now.waits[..2], [0.0, 0.0], "a and b were admitted at once");
        assert!(
            now.waits[2] >= 0.002,
            "c waited at least 2 ms: {:?}",
            now.waits
        );
    });
}

#[concurrency_limit(1, key = key, name = "metered-keyed")]
async fn keyed(key: u32, hold: oneshot::Receiver<Then>) {
    let _ = key;
    hold_then(hold).await;
}

#[test]
fn a_keyed_limiters_gauges_add_up_every_key() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-keyed");
        let (release_1, hold) = oneshot::channel();
        let mut one = task::spawn(keyed(1, hold));
        let (release_2, hold) = oneshot::channel();
        let mut two = task::spawn(keyed(2, hold));
        let (release_1b, hold) = oneshot::channel();
        let mut one_b = task::spawn(keyed(1, hold));
        let (_release_2b, hold) = oneshot::channel();
        let mut two_b = task::spawn(keyed(2, hold));

        assert_pending!(one.poll());
        assert_pending!(two.poll());
        assert_eq!(meter.gauges(), (2.0, 0.0), "one call of each key runs");
        assert_pending!(one_b.poll());
        assert_pending!(two_b.poll());
        assert_eq!(
            meter.gauges(),
            (2.0, 2.0),
            "a second call of each key waits"
        );

        release_1.send(Then::Return).unwrap();
        assert_ready!(one.poll());
        assert_pending!(one_b.poll());
        assert_eq!(
            meter.gauges(),
            (2.0, 1.0),
            "key 1's second call took its turn"
        );
        drop(two_b);
        assert_eq!(meter.gauges(), (2.0, 0.0), "key 2's second call cancelled");
        release_2.send(Then::Return).unwrap();
        assert_ready!(two.poll());
        release_1b.send(Then::Return).unwrap();
        assert_ready!(one_b.poll());
        assert_eq!(meter.gauges(), (0.0, 0.0));

        let now = meter.now();
        assert_eq!((now.admitted, now.rejected), (3, 0));
        assert_eq!(now.waits.len(), 3);
    });
}

static BY_HAND: Limiter = Limiter::new(1).with_name("metered-by-hand");

#[test]
fn permits_taken_by_hand_are_metered_like_calls() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-by-hand");
        let permit = BY_HAND.try_acquire().unwrap();
        assert_eq!(meter.gauges(), (1.0, 0.0), "try_acquire");
        let mut waiting = task::spawn(BY_HAND.acquire());
        assert_pending!(waiting.poll());
        assert_eq!(meter.gauges(), (1.0, 1.0), "acquire waits");
        assert!(BY_HAND.try_acquire().is_err());
        drop(permit);
        assert_eq!(meter.gauges(), (0.0, 1.0), "the permit, dropped");
        let permit = assert_ready!(waiting.poll());
        assert_eq!(meter.gauges(), (1.0, 0.0), "acquire admitted");
        drop(permit);
        assert_eq!(meter.gauges(), (0.0, 0.0));

        let now = meter.now();
        assert_eq!((now.admitted, now.rejected), (2, 1));
        assert_eq!(now.waits.len(), 2);
    });
}

// ---------------------------------------------------------------------------------------
// Counters and the histogram
// ---------------------------------------------------------------------------------------

static REFUSING: Limiter = Limiter::new(1).with_name("metered-refusing");

#[concurrency_limit(limiter = REFUSING, max_wait = Duration::from_millis(50))]
async fn with_timeout() -> Result<(), LimitError> {
    Ok(())
}

#[concurrency_limit(limiter = REFUSING, queue = 0)]
async fn with_no_queue() -> Result<(), LimitError> {
    Ok(())
}

#[concurrency_limit(limiter = REFUSING, max_wait = Duration::ZERO)]
async fn fail_fast() -> Result<(), LimitError> {
    Ok(())
}

#[test]
fn the_counters_count_admissions_and_every_kind_of_refusal() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-refusing");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let permit = REFUSING.try_acquire().unwrap();
        let now = meter.now();
        assert_eq!((now.admitted, now.rejected, now.waits.len()), (1, 0, 1));

        assert!(matches!(
            runtime.block_on(with_timeout()),
            Err(LimitError::Timeout { .. })
        ));
        let now = meter.now();
        assert_eq!(
            (now.rejected, now.waiting),
            (1, 0.0),
            "timed out, left the queue"
        );
        assert!(matches!(
            assert_ready!(task::spawn(with_no_queue()).poll()),
            Err(LimitError::QueueFull { .. })
        ));
        assert!(matches!(
            assert_ready!(task::spawn(fail_fast()).poll()),
            Err(LimitError::NoPermit { .. })
        ));
        assert!(REFUSING.try_acquire().is_err());
        let now = meter.now();
        assert_eq!((now.admitted, now.rejected), (1, 4), "one of each refusal");
        assert_eq!(now.waits.len(), 1, "refusals record no wait");
        drop(permit);

        for _ in 0..3 {
            assert_ready!(task::spawn(with_timeout()).poll()).unwrap();
        }
        let now = meter.now();
        assert_eq!((now.admitted, now.rejected), (4, 4));
        assert_eq!(now.waits, [0.0; 4], "every admission, at once: 0 s");
        let stats = REFUSING.stats();
        assert_eq!(
            (now.admitted, now.rejected),
            (stats.admitted, stats.rejected),
            "the counters are the limiter's stats"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Names and labels
// ---------------------------------------------------------------------------------------

#[concurrency_limit(3, name = "metered-labels")]
async fn labelled() {}

#[test]
fn a_limiter_reports_its_six_metrics_labelled_with_its_name_from_its_first_call() {
    metered(|recorder| {
        let call = labelled(); // made, not polled: the limiter is registered
        let mut metrics: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels: Vec<_> = key
                    .key()
                    .labels()
                    .map(|label| format!("{}={}", label.key(), label.value()))
                    .collect();
                (key.kind(), key.key().name().to_owned(), labels, value)
            })
            .collect();
        metrics.sort_by(|a, b| a.1.cmp(&b.1)); // by name
        let label = || vec!["limiter=metered-labels".to_owned()];
        assert_eq!(
            metrics,
            [
                (
                    MetricKind::Counter,
                    ADMITTED.to_owned(),
                    label(),
                    DebugValue::Counter(0)
                ),
                (
                    MetricKind::Gauge,
                    LIMIT.to_owned(),
                    label(),
                    DebugValue::Gauge(3.0.into())
                ),
                (
                    MetricKind::Counter,
                    REJECTED.to_owned(),
                    label(),
                    DebugValue::Counter(0)
                ),
                (
                    MetricKind::Gauge,
                    RUNNING.to_owned(),
                    label(),
                    DebugValue::Gauge(0.0.into())
                ),
                (
                    MetricKind::Histogram,
                    WAIT_SECONDS.to_owned(),
                    label(),
                    DebugValue::Histogram(Vec::new())
                ),
                (
                    MetricKind::Gauge,
                    WAITING.to_owned(),
                    label(),
                    DebugValue::Gauge(0.0.into())
                ),
            ]
        );
        assert_ready!(task::spawn(call).poll());
    });
}

#[concurrency_limit(1, name = "metered-late-recorder")]
async fn late() {}

#[test]
fn a_recorder_installed_after_a_limiters_first_call_sees_every_later_change() {
    // The first call, with no recorder: the limiter is registered and reports to nobody.
    assert_ready!(task::spawn(late()).poll());
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-late-recorder");
        let mut call = task::spawn(late());
        assert_eq!(meter.gauges(), (UNSET, UNSET), "nothing reported yet");
        assert_ready!(call.poll());
        let now = meter.now();
        assert_eq!((now.running, now.admitted, now.waits), (0.0, 1, vec![0.0]));
        // No call has queued since the recorder came: the waiting gauge is reported at the
        // next change of the queue.
        assert_eq!(now.waiting, UNSET);
    });
}

// ---------------------------------------------------------------------------------------
// The limit
// ---------------------------------------------------------------------------------------

#[concurrency_limit(adaptive(initial = 4, max = 64), name = "metered-adaptive")]
async fn metered_adaptive() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[concurrency_limit(adaptive(initial = 2, max = 64), key = key, name = "metered-adaptive-keyed")]
async fn metered_adaptive_keyed(key: u32) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::hint::black_box(key);
}

/// `count` calls at once, to the end.
async fn all_at_once<F: Future<Output = ()> + Send + 'static>(calls: impl Iterator<Item = F>) {
    let calls: Vec<_> = calls.map(tokio::spawn).collect();
    for call in calls {
        call.await.expect("no panic");
    }
}

#[test]
fn the_limit_gauge_follows_an_adaptive_limit_and_every_set_limit() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-adaptive");
        let call = metered_adaptive(); // made, not polled: the limiter is registered
        assert_eq!(meter.now().limit, 4.0, "its initial limit, at registration");
        limit_suite::paused_runtime().block_on(async {
            call.await;
            assert_eq!(meter.now().limit, 4.0, "no change yet");
            // The first round needs 4 calls; at the limit of 4, with no queue, slow start
            // doubles it.
            all_at_once((0..4).map(|_| metered_adaptive())).await;
            assert_eq!(meter.now().limit, 8.0);
            let limiter = limit_runtime::limiter("metered-adaptive").expect("registered");
            limiter.set_limit(20);
            assert_eq!(meter.now().limit, 20.0, "a limit set by hand");
        });
    });
}

#[test]
fn a_keys_adaptive_limit_is_not_the_limiters_gauge() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-adaptive-keyed");
        limit_suite::paused_runtime().block_on(async {
            all_at_once((0..4).map(|_| metered_adaptive_keyed(7))).await;
        });
        // The key's limit went from 2 to 4 (`tests/observe_tracing.rs` sees the event); the
        // limiter's own limit, which new keys start from, is still 2.
        let limiter = limit_runtime::limiter("metered-adaptive-keyed").expect("registered");
        assert_eq!(limiter.limit(), 2);
        assert_eq!(meter.now().limit, 2.0, "set at registration, and not since");
        limiter.set_limit(5);
        assert_eq!(meter.now().limit, 5.0);
    });
}

static FIXED: Limiter = Limiter::new(3).with_name("metered-fixed-limit");

#[test]
fn a_fixed_limits_gauge_is_set_at_registration_and_by_set_limit() {
    metered(|recorder| {
        let mut meter = Meter::new(recorder, "metered-fixed-limit");
        drop(FIXED.try_acquire().expect("free")); // registers it
        assert_eq!(meter.now().limit, 3.0);
        FIXED.set_limit(7);
        assert_eq!(meter.now().limit, 7.0);
        drop(FIXED.try_acquire().expect("free"));
        assert_eq!(meter.now().limit, 7.0);
    });
}
