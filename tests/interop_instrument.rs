//! `#[tracing::instrument]` above and below `#[concurrency_limit]`: both orders compile, keep
//! the limit, count the call from the moment it is made, and record one span per call.
//!
//! They differ in what the span covers, because attributes expand outermost first:
//!
//! - **`#[instrument]` above**: `instrument` sees an `async fn` and moves its body into an
//!   instrumented block; `#[concurrency_limit]` then wraps that whole body, span included,
//!   behind the permit. The span is created only once the call is admitted, so it covers the
//!   body's run and not the wait for a permit; a call still waiting has no span yet.
//! - **`#[instrument]` below**: `#[concurrency_limit]` has already turned the function into a
//!   plain `fn` ending in `async move { admit; body }`, and `instrument` recognises that shape
//!   (as it does for `#[async_trait]`'s) and instruments the whole async block. The span is
//!   created at the first poll, and it is entered while the call waits for its permit, so
//!   waiting time shows up in the span.
//!
//! In neither order does an unpolled call have a span: the span is created inside the async
//! block, while the call is registered in the plain `fn` before it.
//!
//! Each test installs its own recording subscriber for its own thread
//! (`tracing::subscriber::set_default`) and runs its calls on that thread (a current-thread
//! runtime, or futures polled by hand), so tests running in parallel cannot see each other's
//! spans. None calls `drain()`, and every test has its own functions, so each has its own
//! limiter.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::join_all;
use limit_runtime::concurrency_limit;
use limit_suite::{Gauge, limiter_of};
use tokio::sync::{Barrier, oneshot};
use tokio_test::{assert_pending, assert_ready, task};
use tracing::span::{Attributes, Id};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The limit of the functions under load.
const LIMIT: usize = 3;

/// Calls made of each function under load: a multiple of `LIMIT`, so every barrier group
/// fills up.
const CALLS: u32 = 12;

// ---------------------------------------------------------------------------------------
// A layer that records what happens to spans
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    New,
    Enter,
    Close,
    /// An event, with the name of the span it happened in.
    Event(Option<&'static str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    what: What,
    /// The span's name (for an event: the event's metadata name).
    name: &'static str,
    /// The span's id, to tell two calls of one function apart (0 for an event).
    span: u64,
}

/// Everything the recorder saw, in order.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<Record>>>);

impl Records {
    fn push(&self, what: What, name: &'static str, span: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Record { what, name, span });
    }

    fn all(&self) -> Vec<Record> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times `what` happened to spans named `name`.
    fn count(&self, what: What, name: &str) -> usize {
        self.all()
            .iter()
            .filter(|record| record.what == what && record.name == name)
            .count()
    }

    /// How many times the span `span` was entered.
    fn entered(&self, span: u64) -> usize {
        self.all()
            .iter()
            .filter(|record| record.what == What::Enter && record.span == span)
            .count()
    }

    /// The id of each span named `name`, in the order they were created.
    fn spans(&self, name: &str) -> Vec<u64> {
        self.all()
            .iter()
            .filter(|record| record.what == What::New && record.name == name)
            .map(|record| record.span)
            .collect()
    }
}

struct Recorder(Records);

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        self.0
            .push(What::New, attrs.metadata().name(), id.into_u64());
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            self.0.push(What::Enter, span.name(), id.into_u64());
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            self.0.push(What::Close, span.name(), id.into_u64());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let parent = ctx.event_span(event).map(|span| span.name());
        self.0.push(What::Event(parent), event.metadata().name(), 0);
    }
}

/// Records every span and event of this thread until the guard is dropped.
fn record() -> (Records, DefaultGuard) {
    let records = Records::default();
    let subscriber = tracing_subscriber::registry().with(Recorder(records.clone()));
    (records, tracing::subscriber::set_default(subscriber))
}

// ---------------------------------------------------------------------------------------
// Both orders keep the limit and record a span per call
// ---------------------------------------------------------------------------------------

static ABOVE: Gauge = Gauge::new();
static BELOW: Gauge = Gauge::new();

/// `#[instrument]` above: the span is created once the call holds its permit.
#[tracing::instrument(skip(group))]
#[concurrency_limit(LIMIT)]
async fn traced_above(n: u32, group: Arc<Barrier>) -> u32 {
    let _running = ABOVE.enter();
    group.wait().await;
    tracing::info!(n, "inside");
    n
}

/// `#[instrument]` below: the span is created at the first poll, before the permit.
#[concurrency_limit(LIMIT)]
#[tracing::instrument(skip(group), ret)]
async fn traced_below(n: u32, group: Arc<Barrier>) -> u32 {
    let _running = BELOW.enter();
    group.wait().await;
    tracing::info!(n, "inside");
    n
}

#[tokio::test(flavor = "current_thread")]
async fn instrument_above_the_attribute_keeps_the_limit_and_records_a_span_per_call() {
    let (records, _default) = record();
    let group = Arc::new(Barrier::new(LIMIT));
    let results = join_all((0..CALLS).map(|n| traced_above(n, Arc::clone(&group)))).await;
    assert_eq!(results, (0..CALLS).collect::<Vec<_>>());

    assert_eq!((ABOVE.current(), ABOVE.peak()), (0, LIMIT));
    assert_eq!(
        limiter_of("interop_instrument::traced_above")
            .stats()
            .peak_running,
        LIMIT
    );
    let calls = CALLS as usize;
    assert_eq!(records.count(What::New, "traced_above"), calls);
    assert_eq!(records.count(What::Close, "traced_above"), calls);
    assert!(records.count(What::Enter, "traced_above") >= calls);
    // The body's events happen inside the call's span.
    let inside = records
        .all()
        .into_iter()
        .filter(|record| record.what == What::Event(Some("traced_above")))
        .count();
    assert_eq!(inside, calls);
}

#[tokio::test(flavor = "current_thread")]
async fn instrument_below_the_attribute_keeps_the_limit_and_records_a_span_per_call() {
    let (records, _default) = record();
    let group = Arc::new(Barrier::new(LIMIT));
    let results = join_all((0..CALLS).map(|n| traced_below(n, Arc::clone(&group)))).await;
    assert_eq!(results, (0..CALLS).collect::<Vec<_>>());

    assert_eq!((BELOW.current(), BELOW.peak()), (0, LIMIT));
    assert_eq!(
        limiter_of("interop_instrument::traced_below")
            .stats()
            .peak_running,
        LIMIT
    );
    let calls = CALLS as usize;
    assert_eq!(records.count(What::New, "traced_below"), calls);
    assert_eq!(records.count(What::Close, "traced_below"), calls);
    assert!(records.count(What::Enter, "traced_below") >= calls);
    // The body's `info!` and the `ret` event, both inside the call's span.
    let inside = records
        .all()
        .into_iter()
        .filter(|record| record.what == What::Event(Some("traced_below")))
        .count();
    assert_eq!(inside, 2 * calls);
}

// ---------------------------------------------------------------------------------------
// What the span covers, order by order
// ---------------------------------------------------------------------------------------

static HELD_ABOVE: Gauge = Gauge::new();
static HELD_BELOW: Gauge = Gauge::new();

#[tracing::instrument(skip(gate))]
#[concurrency_limit(1)]
async fn held_above(n: u32, gate: oneshot::Receiver<()>) -> u32 {
    let _running = HELD_ABOVE.enter();
    let _ = gate.await;
    n
}

#[concurrency_limit(1)]
#[tracing::instrument(skip(gate))]
async fn held_below(n: u32, gate: oneshot::Receiver<()>) -> u32 {
    let _running = HELD_BELOW.enter();
    let _ = gate.await;
    n
}

#[test]
fn instrument_above_creates_the_span_only_once_the_call_is_admitted() {
    let (records, _default) = record();
    let (open_first, first_gate) = oneshot::channel();
    let (open_second, second_gate) = oneshot::channel();

    let first = held_above(1, first_gate);
    let second = held_above(2, second_gate);
    // Both calls are made and counted; neither has a span yet.
    assert_eq!(limiter_of("interop_instrument::held_above").in_flight(), 2);
    assert_eq!(records.count(What::New, "held_above"), 0);

    let mut first = task::spawn(first);
    let mut second = task::spawn(second);
    assert_pending!(first.poll());
    assert_eq!(HELD_ABOVE.current(), 1, "the first call runs its body");
    assert_pending!(second.poll());
    assert_eq!(limiter_of("interop_instrument::held_above").waiting(), 1);
    assert_eq!(
        records.count(What::New, "held_above"),
        1,
        "the waiting call has no span: the span starts after admission"
    );

    open_first.send(()).unwrap();
    assert_eq!(assert_ready!(first.poll()), 1);
    assert!(second.is_woken());
    assert_pending!(second.poll());
    assert_eq!(
        records.count(What::New, "held_above"),
        2,
        "admitted: now a span"
    );
    open_second.send(()).unwrap();
    assert_eq!(assert_ready!(second.poll()), 2);
    assert_eq!(records.count(What::Close, "held_above"), 2);
    assert_eq!(HELD_ABOVE.peak(), 1);
}

#[test]
fn instrument_below_creates_the_span_at_the_first_poll_and_enters_it_while_waiting() {
    let (records, _default) = record();
    let (open_first, first_gate) = oneshot::channel();
    let (open_second, second_gate) = oneshot::channel();

    let first = held_below(1, first_gate);
    let second = held_below(2, second_gate);
    // Both calls are made and counted; neither has a span yet: it is created inside the
    // async block, and the call is registered before it.
    assert_eq!(limiter_of("interop_instrument::held_below").in_flight(), 2);
    assert_eq!(records.count(What::New, "held_below"), 0);

    let mut first = task::spawn(first);
    let mut second = task::spawn(second);
    assert_pending!(first.poll());
    assert_eq!(HELD_BELOW.current(), 1, "the first call runs its body");
    assert_pending!(second.poll());
    assert_eq!(limiter_of("interop_instrument::held_below").waiting(), 1);
    let spans = records.spans("held_below");
    assert_eq!(
        spans.len(),
        2,
        "the waiting call has a span already: the span covers the wait"
    );
    assert_eq!(
        records.entered(spans[1]),
        1,
        "the waiting call's span was entered while it polled for a permit"
    );
    assert_eq!(
        HELD_BELOW.current(),
        1,
        "the second call is not in its body yet"
    );

    open_first.send(()).unwrap();
    assert_eq!(assert_ready!(first.poll()), 1);
    assert!(second.is_woken());
    assert_pending!(second.poll());
    assert_eq!(
        records.spans("held_below"),
        spans,
        "no new span once admitted"
    );
    assert_eq!(records.entered(spans[1]), 2);
    open_second.send(()).unwrap();
    assert_eq!(assert_ready!(second.poll()), 2);
    assert_eq!(records.count(What::Close, "held_below"), 2);
    assert_eq!(HELD_BELOW.peak(), 1);
}
