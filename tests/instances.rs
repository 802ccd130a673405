//! Limits per instance: `limiter = &self.field` and `limiter = self.limits.clone()`,
//! limiters made at run time in `drain()`, `limiters()` and `stragglers()`, owned permits,
//! `track`, and `admitted()` for producers that wait their turn.
//!
//! Tests that call the process-wide `drain()` hold `serial()`, so that the calls of one do not
//! keep another's drain waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use limit_runtime::{
    LimitError, Limiter, OwnedPermit, concurrency_limit, drain, limiters, stragglers, track,
};
use limit_suite::Gauge;
use tokio::sync::oneshot;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the file-wide lock, for a test that calls the process-wide `drain()`. Not
/// `limit_suite::serial_async()`: only those tests hold it, and the others run alongside
/// with calls in flight, so its check that nothing is in flight would fail at random.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Lets a spawned task run until it waits.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------------------
// A server in mini-redis's shape: one limiter per server
// ---------------------------------------------------------------------------------------

struct Server {
    connections: Limiter,
    running: Gauge,
}

impl Server {
    fn new(name: String, limit: usize) -> Self {
        Self {
            connections: Limiter::new(limit).with_owned_name(name),
            running: Gauge::new(),
        }
    }

    #[concurrency_limit(limiter = &self.connections)]
    async fn serve(&self, hold: oneshot::Receiver<()>) -> usize {
        let _running = self.running.enter();
        let _ = hold.await;
        self.connections.running()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_instance_has_its_own_limit_and_its_own_drain() {
    let a = Arc::new(Server::new("instances/server-a".into(), 2));
    let b = Arc::new(Server::new("instances/server-b".into(), 3));
    let calls = |server: &Arc<Server>, count: usize| -> Vec<oneshot::Sender<()>> {
        (0..count)
            .map(|_| {
                let (release, hold) = oneshot::channel();
                let server = Arc::clone(server);
                tokio::spawn(async move { server.serve(hold).await });
                release
            })
            .collect()
    };
    let releases_a = calls(&a, 3);
    let releases_b = calls(&b, 4);
    settle().await;
    assert_eq!((a.running.current(), a.connections.waiting()), (2, 1));
    assert_eq!((b.running.current(), b.connections.waiting()), (3, 1));

    // Shut `a` down alone: its drain waits for its calls only, while `b`'s keep running.
    let mut drain_a = tokio_test::task::spawn(a.connections.drain());
    tokio_test::assert_pending!(drain_a.poll());
    for release in releases_a {
        let _ = release.send(());
    }
    tokio::time::timeout(Duration::from_secs(10), drain_a)
        .await
        .expect("server a drains while server b is busy");
    assert_eq!(a.connections.in_flight(), 0);
    assert_eq!(b.connections.in_flight(), 4);
    assert_eq!(a.running.peak(), 2);
    assert_eq!(a.connections.stats().admitted, 3);

    for release in releases_b {
        let _ = release.send(());
    }
    b.connections.drain().await;
    assert_eq!((b.running.peak(), b.connections.stats().admitted), (3, 4));
}

#[tokio::test(flavor = "current_thread")]
async fn a_borrowed_limiter_counts_the_call_when_it_is_made() {
    let server = Server::new("instances/counted-at-call".into(), 1);
    let (_release, hold) = oneshot::channel();
    let call = server.serve(hold);
    assert_eq!(
        server.connections.in_flight(),
        1,
        "in flight before any poll"
    );
    drop(call);
    assert_eq!(server.connections.in_flight(), 0);
}

// ---------------------------------------------------------------------------------------
// `Arc<Limiter>` with every receiver, and from arguments
// ---------------------------------------------------------------------------------------

struct Handler {
    limits: Arc<Limiter>,
    served: u32,
}

impl Handler {
    #[concurrency_limit(limiter = self.limits.clone())]
    async fn run(&mut self) -> u32 {
        tokio::task::yield_now().await;
        self.served += 1;
        self.served
    }

    #[concurrency_limit(limiter = self.limits.clone())]
    async fn into_served(self) -> u32 {
        self.served
    }

    #[concurrency_limit(limiter = self.limits.clone())]
    async fn shared(self: Arc<Self>) -> u32 {
        self.served
    }

    #[concurrency_limit(limiter = &self.limits)]
    async fn borrowed_arc(&self) -> usize {
        self.limits.running()
    }
}

#[concurrency_limit(limiter = pool)]
async fn with_borrowed(pool: &Limiter, n: u32) -> usize {
    let _ = n;
    pool.running()
}

#[concurrency_limit(limiter = pool)]
async fn with_arc(pool: Arc<Limiter>) -> usize {
    pool.running()
}

#[tokio::test(flavor = "current_thread")]
async fn an_arc_limiter_works_with_every_receiver_and_argument() {
    let limits = Arc::new(Limiter::new(2).with_name("instances/arc"));
    let mut handler = Handler {
        limits: Arc::clone(&limits),
        served: 0,
    };
    assert_eq!(handler.run().await, 1);
    assert_eq!(handler.run().await, 2);
    assert_eq!(handler.borrowed_arc().await, 1);
    assert_eq!(
        Arc::new(Handler {
            limits: Arc::clone(&limits),
            served: 7,
        })
        .shared()
        .await,
        7
    );
    assert_eq!(handler.into_served().await, 2);
    assert_eq!(with_borrowed(&limits, 1).await, 1);
    assert_eq!(with_arc(Arc::clone(&limits)).await, 1);
    assert_eq!(limits.stats().admitted, 7);
    assert_eq!(limits.in_flight(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_mut_self_handler_spawned_with_track_is_drain_correct() {
    let _serial = serial().await;
    let limits = Arc::new(Limiter::new(5).with_name("instances/handlers"));
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let mut handler = Handler {
            limits: Arc::clone(&limits),
            served: 0,
        };
        let done = Arc::clone(&done);
        // The call is made only when the task runs; `track` counts the task from here.
        tokio::spawn(track(async move {
            handler.run().await;
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    assert!(
        limits.in_flight() == 0,
        "no call made yet: the tasks have not run"
    );
    drain().await;
    assert_eq!(
        done.load(Ordering::SeqCst),
        5,
        "drain waited for every handler"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn limiter_track_counts_for_that_limiter_and_track_owned_for_an_arc() {
    static HANDLERS: Limiter = Limiter::new(1).with_name("instances/track");
    let (release, hold) = oneshot::channel::<()>();
    let task = tokio::spawn(HANDLERS.track(async move {
        let _ = hold.await;
    }));
    assert_eq!((HANDLERS.in_flight(), HANDLERS.running()), (1, 0));
    let mut draining = tokio_test::task::spawn(HANDLERS.drain());
    tokio_test::assert_pending!(draining.poll());
    release.send(()).unwrap();
    task.await.unwrap();
    draining.await;

    let shared = Arc::new(Limiter::new(1));
    let tracked = Arc::clone(&shared).track_owned(async { 5 });
    assert_eq!(shared.in_flight(), 1);
    assert_eq!(tokio::spawn(tracked).await.unwrap(), 5);
    assert_eq!(shared.in_flight(), 0);
}

// ---------------------------------------------------------------------------------------
// Instance limiters in the registry
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn the_process_wide_drain_and_stragglers_see_instance_limiters() {
    let _serial = serial().await;
    let server = Arc::new(Server::new("instances/registry".into(), 1));
    let (release, hold) = oneshot::channel();
    let call = tokio::spawn({
        let server = Arc::clone(&server);
        async move { server.serve(hold).await }
    });
    settle().await;
    let listed = limiters()
        .find(|limiter| limiter.name() == "instances/registry")
        .expect("listed while it has a call in flight");
    assert_eq!(listed.in_flight(), 1);
    assert!(
        stragglers()
            .to_string()
            .contains(r#""instances/registry" (1 in flight: 1 running, 0 waiting)"#),
        "{}",
        stragglers()
    );
    assert_eq!(
        server.connections.stats().to_string(),
        r#""instances/registry" (1 in flight: 1 running, 0 waiting)"#
    );
    drop(listed);

    let mut draining = tokio_test::task::spawn(drain());
    tokio_test::assert_pending!(draining.poll());
    release.send(()).unwrap();
    assert_eq!(call.await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(10), draining)
        .await
        .expect("the process-wide drain saw the instance limiter's call end");

    drop(server);
    assert!(
        limiters().all(|limiter| limiter.name() != "instances/registry"),
        "a dropped limiter leaves the registry"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_limiter_dropped_while_marked_busy_does_not_hold_up_the_process_wide_drain() {
    let _serial = serial().await;
    {
        let limiter = Limiter::new(1);
        drop(limiter.try_acquire().unwrap()); // marked busy, lazily, by its first call
    }
    tokio::time::timeout(Duration::from_secs(10), drain())
        .await
        .expect("a dropped limiter is not waited for");
}

// ---------------------------------------------------------------------------------------
// Owned permits
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn an_owned_permit_moves_into_a_task_and_counts_for_drain() {
    fn send_static<T: Send + 'static>(_: &T) {}

    let limiter = Arc::new(Limiter::new(1).with_name("instances/owned"));
    let permit: OwnedPermit = Arc::clone(&limiter).acquire_owned().await;
    send_static(&permit);
    assert!(matches!(
        Arc::clone(&limiter).try_acquire_owned(),
        Err(LimitError::NoPermit { limit: 1, .. })
    ));
    assert_eq!(permit.limiter().name(), "instances/owned");
    let (release, hold) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _permit = permit;
        let _ = hold.await;
    });
    let mut draining = tokio_test::task::spawn(limiter.drain());
    tokio_test::assert_pending!(draining.poll());
    release.send(()).unwrap();
    draining.await;
    assert_eq!((limiter.running(), limiter.in_flight()), (0, 0));
    assert!(limiter.try_acquire().is_ok());
}

// ---------------------------------------------------------------------------------------
// Producers that wait their turn: `admitted()`
// ---------------------------------------------------------------------------------------

static ORDER: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static JOBS_ALIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts the calls of `job` that exist (made and not dropped), as a producer holds them.
struct Alive;

impl Alive {
    fn new() -> Self {
        JOBS_ALIVE.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        JOBS_ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[concurrency_limit(1)]
async fn job(id: u32, _alive: Alive) {
    ORDER.lock().unwrap().push(id);
    tokio::task::yield_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_runs_spawned_calls_in_input_order_and_bounds_the_producer() {
    let _serial = serial().await;
    let mut most_alive = 0;
    for id in 0..8 {
        let call = job(id, Alive::new()).admitted().await;
        most_alive = most_alive.max(JOBS_ALIVE.load(Ordering::SeqCst));
        tokio::spawn(call);
    }
    drain().await;
    assert_eq!(*ORDER.lock().unwrap(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert!(
        most_alive <= 2,
        "the producer held {most_alive} calls at once; limit + 1 is 2"
    );
    assert_eq!(JOBS_ALIVE.load(Ordering::SeqCst), 0);
}

#[concurrency_limit(1, max_wait = Duration::ZERO)]
async fn impatient(n: u32) -> Result<u32, LimitError> {
    Ok(n)
}

#[tokio::test(flavor = "current_thread")]
async fn admitted_honours_max_wait_and_a_refused_call_returns_its_error_unrun() {
    let first = impatient(1).admitted().await;
    let refused = impatient(2).admitted().await;
    assert!(matches!(refused.await, Err(LimitError::NoPermit { .. })));
    assert_eq!(first.await.unwrap(), 1);
    assert_eq!(impatient(3).admitted().await.await.unwrap(), 3);
}

#[concurrency_limit(2, key = tenant)]
async fn per_tenant(tenant: u32) -> u32 {
    tenant
}

#[tokio::test(flavor = "current_thread")]
async fn admitted_takes_the_permit_of_the_calls_key() {
    let a = per_tenant(1).admitted().await;
    let b = per_tenant(1).admitted().await;
    let other = per_tenant(2).admitted().await; // another key: not held up by key 1
    let mut third = tokio_test::task::spawn(per_tenant(1).admitted());
    tokio_test::assert_pending!(third.poll(), "key 1 has both its permits out");
    assert_eq!((a.await, other.await), (1, 2));
    let third = third.await;
    assert_eq!((b.await, third.await), (1, 1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_limited_future_awaited_directly_behaves_as_before() {
    let server = Server::new("instances/direct".into(), 1);
    let (release, hold) = oneshot::channel();
    release.send(()).unwrap();
    assert_eq!(server.serve(hold).await, 1);
}

#[concurrency_limit(2)]
async fn step(id: u32) -> u32 {
    tokio::task::yield_now().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_waits_its_turn_can_itself_be_spawned() {
    let _serial = serial().await;
    // The producer's own future holds `admitted()` across an await: it must be `Send`.
    let producer = tokio::spawn(async {
        let mut calls = Vec::new();
        for id in 0..10 {
            calls.push(tokio::spawn(step(id).admitted().await));
        }
        let mut done = Vec::new();
        for call in calls {
            done.push(call.await.unwrap());
        }
        done
    });
    assert_eq!(producer.await.unwrap(), (0..10).collect::<Vec<_>>());
}
