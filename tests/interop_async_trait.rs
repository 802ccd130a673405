//! `#[concurrency_limit]` in `#[async_trait]` impls, the way tonic services use async-trait:
//! `#[async_trait] trait Service { async fn call(&self, req: Request) -> Result<Response,
//! Status>; }`, implemented by a struct and called through `Arc<dyn Service>`.
//!
//! The order that works: `#[async_trait]` on the impl block, `#[concurrency_limit]` on the
//! method inside it. The impl's attribute expands first, so the method reaches
//! `#[concurrency_limit]` already rewritten to a plain `fn` returning
//! `Pin<Box<dyn Future + Send + 'async_trait>>`, and the attribute limits the boxed block. The
//! other placements are compile errors, whichever of the two attributes comes first: on the
//! impl block ("can only be applied to an `async fn`"), and on the trait's declaration
//! without a body ("put it on the `async fn` in the `impl` block").
//!
//! The `Request`, `Response` and `Status` types below stand in for tonic's; `Status` converts
//! from `LimitError` the way a real service would map it to `RESOURCE_EXHAUSTED`.
//!
//! No test relies on timing. Bodies wait on a `tokio::sync::Barrier` sized to the limit, so
//! the peak reaches the limit without sleeping, and passes it only if the limiter lets one
//! body too many in. `drain()` sees every limited call in the process, and the tests of one
//! file run as threads of one process, so every test takes the file-wide lock first
//! (`serial()`, `serial_async()`) and leaves nothing in flight.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use limit_runtime::{LimitError, concurrency_limit, drain, limiter};
use limit_suite::{Gauge, HANG, serial, serial_async};
use tokio::sync::{Barrier, watch};
use tokio::task::{JoinSet, LocalSet};
use tokio::time::timeout;
use tokio_test::{assert_pending, assert_ready, task};

/// The limit of the services under load.
const LIMIT: usize = 4;

// ---------------------------------------------------------------------------------------
// tonic-like types
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    id: u32,
    tenant: &'static str,
}

fn request(id: u32) -> Request {
    Request {
        id,
        tenant: "default",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    id: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    ResourceExhausted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    code: Code,
    message: String,
}

/// What `max_wait` and `queue` need: the refused call returns `Err(Status::from(error))`.
impl From<LimitError> for Status {
    fn from(error: LimitError) -> Self {
        Self {
            code: Code::ResourceExhausted,
            message: error.to_string(),
        }
    }
}

#[async_trait]
trait Service: Send + Sync {
    async fn call(&self, request: Request) -> Result<Response, Status>;
}

// ---------------------------------------------------------------------------------------
// The limit holds through `Arc<dyn Service>`
// ---------------------------------------------------------------------------------------

struct Greeter {
    running: Gauge,
    /// Opens for `LIMIT` bodies at a time.
    group: Barrier,
}

impl Greeter {
    fn new() -> Self {
        Self {
            running: Gauge::new(),
            group: Barrier::new(LIMIT),
        }
    }
}

#[async_trait]
impl Service for Greeter {
    #[concurrency_limit(LIMIT, name = "greeter")]
    async fn call(&self, request: Request) -> Result<Response, Status> {
        let _running = self.running.enter();
        self.group.wait().await;
        Ok(Response { id: request.id })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_for_many_concurrent_calls_through_arc_dyn_service() {
    const CALLS: u32 = 100; // a multiple of LIMIT, so every barrier group fills up
    let _serial = serial_async().await;
    let greeter = Arc::new(Greeter::new());
    let service: Arc<dyn Service> = greeter.clone();

    // As a tonic server does: each request is a task holding a clone of the service.
    let mut calls = JoinSet::new();
    for id in 0..CALLS {
        let service = Arc::clone(&service);
        calls.spawn(async move { service.call(request(id)).await });
    }
    let mut served = Vec::new();
    while let Some(joined) = timeout(HANG, calls.join_next()).await.expect("hung") {
        served.push(joined.expect("a call panicked").expect("a call failed").id);
    }
    served.sort_unstable();
    assert_eq!(served, (0..CALLS).collect::<Vec<_>>());

    assert_eq!(greeter.running.current(), 0);
    assert_eq!(
        greeter.running.peak(),
        LIMIT,
        "the peak of bodies running at once must be the limit exactly"
    );
    let stats = limiter("greeter").expect("registered").stats();
    assert_eq!((stats.admitted, stats.peak_running), (CALLS.into(), LIMIT));
    timeout(HANG, drain()).await.expect("drain() hung");
}

// ---------------------------------------------------------------------------------------
// Call-time counting through the trait object
// ---------------------------------------------------------------------------------------

struct Gated {
    /// Bodies wait until this is `true`.
    open: watch::Receiver<bool>,
    finished: AtomicUsize,
}

#[async_trait]
impl Service for Gated {
    #[concurrency_limit(2, name = "gated")]
    async fn call(&self, request: Request) -> Result<Response, Status> {
        let mut open = self.open.clone();
        // A dropped sender opens the gate too.
        let _ = open.wait_for(|open| *open).await;
        self.finished.fetch_add(1, SeqCst);
        Ok(Response { id: request.id })
    }
}

#[test]
fn drain_waits_for_a_call_made_through_dyn_service_but_not_yet_polled() {
    let _serial = serial();
    let (_open, gate) = watch::channel(true);
    let gated = Gated {
        open: gate,
        finished: AtomicUsize::new(0),
    };
    let service: &dyn Service = &gated;

    let call = service.call(request(7));
    // Made, never polled: `#[async_trait]`'s boxed future has not started, yet the call
    // counts, because the attribute registers it in the plain `fn` that builds the box.
    let limiter = limiter("gated").expect("registered by the call");
    assert_eq!(
        (limiter.in_flight(), limiter.running(), limiter.waiting()),
        (1, 0, 0)
    );
    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll(), "a call made and not polled is in flight");

    let mut call = task::spawn(call);
    assert_eq!(assert_ready!(call.poll()), Ok(Response { id: 7 }));
    assert!(draining.is_woken(), "the last call out wakes the drain");
    assert_ready!(draining.poll());

    // A call made and dropped unpolled stops counting at once.
    let dropped = service.call(request(8));
    assert_eq!(limiter.in_flight(), 1);
    drop(dropped);
    assert_eq!(limiter.in_flight(), 0);
    assert_ready!(task::spawn(drain()).poll());
    assert_eq!(gated.finished.load(SeqCst), 1);
}

/// A service with a `'static` address, so its calls' futures are `'static` and can be
/// spawned as they are, the call made on the spawning line.
static SPAWNED: LazyLock<Gated> = LazyLock::new(|| Gated {
    // The sender is dropped here, which opens the gate for good.
    open: watch::channel(true).1,
    finished: AtomicUsize::new(0),
});

#[tokio::test(flavor = "current_thread")]
async fn drain_waits_for_spawned_dyn_service_calls_that_have_not_started() {
    const CALLS: usize = 20;
    let _serial = serial_async().await;
    let service: &'static dyn Service = &*SPAWNED;
    for id in 0..CALLS {
        // On a current-thread runtime no spawned task runs before this task yields, which
        // it first does inside drain(): if a call counted only from its first poll, drain
        // would find nothing in flight and return before any body ran.
        tokio::spawn(service.call(request(id as u32)));
    }
    timeout(HANG, drain()).await.expect("drain() hung");
    assert_eq!(SPAWNED.finished.load(SeqCst), CALLS);
}

// ---------------------------------------------------------------------------------------
// max_wait with a tonic-like Status
// ---------------------------------------------------------------------------------------

struct Strict {
    open: watch::Receiver<bool>,
}

#[async_trait]
impl Service for Strict {
    /// Fails fast instead of queueing, as a service shedding load would.
    #[concurrency_limit(1, max_wait = Duration::ZERO, name = "strict")]
    async fn call(&self, request: Request) -> Result<Response, Status> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
        Ok(Response { id: request.id })
    }
}

#[test]
fn a_refused_call_returns_the_services_own_error_type() {
    let _serial = serial();
    let (open, gate) = watch::channel(false);
    let service: Arc<dyn Service> = Arc::new(Strict { open: gate });

    let mut first = task::spawn(service.call(request(1)));
    assert_pending!(first.poll(), "the first call holds the only permit");
    let mut second = task::spawn(service.call(request(2)));
    let refused = assert_ready!(second.poll()).expect_err("no permit is free");
    assert_eq!(refused.code, Code::ResourceExhausted);
    assert_eq!(
        refused.message,
        r#"concurrency limit "strict" (1): no permit free, and the call may not wait"#
    );

    open.send(true).expect("the body holds the receiver");
    assert!(first.is_woken());
    assert_eq!(assert_ready!(first.poll()), Ok(Response { id: 1 }));
    let stats = limiter("strict").expect("registered").stats();
    assert_eq!((stats.admitted, stats.rejected, stats.in_flight), (1, 1, 0));
}

// ---------------------------------------------------------------------------------------
// A key from the receiver and the request, inside an `#[async_trait]` impl
// ---------------------------------------------------------------------------------------

struct Regional {
    region: &'static str,
    open: watch::Receiver<bool>,
}

#[async_trait]
impl Service for Regional {
    /// One call at a time per region and tenant. The key is evaluated in the `fn` that
    /// `#[async_trait]` produced, where `self` and `request` are still the method's own
    /// parameters, before they move into the boxed block.
    #[concurrency_limit(
        1,
        key = (self.region, request.tenant),
        max_wait = Duration::ZERO,
        name = "regional"
    )]
    async fn call(&self, request: Request) -> Result<Response, Status> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
        Ok(Response { id: request.id })
    }
}

#[test]
fn a_key_may_read_the_receiver_and_the_arguments_of_an_async_trait_method() {
    let _serial = serial();
    let (open, gate) = watch::channel(false);
    let service: Arc<dyn Service> = Arc::new(Regional {
        region: "eu",
        open: gate,
    });
    let for_tenant = |id, tenant| Request { id, tenant };

    let mut first = task::spawn(service.call(for_tenant(1, "acme")));
    assert_pending!(first.poll(), "runs, holding acme's only permit");
    let mut other_tenant = task::spawn(service.call(for_tenant(2, "globex")));
    assert_pending!(
        other_tenant.poll(),
        "runs too: another tenant, another limit"
    );
    let refused = assert_ready!(task::spawn(service.call(for_tenant(3, "acme"))).poll());
    assert_eq!(
        refused.expect_err("acme's permit is taken").code,
        Code::ResourceExhausted
    );
    assert_eq!(
        limiter("regional").expect("registered").stats().active_keys,
        2
    );

    open.send(true).expect("the bodies hold the receiver");
    assert_eq!(assert_ready!(first.poll()), Ok(Response { id: 1 }));
    assert_eq!(assert_ready!(other_tenant.poll()), Ok(Response { id: 2 }));
    let stats = limiter("regional").expect("registered").stats();
    assert_eq!(
        (
            stats.admitted,
            stats.rejected,
            stats.in_flight,
            stats.active_keys
        ),
        (2, 1, 0, 0)
    );
}

// ---------------------------------------------------------------------------------------
// `#[async_trait(?Send)]`, with a body that is not `Send`, on a LocalSet
// ---------------------------------------------------------------------------------------

#[async_trait(?Send)]
trait LocalService {
    async fn call(&self, request: Request) -> Result<Response, Status>;
}

struct LocalGreeter {
    /// `Rc<RefCell<…>>` held across an await makes the body's future `!Send`, so only a
    /// `?Send` trait can return it.
    seen: Rc<RefCell<Vec<u32>>>,
    running: Gauge,
    group: Barrier,
}

#[async_trait(?Send)]
impl LocalService for LocalGreeter {
    #[concurrency_limit(LIMIT, name = "local-greeter")]
    async fn call(&self, request: Request) -> Result<Response, Status> {
        let _running = self.running.enter();
        let seen = Rc::clone(&self.seen);
        self.group.wait().await;
        seen.borrow_mut().push(request.id);
        Ok(Response { id: request.id })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_question_send_impl_with_a_non_send_body_holds_its_limit_and_drains_on_a_local_set() {
    const CALLS: u32 = 40; // a multiple of LIMIT, so every barrier group fills up
    let _serial = serial_async().await;
    // Leaked so that its calls' futures are `'static` and can be handed to `spawn_local`
    // as they are (made on the spawning line); one small value per test run.
    let greeter: &'static LocalGreeter = Box::leak(Box::new(LocalGreeter {
        seen: Rc::new(RefCell::new(Vec::new())),
        running: Gauge::new(),
        group: Barrier::new(LIMIT),
    }));
    let service: &'static dyn LocalService = greeter;

    LocalSet::new()
        .run_until(async {
            for id in 0..CALLS {
                tokio::task::spawn_local(service.call(request(id)));
            }
            let stats = limiter("local-greeter").expect("registered").stats();
            assert_eq!(
                (stats.in_flight, stats.running),
                (CALLS as usize, 0),
                "every call counts from the spawning line, before any task ran"
            );
            timeout(HANG, drain()).await.expect("drain() hung");
        })
        .await;

    let mut seen = greeter.seen.borrow().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..CALLS).collect::<Vec<_>>(), "drain waited for all");
    assert_eq!(greeter.running.current(), 0);
    assert_eq!(greeter.running.peak(), LIMIT);
    let stats = limiter("local-greeter").expect("registered").stats();
    assert_eq!((stats.admitted, stats.peak_running), (CALLS.into(), LIMIT));
}
