//! An adaptive limit following a downstream whose capacity changes while it runs.
//!
//! Run it with `cargo run --example adaptive` (about 11 s). It needs no network: it starts a
//! small HTTP server (axum) on `127.0.0.1`, which serves at most `capacity` requests at once,
//! each in `SERVICE` (100 ms), and queues the rest; it answers 503 at once when its queue is
//! longer than `QUEUE_PER_SLOT` requests per slot. Its capacity goes 40 → 10 → 40 at fixed
//! moments (`PHASES`). No client is told the capacity; they find it through
//!
//! ```ignore
//! #[concurrency_limit(adaptive(max = 200), name = "api", overloaded = is_overloaded)]
//! async fn get(client: &HttpClient, uri: Uri) -> Result<(), ApiError> { … }
//! ```
//!
//! called in a loop by `WORKERS` (300) tasks, far more than the server can take: the limit,
//! not the number of callers, decides how many requests the server sees at once.
//!
//! - `adaptive(max = 200)`: the limit starts at 4 and doubles each round trip while the
//!   response time stays at its baseline (slow start), then settles where the response time
//!   is about 1.3× its baseline. With a server that queues what it cannot serve, that is
//!   about 1.3× its capacity: around 52 while it serves 40 at once, around 13 while it
//!   serves 10. The short queue that this keeps at the server is what keeps it busy.
//! - `overloaded = is_overloaded`: a 503 is a drop, and a round with drops backs the limit
//!   off by ×0.8 at once, without waiting for the response times to tell.
//! - Once right after slow start (to drain what it overshot) and then every 10 s, the
//!   controller halves its limit for about two round trips, to measure the baseline again
//!   (its state shows `probe`).
//!
//! A drop of the capacity is followed within a few round trips (the response times and the
//! 503s both say so at once); a rise takes longer, about ten round trips, as the limit has to
//! probe upwards to see it.
//!
//! A reporter prints a line every 250 ms: the server's capacity at that moment, the limit
//! (`limit_runtime::limiter("api").limit()`), as a number and as a bar against the
//! capacity, the requests served and refused per second, and the response times of the
//! requests served in that interval. At the end the example checks what the timeline shows
//! (the limit went up with the capacity and down with it, and the controller counted every
//! call and every 503), with wide margins, so that a loaded CI machine passes it and a
//! limit that stops following its downstream does not.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use limit_runtime::{AdaptiveStats, concurrency_limit, limiter};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until};

/// How long the server takes to serve one request, once it has a slot for it. The controller
/// reads every millisecond above its baseline as queueing, and on a loaded machine the
/// scheduler adds some of its own (the client and the server share this process): long
/// requests keep that noise a small fraction of a round trip. (At 20 ms, a busy 2-core
/// machine could hold the limit below the capacity.)
const SERVICE: Duration = Duration::from_millis(100);

/// The server's capacity (requests served at once) from each moment on: high, low, high.
const PHASES: [(Duration, usize); 3] = [
    (Duration::ZERO, 40),
    (Duration::from_secs(4), 10),
    (Duration::from_secs(8), 40),
];

/// The highest capacity in `PHASES`: the server's semaphore has this many permits, and a
/// lower capacity keeps the rest reserved.
const MAX_CAPACITY: usize = 40;

/// The server answers 503 rather than queue more than this many requests per slot.
const QUEUE_PER_SLOT: usize = 2;

/// The whole run: the last phase lasts 3 s.
const RUN: Duration = Duration::from_secs(11);

/// The callers: far more than the limit ever is, so that the limit alone decides.
const WORKERS: usize = 300;

/// One line of the timeline.
const TICK: Duration = Duration::from_millis(250);

/// A phase's first second is left out of its mean: the time the limit takes to get there.
const SETTLE: Duration = Duration::from_secs(1);

/// The whole example must finish well within this.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The limited function: the client's one call to the API
// ---------------------------------------------------------------------------------------

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Why a call failed.
#[derive(Debug)]
enum ApiError {
    /// The server answered 503: it is overloaded. `is_overloaded` tells the limiter.
    Overloaded,
    /// Anything else; the example expects none.
    Failed(Box<dyn Error + Send + Sync>),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overloaded => f.write_str("the server is overloaded (503)"),
            Self::Failed(error) => write!(f, "request failed: {error}"),
        }
    }
}

impl Error for ApiError {}

/// Which outputs count as drops for the adaptive limit: a 503, not a broken connection
/// (which says nothing about the server's load).
fn is_overloaded(result: &Result<(), ApiError>) -> bool {
    matches!(result, Err(ApiError::Overloaded))
}

/// `GET uri`, with the adaptive limit named "api". The controller's sample is this body's
/// duration, from admission to return: the server's response time, without the time spent
/// waiting for the limiter.
#[concurrency_limit(adaptive(max = 200), name = "api", overloaded = is_overloaded)]
async fn get(client: &HttpClient, uri: Uri) -> Result<(), ApiError> {
    let started = Instant::now();
    let response = client
        .get(uri)
        .await
        .map_err(|error| ApiError::Failed(error.into()))?;
    let status = response.status();
    // Read the body to its end, so that the connection goes back to the pool.
    response
        .into_body()
        .collect()
        .await
        .map_err(|error| ApiError::Failed(error.into()))?;
    match status {
        StatusCode::OK => {
            CLIENT.record_served(started.elapsed());
            Ok(())
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            CLIENT.refused.fetch_add(1, SeqCst);
            Err(ApiError::Overloaded)
        }
        other => Err(ApiError::Failed(
            format!("unexpected status {other}").into(),
        )),
    }
}

/// What the client saw, for the timeline and the final checks.
struct ClientCounts {
    served: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    /// The response times of the requests served since the reporter last looked.
    latencies: Mutex<Vec<Duration>>,
}

static CLIENT: ClientCounts = ClientCounts {
    served: AtomicU64::new(0),
    refused: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    latencies: Mutex::new(Vec::new()),
};

impl ClientCounts {
    fn record_served(&self, latency: Duration) {
        self.served.fetch_add(1, SeqCst);
        self.latencies.lock().unwrap().push(latency);
    }
}

// ---------------------------------------------------------------------------------------
// The server: at most `capacity` requests at once, a queue, 503 when the queue is too long
// ---------------------------------------------------------------------------------------

struct Server {
    /// `MAX_CAPACITY` permits, of which `reserve` holds those above the capacity.
    slots: Arc<Semaphore>,
    /// The capacity now, for the 503 rule and the timeline.
    capacity: AtomicUsize,
    /// Requests waiting for a slot.
    queued: AtomicUsize,
    /// Requests being served or queued.
    inside: AtomicUsize,
}

/// Counts a request in `counter` until it is dropped, so that a request whose connection
/// goes away mid-way is counted out too.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, SeqCst);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

async fn serve(State(server): State<Arc<Server>>) -> StatusCode {
    let _inside = Counted::new(&server.inside);
    let queued = Counted::new(&server.queued);
    if server.queued.load(SeqCst) > QUEUE_PER_SLOT * server.capacity.load(SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let _slot = server
        .slots
        .acquire()
        .await
        .expect("the semaphore is never closed");
    drop(queued);
    sleep(SERVICE).await;
    StatusCode::OK
}

/// Changes the server's capacity at the moments of `PHASES`, by holding the permits above
/// it. Lowering it waits for that many requests to finish (it revokes none).
async fn follow_phases(server: Arc<Server>, started: Instant) {
    let mut reserve: Option<OwnedSemaphorePermit> = None;
    for (at, capacity) in PHASES {
        sleep_until(started + at).await;
        server.capacity.store(capacity, SeqCst);
        drop(reserve.take());
        let reserved = u32::try_from(MAX_CAPACITY - capacity).expect("a small capacity");
        if reserved > 0 {
            let permits = Arc::clone(&server.slots).acquire_many_owned(reserved);
            reserve = Some(permits.await.expect("the semaphore is never closed"));
        }
    }
    // The last phase's reserve, if any, is held until the run ends.
    sleep_until(started + RUN).await;
}

fn capacity_at(elapsed: Duration) -> usize {
    PHASES
        .iter()
        .rev()
        .find(|(at, _)| *at <= elapsed)
        .map_or(PHASES[0].1, |&(_, capacity)| capacity)
}

// ---------------------------------------------------------------------------------------
// The timeline
// ---------------------------------------------------------------------------------------

/// One line of the timeline, kept for the final checks.
struct Tick {
    elapsed: Duration,
    limit: usize,
}

/// Prints a line every `TICK` until `RUN` is over, and returns the lines.
async fn report(started: Instant, server: Arc<Server>) -> Vec<Tick> {
    println!(
        "time     seconds since the start\n\
         cap      the server's capacity: requests it serves at once (it queues the rest)\n\
         limit    the adaptive limit: requests the client lets through at once\n\
         at srv   requests at the server now, served or queued\n\
         ok/s     requests served per second\n\
         503/s    requests refused per second (the server's queue was full): drops\n\
         p50 p99  response times of the requests served in the interval, in ms\n\
         rtt      the controller's view, in ms: the mean response time of its last round\n\
         \x20        (503s count too, and they come back at once)\n\
         base     the controller's baseline, in ms: the response time with no queue\n\
         state    `slow start` while the limit doubles, `probe` while it re-measures its \
         baseline\n\
         bar      the limit, one # for two, with | at the capacity\n"
    );
    println!("  time  cap  limit  at srv  ok/s  503/s  p50  p99  rtt  base  state       bar");

    let mut ticks = Vec::new();
    let mut interval = tokio::time::interval_at(started + TICK, TICK);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut last_at, mut last_served, mut last_refused) = (started, 0, 0);
    let mut api = None;
    while last_at < started + RUN {
        interval.tick().await;
        let now = Instant::now();
        let elapsed = now - started;
        let seconds = (now - last_at).as_secs_f64();
        // The limiter is registered by the first call, a moment after the workers start.
        if api.is_none() {
            api = limiter("api");
        }
        let Some(api) = &api else { continue };
        let limit = api.limit();
        let adaptive: AdaptiveStats = api.stats().adaptive.expect("an adaptive limiter");
        let capacity = capacity_at(elapsed);

        let served = CLIENT.served.load(SeqCst);
        let refused = CLIENT.refused.load(SeqCst);
        let mut latencies = std::mem::take(&mut *CLIENT.latencies.lock().unwrap());
        latencies.sort_unstable();
        let percentile = |p: usize| millis(latencies.get(latencies.len() * p / 100).copied());
        let state = if adaptive.probing {
            "probe"
        } else if adaptive.slow_start {
            "slow start"
        } else {
            ""
        };
        println!(
            "{:>5.2}s  {capacity:>3}  {limit:>5}  {:>6}  {:>4.0}  {:>5.0}  {:>3}  {:>3}  {:>3}  {:>4}  \
             {state:<10}  {}",
            elapsed.as_secs_f64(),
            server.inside.load(SeqCst),
            (served - last_served) as f64 / seconds,
            (refused - last_refused) as f64 / seconds,
            percentile(50),
            percentile(99),
            millis(adaptive.rtt),
            millis(adaptive.baseline),
            bar(limit, capacity),
        );
        ticks.push(Tick { elapsed, limit });
        (last_at, last_served, last_refused) = (now, served, refused);
    }
    ticks
}

/// A duration in whole milliseconds, or `-` for none.
fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "-".to_owned(),
        |duration| duration.as_millis().to_string(),
    )
}

/// The limit as a bar of `#`, one for two, with a `|` at the capacity; cut at 60 columns.
fn bar(limit: usize, capacity: usize) -> String {
    const WIDTH: usize = 60;
    let filled = (limit / 2).min(WIDTH);
    let mut bar: Vec<char> = "#".repeat(filled).chars().collect();
    let mark = capacity / 2;
    if mark >= bar.len() {
        bar.resize(mark, ' ');
        bar.push('|');
    } else {
        bar[mark] = '|';
    }
    if limit / 2 > WIDTH {
        bar.push('>');
    }
    bar.into_iter().collect::<String>().trim_end().to_owned()
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    // Whatever goes wrong, the example ends: CI runs it.
    if tokio::time::timeout(DEADLINE, run()).await.is_err() {
        panic!("the adaptive example did not finish within {DEADLINE:?}");
    }
}

async fn run() {
    let server = Arc::new(Server {
        slots: Arc::new(Semaphore::new(MAX_CAPACITY)),
        capacity: AtomicUsize::new(PHASES[0].1),
        queued: AtomicUsize::new(0),
        inside: AtomicUsize::new(0),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let app = Router::new()
        .fallback(serve)
        .with_state(Arc::clone(&server));
    let (shutdown, stop_serving) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_serving.await;
            })
            .await
            .expect("server");
    });

    println!(
        "server on {addr}: {} ms a request; capacity {}; 503 beyond {QUEUE_PER_SLOT} queued \
         per slot",
        SERVICE.as_millis(),
        PHASES
            .iter()
            .map(|(at, capacity)| format!("{capacity} from {}s", at.as_secs()))
            .collect::<Vec<_>>()
            .join(", then "),
    );
    println!("client: {WORKERS} workers calling `get` in a loop, for {RUN:?}\n");

    let started = Instant::now();
    let phases = tokio::spawn(follow_phases(Arc::clone(&server), started));
    let stop = Arc::new(AtomicBool::new(false));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let uri: Uri = format!("http://{addr}/").parse().expect("a valid URI");
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, uri, stop) = (client.clone(), uri.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut calls = 0_u64;
                while !stop.load(SeqCst) {
                    calls += 1;
                    if let Err(ApiError::Failed(error)) = get(&client, uri.clone()).await {
                        CLIENT.failed.fetch_add(1, SeqCst);
                        eprintln!("{error}");
                    }
                }
                calls
            })
        })
        .collect();

    let ticks = report(started, Arc::clone(&server)).await;

    // Stop the workers; each finishes the call it is in (those waiting for the limiter are
    // admitted as the others return), so every call made is a sample.
    stop.store(true, SeqCst);
    let mut calls = 0;
    for worker in workers {
        calls += worker.await.expect("a worker panicked");
    }
    phases.await.expect("the phases panicked");
    shutdown.send(()).expect("the server is still serving");
    serving.await.expect("the server panicked");

    check(&ticks, calls);
}

/// Prints the summary, and checks what the example claims.
fn check(ticks: &[Tick], calls: u64) {
    let api = limiter("api").expect("`get` was called, so its limiter is registered");
    let stats = api.stats();
    let adaptive = stats.adaptive.clone().expect("an adaptive limiter");
    let (served, refused, failed) = (
        CLIENT.served.load(SeqCst),
        CLIENT.refused.load(SeqCst),
        CLIENT.failed.load(SeqCst),
    );

    // The limit's mean over each phase, but for the phase's first second.
    let settled_mean = |phase: usize| {
        let from = PHASES[phase].0 + SETTLE;
        let to = PHASES.get(phase + 1).map_or(RUN, |&(at, _)| at);
        let limits: Vec<_> = ticks
            .iter()
            .filter(|tick| (from..to).contains(&tick.elapsed))
            .map(|tick| tick.limit)
            .collect();
        assert!(
            !limits.is_empty(),
            "no line of the timeline in phase {phase}"
        );
        limits.iter().sum::<usize>() as f64 / limits.len() as f64
    };
    let means = [settled_mean(0), settled_mean(1), settled_mean(2)];
    let high_peak = ticks
        .iter()
        .filter(|tick| tick.elapsed < PHASES[1].0)
        .map(|tick| tick.limit)
        .max()
        .unwrap_or(0);
    let low = PHASES[1].1;

    println!(
        "\nsummary: the limit followed the capacity: {:.0} at {}, {:.0} at {low}, {:.0} at {} \
         again (each phase's mean after its first second); {calls} calls, {refused} answered \
         503 (drops), {failed} failed; baseline {} ms",
        means[0],
        PHASES[0].1,
        means[1],
        means[2],
        PHASES[2].1,
        millis(adaptive.baseline),
    );

    // What the example claims, checked with wide margins: the settled means are about 1.3×
    // each capacity (52, 13, 52), so the low one is about a quarter of the high ones, and
    // the checks ask for less than 0.6 and more than 1.5. The peak of the first phase is
    // usually 60 to 100 (slow start overshoots), and the check asks for more than 20.
    assert_eq!(failed, 0, "some requests failed (see above)");
    assert_eq!(
        calls,
        served + refused + failed,
        "a call is unaccounted for"
    );
    assert_eq!(
        (adaptive.samples, adaptive.overloaded),
        (calls, refused),
        "the controller did not count every call as a sample and every 503 as a drop"
    );
    assert_eq!(
        stats.in_flight, 0,
        "calls in flight after every worker ended"
    );
    assert!(
        ticks
            .iter()
            .all(|tick| (adaptive.min..=adaptive.max).contains(&tick.limit)),
        "the limit left [{}, {}]",
        adaptive.min,
        adaptive.max,
    );
    assert!(
        high_peak > 2 * low,
        "the limit never rose above {} while the server served {} at once: peak {high_peak}",
        2 * low,
        PHASES[0].1,
    );
    assert!(
        means[1] < 0.6 * means[0],
        "the limit did not come down with the capacity: mean {:.1} at capacity {}, {:.1} at \
         capacity {low}",
        means[0],
        PHASES[0].1,
        means[1],
    );
    assert!(
        means[2] > 1.5 * means[1],
        "the limit did not go back up with the capacity: mean {:.1} at capacity {low}, \
         {:.1} at capacity {}",
        means[1],
        means[2],
        PHASES[2].1,
    );
}
