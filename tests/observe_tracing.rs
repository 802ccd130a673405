//! The `tracing` feature: the exact events and spans a limited call emits.
//!
//! - A call that has to wait opens a `concurrency_limit.wait` span (field `limiter`), emits a
//!   `DEBUG` "waiting for a permit" event in it (fields `limiter`, `limit`), is inside the
//!   span only while its wait is polled, and when admitted emits a `DEBUG` "admitted after
//!   waiting" event in it (fields `limiter`, `waited`); the span closes before the body runs.
//! - A call admitted at once emits nothing and opens no span.
//! - Every refusal emits one `WARN` event (fields `limiter`, `limit`, `reason`; the message is
//!   the `LimitError`'s `Display`), and a refused call that never queued opens no span.
//! - Each change of an adaptive limit by its controller emits one `DEBUG` event (fields
//!   `limiter`, `from`, `to`, `reason`, `keyed`), and forgetting idle keys' learned limits
//!   emits one (field `count`).
//!
//! Each test installs a recording subscriber for its own thread
//! (`tracing::subscriber::with_default`) and polls its futures on that thread (by hand, or on
//! a current-thread runtime), so tests running in parallel do not see each other's events.
//! Each test has its own functions and limiters.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit};
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready, task};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Instrument, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

// ---------------------------------------------------------------------------------------
// A layer that records events and span lifecycles, in order
// ---------------------------------------------------------------------------------------

/// What the layer saw, as one line each, so that a test compares whole sequences:
///
/// - `new NAME{field=value, …} in PARENT`
/// - `enter NAME`, `exit NAME`, `close NAME`
/// - `LEVEL TARGET: MESSAGE {field=value, …} in SPAN`
///
/// A field whose value depends on timing (`waited`) is shown as `waited=_`; [`Trace::waited`]
/// returns the values.
#[derive(Clone, Default)]
struct Trace(Arc<Mutex<Recorded>>);

#[derive(Default)]
struct Recorded {
    lines: Vec<String>,
    waited: Vec<String>,
}

impl Trace {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: String) {
        self.lock().lines.push(line);
    }

    /// Everything recorded so far, cleared.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().lines)
    }

    /// Everything recorded so far without the enter and exit lines, cleared.
    fn take_without_enter_exit(&self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|line| !line.starts_with("enter ") && !line.starts_with("exit "))
            .collect()
    }

    /// The `waited` field of each event that had one, as recorded (`Debug` of a `Duration`).
    fn waited(&self) -> Vec<String> {
        self.lock().waited.clone()
    }
}

/// A span's or event's fields, in name order; `message` is kept apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: BTreeMap<&'static str, String>,
    waited: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let value = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(value),
            "waited" => {
                self.waited = Some(value);
                self.fields.insert("waited", "_".to_owned());
            }
            name => {
                self.fields.insert(name, value);
            }
        }
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, (name, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value}")?;
        }
        f.write_str("}")
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Trace {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let span = ctx.span(id).expect("a new span is in the registry");
        let parent = span.parent().map_or("-", |parent| parent.name());
        self.push(format!("new {}{fields} in {parent}", span.name()));
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.push(format!("enter {}", ctx.span(id).expect("entered").name()));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.push(format!("exit {}", ctx.span(id).expect("exited").name()));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.push(format!("close {}", ctx.span(&id).expect("closing").name()));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = ctx.event_span(event).map_or("-", |span| span.name());
        let metadata = event.metadata();
        if let Some(waited) = fields.waited.take() {
            self.lock().waited.push(waited);
        }
        self.push(format!(
            "{} {}: {} {fields} in {span}",
            metadata.level(),
            metadata.target(),
            fields.message.as_deref().unwrap_or_default(),
        ));
    }
}

/// Runs `test` with a recording subscriber as this thread's default.
fn traced(test: impl FnOnce(&Trace)) {
    let trace = Trace::default();
    let subscriber = tracing_subscriber::registry().with(trace.clone());
    tracing::subscriber::with_default(subscriber, || test(&trace));
}

/// What a body emits first, so that a test sees where the body starts.
fn body_starts(name: &str) {
    tracing::info!(target: "body", "{name} starts");
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

#[concurrency_limit(1, name = "traced-wait")]
async fn traced_wait(name: &'static str, hold: oneshot::Receiver<()>) {
    body_starts(name);
    let _ = hold.await;
}

#[test]
fn a_call_that_waits_emits_wait_and_admitted_events_in_a_wait_span_that_closes_before_its_body() {
    traced(|trace| {
        let (release_first, hold) = oneshot::channel();
        let mut first = task::spawn(traced_wait("first", hold));
        assert_pending!(first.poll());
        assert_eq!(trace.take(), ["INFO body: first starts {} in -"]);

        let (_release_second, hold) = oneshot::channel();
        let mut second = task::spawn(traced_wait("second", hold));
        assert_pending!(second.poll());
        assert_eq!(
            trace.take(),
            [
                "new concurrency_limit.wait{limiter=traced-wait} in -",
                "enter concurrency_limit.wait",
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-wait} \
                 in concurrency_limit.wait",
                "exit concurrency_limit.wait",
                // The first poll of the wait, inside the span.
                "enter concurrency_limit.wait",
                "exit concurrency_limit.wait",
            ]
        );

        release_first.send(()).unwrap();
        assert_ready!(first.poll());
        assert!(second.is_woken());
        assert_eq!(
            trace.take(),
            Vec::<String>::new(),
            "the release emits nothing"
        );
        std::thread::sleep(Duration::from_millis(2));
        assert_pending!(second.poll());
        assert_eq!(
            trace.take(),
            [
                // The poll that admits it.
                "enter concurrency_limit.wait",
                "exit concurrency_limit.wait",
                // `Instrumented` drops the finished wait future inside its span.
                "enter concurrency_limit.wait",
                "exit concurrency_limit.wait",
                "enter concurrency_limit.wait",
                "DEBUG limit_runtime: admitted after waiting {limiter=traced-wait, waited=_} \
                 in concurrency_limit.wait",
                "exit concurrency_limit.wait",
                "close concurrency_limit.wait",
                // The body runs after the wait span has closed, and outside it.
                "INFO body: second starts {} in -",
            ]
        );
        let waited = trace.waited();
        assert_eq!(waited.len(), 1);
        assert!(
            // `Duration`'s `Debug` goes to `µs` below 1 ms.
            !["ns", "µs"].iter().any(|unit| waited[0].ends_with(unit)),
            "waited at least the 2 ms slept: {waited:?}"
        );
    });
}

#[concurrency_limit(1, name = "traced-child")]
async fn traced_child(name: &'static str, hold: oneshot::Receiver<()>) {
    body_starts(name);
    let _ = hold.await;
}

#[test]
fn the_wait_span_is_a_child_of_the_callers_span_and_the_body_is_not_in_it() {
    traced(|trace| {
        let (release_first, hold) = oneshot::channel();
        let mut first = task::spawn(traced_child("first", hold));
        assert_pending!(first.poll());

        let (_release_second, hold) = oneshot::channel();
        let request = tracing::info_span!("request");
        let mut second = task::spawn(traced_child("second", hold).instrument(request));
        assert_pending!(second.poll());
        release_first.send(()).unwrap();
        assert_ready!(first.poll());
        assert_pending!(second.poll());
        let trace = trace.take_without_enter_exit();
        assert_eq!(
            trace,
            [
                "INFO body: first starts {} in -",
                "new request{} in -",
                "new concurrency_limit.wait{limiter=traced-child} in request",
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-child} \
                 in concurrency_limit.wait",
                "DEBUG limit_runtime: admitted after waiting {limiter=traced-child, waited=_} \
                 in concurrency_limit.wait",
                "close concurrency_limit.wait",
                "INFO body: second starts {} in request",
            ]
        );
    });
}

#[concurrency_limit(1, name = "traced-cancel")]
async fn traced_cancel(hold: oneshot::Receiver<()>) {
    let _ = hold.await;
}

#[test]
fn a_call_cancelled_while_it_waits_closes_its_wait_span_without_an_admitted_event() {
    traced(|trace| {
        let (_release, hold) = oneshot::channel();
        let mut first = task::spawn(traced_cancel(hold));
        assert_pending!(first.poll());
        let (_release, hold) = oneshot::channel();
        let mut second = task::spawn(traced_cancel(hold));
        assert_pending!(second.poll());
        drop(second);
        assert_eq!(
            trace.take_without_enter_exit(),
            [
                "new concurrency_limit.wait{limiter=traced-cancel} in -",
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-cancel} \
                 in concurrency_limit.wait",
                "close concurrency_limit.wait",
            ]
        );
    });
}

static POLICY: Limiter = Limiter::new(1).with_name("traced-policy");

#[concurrency_limit(limiter = POLICY, queue = 4)]
async fn traced_queue_bound(name: &'static str) -> Result<(), LimitError> {
    body_starts(name);
    Ok(())
}

#[concurrency_limit(limiter = POLICY, queue = 4, max_wait = Duration::from_secs(60))]
async fn traced_max_wait(name: &'static str) -> Result<(), LimitError> {
    body_starts(name);
    Ok(())
}

#[test]
fn a_call_with_queue_or_max_wait_that_waits_is_traced_the_same_way() {
    traced(|trace| {
        // `max_wait` needs the timer's context; the futures are still polled by hand here.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let _context = runtime.enter();
        let permit = POLICY.try_acquire().unwrap();
        let mut bounded = task::spawn(traced_queue_bound("bounded"));
        assert_pending!(bounded.poll());
        let mut timed = task::spawn(traced_max_wait("timed"));
        assert_pending!(timed.poll());
        let waiting = |limit: usize| {
            [
                "new concurrency_limit.wait{limiter=traced-policy} in -".to_owned(),
                "enter concurrency_limit.wait".to_owned(),
                format!(
                    "DEBUG limit_runtime: waiting for a permit {{limit={limit}, \
                     limiter=traced-policy}} in concurrency_limit.wait"
                ),
                "exit concurrency_limit.wait".to_owned(),
                "enter concurrency_limit.wait".to_owned(),
                "exit concurrency_limit.wait".to_owned(),
            ]
        };
        assert_eq!(trace.take(), [waiting(1), waiting(1)].concat());

        drop(permit);
        assert_ready!(bounded.poll()).unwrap();
        assert_ready!(timed.poll()).unwrap();
        let admitted = |name: &str| {
            [
                "enter concurrency_limit.wait".to_owned(),
                "exit concurrency_limit.wait".to_owned(),
                "enter concurrency_limit.wait".to_owned(),
                "exit concurrency_limit.wait".to_owned(),
                "enter concurrency_limit.wait".to_owned(),
                "DEBUG limit_runtime: admitted after waiting {limiter=traced-policy, waited=_} \
                 in concurrency_limit.wait"
                    .to_owned(),
                "exit concurrency_limit.wait".to_owned(),
                "close concurrency_limit.wait".to_owned(),
                format!("INFO body: {name} starts {{}} in -"),
            ]
        };
        assert_eq!(
            trace.take(),
            [admitted("bounded"), admitted("timed")].concat()
        );
    });
}

// ---------------------------------------------------------------------------------------
// Admitted at once
// ---------------------------------------------------------------------------------------

#[concurrency_limit(2, name = "traced-at-once")]
async fn traced_at_once(name: &'static str) {
    body_starts(name);
}

static AT_ONCE: Limiter = Limiter::new(2).with_name("traced-at-once-static");

#[concurrency_limit(limiter = AT_ONCE, max_wait = Duration::from_secs(1), queue = 4)]
async fn traced_at_once_with_policy(name: &'static str) -> Result<(), LimitError> {
    body_starts(name);
    Ok(())
}

#[test]
fn a_call_admitted_at_once_emits_nothing_and_opens_no_span() {
    traced(|trace| {
        assert_ready!(task::spawn(traced_at_once("plain")).poll());
        assert_ready!(task::spawn(traced_at_once_with_policy("policy")).poll()).unwrap();
        let permit = AT_ONCE.try_acquire().unwrap();
        let acquired = assert_ready!(task::spawn(AT_ONCE.acquire()).poll());
        drop((permit, acquired));
        assert_eq!(
            trace.take(),
            [
                "INFO body: plain starts {} in -",
                "INFO body: policy starts {} in -",
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------

static REFUSING: Limiter = Limiter::new(1).with_name("traced-refusing");

#[concurrency_limit(limiter = REFUSING, max_wait = Duration::from_millis(50))]
async fn traced_timeout() -> Result<(), LimitError> {
    body_starts("timeout");
    Ok(())
}

#[concurrency_limit(limiter = REFUSING, queue = 0)]
async fn traced_queue_full() -> Result<(), LimitError> {
    body_starts("queue full");
    Ok(())
}

#[concurrency_limit(limiter = REFUSING, max_wait = Duration::ZERO)]
async fn traced_fail_fast() -> Result<(), LimitError> {
    body_starts("fail fast");
    Ok(())
}

/// The `WARN` line for `error`, as the layer records it.
fn warn_line(error: &LimitError, reason: &str) -> String {
    format!(
        "WARN limit_runtime: {error} {{limit=1, limiter=traced-refusing, reason={reason}}} in -"
    )
}

#[test]
fn each_kind_of_refusal_emits_one_warn_event_with_its_reason_and_error() {
    traced(|trace| {
        let permit = REFUSING.try_acquire().unwrap(); // the only permit, held throughout
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();

        // `max_wait`: waits (in the wait span) until the deadline, then is refused.
        let error = runtime.block_on(traced_timeout()).unwrap_err();
        assert!(matches!(error, LimitError::Timeout { .. }), "{error:?}");
        assert_eq!(
            trace.take_without_enter_exit(),
            [
                "new concurrency_limit.wait{limiter=traced-refusing} in -".to_owned(),
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-refusing} \
                 in concurrency_limit.wait"
                    .to_owned(),
                warn_line(&error, "timeout"),
                "close concurrency_limit.wait".to_owned(),
            ]
        );
        assert!(error.to_string().ends_with("no permit within 50ms"));

        // `queue = 0` and `max_wait = Duration::ZERO` never wait: no span, no wait event.
        let error = assert_ready!(task::spawn(traced_queue_full()).poll()).unwrap_err();
        assert!(matches!(error, LimitError::QueueFull { .. }), "{error:?}");
        assert_eq!(trace.take(), [warn_line(&error, "queue_full")]);

        let error = assert_ready!(task::spawn(traced_fail_fast()).poll()).unwrap_err();
        assert!(matches!(error, LimitError::NoPermit { .. }), "{error:?}");
        assert_eq!(trace.take(), [warn_line(&error, "no_permit")]);

        // So is `try_acquire` finding no permit: it counts as rejected in `Stats` too.
        let error = REFUSING.try_acquire().unwrap_err();
        assert_eq!(trace.take(), [warn_line(&error, "no_permit")]);

        assert_eq!(REFUSING.stats().rejected, 4);
        drop(permit);
    });
}

// ---------------------------------------------------------------------------------------
// Keyed limiters and permits taken by hand
// ---------------------------------------------------------------------------------------

#[concurrency_limit(1, key = key, name = "traced-keyed")]
async fn traced_keyed(key: u32, hold: oneshot::Receiver<()>) {
    body_starts(if key == 1 { "key 1" } else { "key 2" });
    let _ = hold.await;
}

#[test]
fn a_keyed_call_is_traced_when_its_own_key_makes_it_wait() {
    traced(|trace| {
        let (release, hold) = oneshot::channel();
        let mut first = task::spawn(traced_keyed(1, hold));
        assert_pending!(first.poll());
        // Another key has its own permits: admitted at once, nothing emitted.
        let (_release_other, hold) = oneshot::channel();
        let mut other_key = task::spawn(traced_keyed(2, hold));
        assert_pending!(other_key.poll());
        assert_eq!(
            trace.take(),
            [
                "INFO body: key 1 starts {} in -",
                "INFO body: key 2 starts {} in -",
            ]
        );

        let (_release_second, hold) = oneshot::channel();
        let mut second = task::spawn(traced_keyed(1, hold));
        assert_pending!(second.poll());
        release.send(()).unwrap();
        assert_ready!(first.poll());
        assert_pending!(second.poll());
        assert_eq!(
            trace.take_without_enter_exit(),
            [
                "new concurrency_limit.wait{limiter=traced-keyed} in -",
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-keyed} \
                 in concurrency_limit.wait",
                "DEBUG limit_runtime: admitted after waiting {limiter=traced-keyed, waited=_} \
                 in concurrency_limit.wait",
                "close concurrency_limit.wait",
                "INFO body: key 1 starts {} in -",
            ]
        );
    });
}

static BY_HAND: Limiter = Limiter::new(1).with_name("traced-by-hand");

#[test]
fn limiter_acquire_that_waits_is_traced_like_a_call() {
    traced(|trace| {
        let held = BY_HAND.try_acquire().unwrap();
        let mut waiting = task::spawn(BY_HAND.acquire());
        assert_pending!(waiting.poll());
        drop(held);
        let permit = assert_ready!(waiting.poll());
        drop(permit);
        assert_eq!(
            trace.take_without_enter_exit(),
            [
                "new concurrency_limit.wait{limiter=traced-by-hand} in -",
                "DEBUG limit_runtime: waiting for a permit {limit=1, limiter=traced-by-hand} \
                 in concurrency_limit.wait",
                "DEBUG limit_runtime: admitted after waiting {limiter=traced-by-hand, waited=_} \
                 in concurrency_limit.wait",
                "close concurrency_limit.wait",
            ]
        );
    });
}

// ---------------------------------------------------------------------------------------
// Adaptive limits
// ---------------------------------------------------------------------------------------

/// The lines of the adaptive limits' events, cleared with the rest.
fn adaptive_lines(trace: &Trace) -> Vec<String> {
    trace
        .take()
        .into_iter()
        .filter(|line| line.contains("adaptive limit"))
        .collect()
}

fn says_busy(output: &Result<(), ()>) -> bool {
    output.is_err()
}

#[concurrency_limit(adaptive(initial = 4, max = 64), overloaded = says_busy, name = "traced-adaptive")]
async fn traced_adaptive(busy: bool) -> Result<(), ()> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    if busy { Err(()) } else { Ok(()) }
}

/// `count` calls at once, `busy` of them overloaded, to the end.
async fn adaptive_round(count: usize, busy: usize) {
    let calls: Vec<_> = (0..count)
        .map(|call| tokio::spawn(traced_adaptive(call < busy)))
        .collect();
    for call in calls {
        let _ = call.await.expect("no panic");
    }
}

#[test]
fn each_change_of_an_adaptive_limit_emits_a_debug_event_with_its_reason() {
    traced(|trace| {
        limit_suite::paused_runtime().block_on(async {
            // A round of 4 calls at the limit of 4, with no queue: slow start doubles it.
            adaptive_round(4, 0).await;
            assert_eq!(
                adaptive_lines(trace),
                [
                    "DEBUG limit_runtime: adaptive limit 4 -> 8 (slow start) {from=4, \
                     keyed=false, limiter=traced-adaptive, reason=slow start, to=8} in -"
                ]
            );
            // A round of 8 with one overloaded output: ×0.8.
            adaptive_round(8, 1).await;
            assert_eq!(
                adaptive_lines(trace),
                [
                    "DEBUG limit_runtime: adaptive limit 8 -> 6 (overloaded) {from=8, \
                     keyed=false, limiter=traced-adaptive, reason=overloaded, to=6} in -"
                ]
            );
        });
    });
}

#[concurrency_limit(adaptive(initial = 2, max = 64), key = key, name = "traced-adaptive-keyed")]
async fn traced_adaptive_keyed(key: u32) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::hint::black_box(key);
}

#[test]
fn a_keys_change_says_keyed() {
    traced(|trace| {
        limit_suite::paused_runtime().block_on(async {
            // The first round needs 4 calls: two at a time, under the key's 2.
            let calls: Vec<_> = (0..4)
                .map(|_| tokio::spawn(traced_adaptive_keyed(7)))
                .collect();
            for call in calls {
                call.await.expect("no panic");
            }
        });
        assert_eq!(
            adaptive_lines(trace),
            [
                "DEBUG limit_runtime: adaptive limit 2 -> 4 (slow start) {from=2, keyed=true, \
                 limiter=traced-adaptive-keyed, reason=slow start, to=4} in -"
            ]
        );
    });
}

#[concurrency_limit(adaptive, key = key, name = "traced-adaptive-forget")]
async fn traced_adaptive_forget(key: u32) {
    std::hint::black_box(key);
}

/// An adaptive limiter keeps the learned limits of up to 1024 idle keys; forgetting some
/// is not silent.
#[test]
fn forgetting_idle_keys_learned_limits_emits_a_debug_event() {
    traced(|trace| {
        for key in 0..1024 {
            assert_ready!(task::spawn(traced_adaptive_forget(key)).poll());
        }
        assert_eq!(trace.take(), Vec::<String>::new());
        // One more idle key than kept: the oldest quarter of them goes at once.
        assert_ready!(task::spawn(traced_adaptive_forget(1024)).poll());
        assert_eq!(
            trace.take(),
            [
                "DEBUG limit_runtime: adaptive limit: forgot what 257 idle keys learned (more \
                 than 1024 keys were idle) {count=257} in -"
            ]
        );
    });
}
