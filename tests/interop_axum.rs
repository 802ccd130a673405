//! `#[concurrency_limit]` functions used directly as axum handlers, on a real server.
//!
//! axum takes any `fn(extractors…) -> impl Future<Output = impl IntoResponse>` that is `Clone
//! + Send + Sync + 'static` and whose future is `Send`. The attribute turns an `async fn` into
//! exactly such a plain `fn`, so an annotated function must still be a `Handler`, with
//! extractor patterns (`State(app)`, `Path(id)`) in argument position and a body extractor
//! last. These tests bind a server to `127.0.0.1:0`, drive it with hyper-util's client, and
//! check the limit from both sides: a `Gauge` inside the handler and the limiter's own stats.
//!
//! No test relies on timing. A body waits on a `tokio::sync::Barrier` sized to the limit, so
//! the barrier opens only for a full group: the peak reaches the limit without any sleep, a
//! limiter that let one body too many in shows a peak above it, and one that let too few in
//! hangs until `HANG` turns that into a failure.
//!
//! `drain()` sees every limited call in the process, and the tests of one file run as threads
//! of one process, so every test takes the file-wide lock first (`serial_async()`) and
//! leaves nothing in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use limit_runtime::{LimitError, Limiter, concurrency_limit, drain, limiter};
use limit_suite::{Gauge, HANG, serial_async};
use tokio::net::TcpListener;
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_test::{assert_pending, task};

/// How many requests each load test sends at once.
const REQUESTS: usize = 200;

/// The limit of the handlers under load; `REQUESTS` is a multiple of it, so every barrier
/// group fills up.
const LIMIT: usize = 4;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Serves `router` on a free port of `127.0.0.1`. The server task belongs to the test's
/// runtime and ends with it.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    address
}

/// Sends one request and reads the whole response.
async fn send(
    client: HttpClient,
    method: &str,
    uri: String,
    body: String,
) -> anyhow::Result<(StatusCode, String)> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::from(body)))?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

/// Sends every request at once, each from a task of its own, and returns the responses in
/// the order of `requests`.
async fn send_all(
    requests: impl IntoIterator<Item = (&'static str, String, String)>,
) -> Vec<(StatusCode, String)> {
    let client = client();
    let mut tasks = JoinSet::new();
    for (index, (method, uri, body)) in requests.into_iter().enumerate() {
        let client = client.clone();
        tasks.spawn(async move { (index, send(client, method, uri, body).await) });
    }
    let mut responses = Vec::new();
    while let Some(joined) = timeout(HANG, tasks.join_next())
        .await
        .expect("a request hung")
    {
        let (index, response) = joined.expect("a request task panicked");
        responses.push((index, response.expect("the request failed")));
    }
    responses.sort_by_key(|(index, _)| *index);
    responses
        .into_iter()
        .map(|(_, response)| response)
        .collect()
}

// ---------------------------------------------------------------------------------------
// One limited handler under 200 concurrent requests
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Items {
    running: Arc<Gauge>,
    /// Opens for `LIMIT` bodies at a time.
    group: Arc<Barrier>,
}

/// An annotated `async fn` with `State` and `Path` extractors, used as the route's handler
/// as it stands.
#[concurrency_limit(LIMIT)]
async fn item(State(items): State<Items>, Path(id): Path<u32>) -> String {
    let _running = items.running.enter();
    items.group.wait().await;
    format!("item {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annotated_handler_holds_its_limit_under_200_concurrent_requests() {
    let _serial = serial_async().await;
    let items = Items {
        running: Arc::new(Gauge::new()),
        group: Arc::new(Barrier::new(LIMIT)),
    };
    let router = Router::new()
        .route("/items/{id}", get(item))
        .with_state(items.clone());
    let address = serve(router).await;

    let responses = send_all(
        (0..REQUESTS).map(|id| ("GET", format!("http://{address}/items/{id}"), String::new())),
    )
    .await;

    for (id, (status, body)) in responses.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "request {id}: {body}");
        assert_eq!(*body, format!("item {id}"));
    }
    assert_eq!(responses.len(), REQUESTS);
    assert_eq!(items.running.current(), 0);
    assert_eq!(
        items.running.peak(),
        LIMIT,
        "the handler's peak concurrency must be its limit exactly"
    );

    // The limiter's own view agrees. Its default name is the function's path.
    let stats = limiter("interop_axum::item")
        .expect("the handler's limiter is registered by its first call")
        .stats();
    assert_eq!(stats.limit, LIMIT);
    assert_eq!(stats.admitted, REQUESTS as u64);
    assert_eq!(stats.peak_running, LIMIT);
    assert_eq!((stats.running, stats.waiting, stats.in_flight), (0, 0, 0));
    assert_eq!(stats.rejected, 0);

    // Every response has arrived, so every handler call has ended: drain has nothing to
    // wait for.
    timeout(HANG, drain()).await.expect("drain() hung");
}

// ---------------------------------------------------------------------------------------
// drain() waits for requests still inside their handlers
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Held {
    /// Bodies wait until this is `true`.
    open: watch::Receiver<bool>,
    finished: Arc<AtomicUsize>,
}

#[concurrency_limit(2)]
async fn held(State(held): State<Held>) -> &'static str {
    let mut open = held.open.clone();
    open.wait_for(|open| *open)
        .await
        .expect("the gate's sender lives");
    held.finished.fetch_add(1, SeqCst);
    "done"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_returns_only_after_the_requests_in_their_handlers_finished() {
    const HELD: usize = 6;
    let _serial = serial_async().await;
    let (open, gate) = watch::channel(false);
    let finished = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route("/held", get(held)).with_state(Held {
        open: gate,
        finished: Arc::clone(&finished),
    });
    let address = serve(router).await;
    let requests =
        tokio::spawn(send_all((0..HELD).map(move |_| {
            ("GET", format!("http://{address}/held"), String::new())
        })));

    // Wait (without any timing assumption) until every request is inside the limited
    // handler: two hold its permits, the other four wait for one.
    timeout(HANG, async {
        loop {
            if let Some(limiter) = limiter("interop_axum::held")
                && (limiter.in_flight(), limiter.running()) == (HELD, 2)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the requests never all reached the handler");

    let mut draining = task::spawn(drain());
    assert_pending!(draining.poll(), "six handler calls are in flight");
    assert_eq!(finished.load(SeqCst), 0);

    open.send(true).expect("the handlers hold the receiver");
    timeout(HANG, draining).await.expect("drain() hung");
    // drain() returned, so every handler call had ended, including the four that were
    // waiting for a permit when it started.
    assert_eq!(finished.load(SeqCst), HELD);

    let responses = timeout(HANG, requests)
        .await
        .expect("the responses hung")
        .expect("the request task panicked");
    assert_eq!(responses, vec![(StatusCode::OK, "done".to_owned()); HELD]);
}

// ---------------------------------------------------------------------------------------
// Two routes sharing one limit
// ---------------------------------------------------------------------------------------

/// One limit for both routes below, as a database pool would be shared.
static STORE: Limiter = Limiter::new(LIMIT).with_name("store");

#[derive(Clone)]
struct Store {
    running: Arc<Gauge>,
    group: Arc<Barrier>,
}

#[concurrency_limit(limiter = STORE)]
async fn read_record(State(store): State<Store>, Path(id): Path<u32>) -> String {
    let _running = store.running.enter();
    store.group.wait().await;
    format!("record {id}")
}

/// A body extractor (`String`) comes last, and a tuple is the response.
#[concurrency_limit(limiter = STORE)]
async fn write_record(
    State(store): State<Store>,
    Path(id): Path<u32>,
    body: String,
) -> (StatusCode, String) {
    let _running = store.running.enter();
    store.group.wait().await;
    (StatusCode::CREATED, format!("record {id} = {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handlers_sharing_a_static_limiter_hold_one_limit_together() {
    let _serial = serial_async().await;
    let store = Store {
        running: Arc::new(Gauge::new()),
        group: Arc::new(Barrier::new(LIMIT)),
    };
    let router = Router::new()
        .route("/records/{id}", get(read_record).post(write_record))
        .with_state(store.clone());
    let address = serve(router).await;

    // Reads and writes interleaved, half and half.
    let responses = send_all((0..REQUESTS).map(|id| {
        let uri = format!("http://{address}/records/{id}");
        if id % 2 == 0 {
            ("GET", uri, String::new())
        } else {
            ("POST", uri, format!("v{id}"))
        }
    }))
    .await;

    for (id, response) in responses.into_iter().enumerate() {
        let expected = if id % 2 == 0 {
            (StatusCode::OK, format!("record {id}"))
        } else {
            (StatusCode::CREATED, format!("record {id} = v{id}"))
        };
        assert_eq!(response, expected, "request {id}");
    }
    assert_eq!(store.running.current(), 0);
    assert_eq!(
        store.running.peak(),
        LIMIT,
        "both routes together must reach the shared limit and never pass it"
    );
    let stats = STORE.stats();
    assert_eq!(stats.admitted, REQUESTS as u64);
    assert_eq!(stats.peak_running, LIMIT);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(
        limiter("store").as_ref().map(Limiter::name),
        Some("store"),
        "a static limiter is registered once used"
    );
    timeout(HANG, drain()).await.expect("drain() hung");
}

// ---------------------------------------------------------------------------------------
// Load shedding: a refused call becomes the handler's error response
// ---------------------------------------------------------------------------------------

/// The handler's error type: `From<LimitError>` is what `queue` and `max_wait` need, and
/// `IntoResponse` is what axum needs.
struct Busy(LimitError);

impl From<LimitError> for Busy {
    fn from(error: LimitError) -> Self {
        Self(error)
    }
}

impl IntoResponse for Busy {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, self.0.to_string()).into_response()
    }
}

/// Sheds load instead of queueing: with both permits taken, a request is answered 503 at
/// once.
#[concurrency_limit(2, queue = 0, name = "shed")]
async fn shed(State(held): State<Held>) -> Result<&'static str, Busy> {
    let mut open = held.open.clone();
    let _ = open.wait_for(|open| *open).await;
    held.finished.fetch_add(1, SeqCst);
    Ok("done")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handler_call_answers_with_the_handlers_error_response() {
    let _serial = serial_async().await;
    let (open, gate) = watch::channel(false);
    let finished = Arc::new(AtomicUsize::new(0));
    let router = Router::new().route("/shed", get(shed)).with_state(Held {
        open: gate,
        finished: Arc::clone(&finished),
    });
    let address = serve(router).await;
    let uri = format!("http://{address}/shed");
    let holding = tokio::spawn(send_all([
        ("GET", uri.clone(), String::new()),
        ("GET", uri.clone(), String::new()),
    ]));
    timeout(HANG, async {
        while limiter("shed").as_ref().map_or(0, Limiter::running) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the first two requests never got their permits");

    // Both permits are taken and no call may wait: each of these is refused at once, and
    // its body never runs.
    for _ in 0..3 {
        let refused = send(client(), "GET", uri.clone(), String::new()).await;
        assert_eq!(
            refused.expect("the request failed"),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"concurrency limit "shed" (2): no permit free, and `queue = 0` lets no call wait"#
                    .to_owned()
            )
        );
    }
    assert_eq!(finished.load(SeqCst), 0);

    open.send(true).expect("the handlers hold the receiver");
    let responses = timeout(HANG, holding)
        .await
        .expect("hung")
        .expect("panicked");
    assert_eq!(responses, vec![(StatusCode::OK, "done".to_owned()); 2]);
    let stats = limiter("shed").expect("registered").stats();
    assert_eq!((stats.admitted, stats.rejected, stats.in_flight), (2, 3, 0));
    timeout(HANG, drain()).await.expect("drain() hung");
}

// ---------------------------------------------------------------------------------------
// A key taken from an extractor
// ---------------------------------------------------------------------------------------

const USERS: usize = 3;

#[derive(Clone)]
struct PerUser {
    running: Arc<[Gauge; USERS]>,
    /// Opens for one body of each user at a time.
    group: Arc<Barrier>,
}

/// One request at a time per user, the key read from the `Path` extractor when the call is
/// made.
///
/// The argument is a plain binding, not the `Path(user)` pattern: the key is evaluated in
/// the outer `fn`, where the attribute has renamed a pattern argument to a hidden name and
/// not yet destructured it, so `key = user` with `Path(user): Path<usize>` fails with
/// "cannot find value `user` in this scope".
#[concurrency_limit(1, key = user.0, name = "per-user")]
async fn per_user(State(app): State<PerUser>, user: Path<usize>) -> String {
    let Path(user) = user;
    let _running = app.running[user].enter();
    app.group.wait().await;
    format!("user {user}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_an_extractor_limits_each_user_on_its_own() {
    const PER_USER: usize = 40;
    let _serial = serial_async().await;
    let app = PerUser {
        running: Arc::new([Gauge::new(), Gauge::new(), Gauge::new()]),
        group: Arc::new(Barrier::new(USERS)),
    };
    let router = Router::new()
        .route("/users/{user}", get(per_user))
        .with_state(app.clone());
    let address = serve(router).await;

    // The barrier opens only when every user has a body running, so the users must run side
    // by side (a single limit for all would hang), and each gauge shows whether one user
    // ever had two bodies at once.
    let responses = send_all((0..USERS * PER_USER).map(|i| {
        let user = i % USERS;
        (
            "GET",
            format!("http://{address}/users/{user}"),
            String::new(),
        )
    }))
    .await;
    for (i, response) in responses.into_iter().enumerate() {
        assert_eq!(response, (StatusCode::OK, format!("user {}", i % USERS)));
    }
    for (user, running) in app.running.iter().enumerate() {
        assert_eq!((running.current(), running.peak()), (0, 1), "user {user}");
    }
    let stats = limiter("per-user").expect("registered").stats();
    assert_eq!(stats.admitted, (USERS * PER_USER) as u64);
    assert_eq!(stats.peak_running, USERS, "the users ran side by side");
    assert_eq!((stats.in_flight, stats.active_keys), (0, 0));
    timeout(HANG, drain()).await.expect("drain() hung");
}
