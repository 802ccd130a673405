//! Graceful shutdown of an axum service whose handlers and background jobs are limited with
//! `#[concurrency_limit]`: stop accepting, give in-flight work a grace period, say by name
//! what is still running when it ends, ask long-running work to wrap up, and wait for it.
//!
//! ```text
//! cargo run --example graceful_shutdown              # serves 127.0.0.1:3000 until Ctrl-C
//! cargo run --example graceful_shutdown -- --demo    # drives itself and exits (CI)
//! SHUTDOWN_AFTER_MS=2000 cargo run --example graceful_shutdown   # Ctrl-C by timer
//! ```
//!
//! The service (`ADDR` overrides the address):
//!
//! - `GET /work/{ms}`: works `ms` milliseconds and answers; at most 4 at once.
//! - `GET /events`: a long poll, answered by the next `POST /events` (its body) or, at
//!   shutdown, by 503; at most 64 at once.
//! - `POST /jobs/{steps}`: answers 202 at once and runs a background job of `steps` steps of
//!   50 ms, at most 2 jobs at once. A job checks between steps whether the server asked it
//!   to wrap up.
//!
//! Why `drain()` when axum already shuts down gracefully: `with_graceful_shutdown` waits for
//! open connections, not for work a handler spawned. The background jobs outlive their
//! requests, and `drain()` waits for them too, even for a job whose task has not started
//! yet, because a limited call counts from the moment it is made.
//!
//! The shutdown, on Ctrl-C (or the timer, or in the demo once its requests are in place):
//!
//! 1. Stop accepting connections (`axum::serve(…).with_graceful_shutdown(…)`).
//! 2. `tokio::time::timeout(GRACE, drain())`: in-flight work gets `GRACE` to finish on its
//!    own. If it does not, log each limiter with calls still in flight, by name.
//! 3. Ask long-running work to wrap up (a `watch` channel): long polls answer 503, jobs stop
//!    at their next step. Then `timeout(FINAL_GRACE, drain())` again; if even that runs out,
//!    log what is left and exit with an error, abandoning it.
//!
//! `--demo` exercises both outcomes of a bounded drain, deterministically: its client leaves
//! two long polls open, which end only when the server wraps up, so the first grace period
//! always runs out with stragglers to log, and the second drain always completes. The demo
//! checks what it shows (every response, every job accounted for) and takes about half a
//! second.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use limit_runtime::{Name, concurrency_limit, drain, limiter, stragglers};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::{sleep, timeout};

/// How long in-flight work gets to finish on its own once the server stops accepting.
const GRACE: Duration = Duration::from_millis(300);

/// How long wrapping up may take before the rest is abandoned.
const FINAL_GRACE: Duration = Duration::from_secs(10);

/// One step of a background job.
const STEP: Duration = Duration::from_millis(50);

/// The time origin of the log.
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

static JOBS_FINISHED: AtomicUsize = AtomicUsize::new(0);
static JOBS_WRAPPED_UP: AtomicUsize = AtomicUsize::new(0);

macro_rules! log {
    ($($arg:tt)*) => {
        println!("{:>5} ms  {}", STARTED.elapsed().as_millis(), format_args!($($arg)*))
    };
}

// ---------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct App {
    /// Becomes `true` when the server asks long-running work to wrap up.
    wrap_up: watch::Receiver<bool>,
    events: broadcast::Sender<String>,
    next_job: Arc<AtomicU32>,
}

/// A quick request, at most 4 at once.
#[concurrency_limit(4)]
async fn work(Path(ms): Path<u64>) -> String {
    sleep(Duration::from_millis(ms)).await;
    format!("worked {ms} ms\n")
}

/// A long poll: it holds its connection, and its place in the limit, until an event comes
/// or the server wraps up.
#[concurrency_limit(64)]
async fn wait_for_event(State(app): State<App>) -> (StatusCode, String) {
    let mut events = app.events.subscribe();
    let mut wrap_up = app.wrap_up.clone();
    tokio::select! {
        event = events.recv() => match event {
            Ok(event) => (StatusCode::OK, event),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        },
        _ = wrap_up.wait_for(|wrap_up| *wrap_up) => {
            (StatusCode::SERVICE_UNAVAILABLE, "server shutting down\n".to_owned())
        }
    }
}

async fn publish(State(app): State<App>, event: String) -> StatusCode {
    // No long poll waiting is not an error: the event is simply not seen.
    let _ = app.events.send(event);
    StatusCode::NO_CONTENT
}

/// Accepts a job and answers at once; the job runs in the background.
async fn submit_job(State(app): State<App>, Path(steps): Path<u32>) -> (StatusCode, String) {
    let id = app.next_job.fetch_add(1, SeqCst);
    // The call is made on this line, so the job counts for `drain()` from here on, even
    // before its task first runs and long before it gets a permit.
    tokio::spawn(background_job(id, steps, app.wrap_up.clone()));
    (StatusCode::ACCEPTED, format!("job {id} accepted\n"))
}

/// A background job, at most 2 at once, named for the shutdown log.
#[concurrency_limit(2, name = "background-job")]
async fn background_job(id: u32, steps: u32, wrap_up: watch::Receiver<bool>) {
    log!("job {id}: started");
    for step in 0..steps {
        if *wrap_up.borrow() {
            log!("job {id}: wrapped up after {step} of {steps} steps");
            JOBS_WRAPPED_UP.fetch_add(1, SeqCst);
            return;
        }
        sleep(STEP).await;
    }
    log!("job {id}: finished all {steps} steps");
    JOBS_FINISHED.fetch_add(1, SeqCst);
}

// ---------------------------------------------------------------------------------------
// The shutdown
// ---------------------------------------------------------------------------------------

/// Logs each limiter that still has calls in flight, by name.
fn log_stragglers() {
    let stragglers = stragglers();
    for stats in stragglers.stats() {
        log!(
            "  still in flight: {:?}: {} ({} running, {} waiting for a permit; limit {})",
            stats.name,
            stats.in_flight,
            stats.running,
            stats.waiting,
            stats.limit
        );
    }
    // The same as one line, as it would go to a log.
    log!("  {stragglers}");
}

/// What ended the first grace period.
#[derive(Debug, PartialEq, Eq)]
enum FirstDrain {
    Drained,
    /// The grace period ran out, with calls of these limiters still in flight.
    TimedOut(Vec<Name>),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    LazyLock::force(&STARTED);
    let demo = std::env::args().skip(1).any(|arg| arg == "--demo");
    let shutdown_after = std::env::var("SHUTDOWN_AFTER_MS")
        .ok()
        .map(|ms| ms.parse().map(Duration::from_millis))
        .transpose()
        .context("SHUTDOWN_AFTER_MS must be a number of milliseconds")?;
    let address = match std::env::var("ADDR") {
        Ok(address) => address,
        Err(_) if demo => "127.0.0.1:0".to_owned(),
        Err(_) => "127.0.0.1:3000".to_owned(),
    };

    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("bind {address}"))?;
    let address = listener.local_addr()?;
    let (ask_to_wrap_up, wrap_up) = watch::channel(false);
    let app = App {
        wrap_up,
        events: broadcast::channel(16).0,
        next_job: Arc::new(AtomicU32::new(1)),
    };
    let router = Router::new()
        .route("/work/{ms}", get(work))
        .route("/events", get(wait_for_event).post(publish))
        .route("/jobs/{steps}", post(submit_job))
        .with_state(app);
    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    log!("listening on http://{address}");

    let (demo_ready, demo_is_ready) = oneshot::channel();
    let client = demo.then(|| tokio::spawn(demo_client(address, demo_ready)));

    let reason = tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal.context("listen for Ctrl-C")?;
            "Ctrl-C"
        }
        Ok(()) = demo_is_ready, if demo => "the demo's requests are in place",
        () = sleep(shutdown_after.unwrap_or_default()), if shutdown_after.is_some() => {
            "SHUTDOWN_AFTER_MS"
        }
    };

    // 1. Stop accepting. Open connections stay open until their requests are answered.
    log!("shutting down ({reason}): no new connections");
    let _ = stop_accepting.send(());

    // 2. A bounded drain: in-flight work gets GRACE to finish on its own.
    let first = match timeout(GRACE, drain()).await {
        Ok(()) => {
            log!("drained within the grace period");
            FirstDrain::Drained
        }
        Err(_) => {
            log!("grace period of {GRACE:?} over; still running:");
            log_stragglers();
            FirstDrain::TimedOut(
                stragglers()
                    .stats()
                    .iter()
                    .map(|s| s.name.clone())
                    .collect(),
            )
        }
    };

    // 3. Ask long-running work to wrap up, and wait for it, bounded again.
    log!("asking long-running work to wrap up");
    ask_to_wrap_up.send_replace(true);
    if timeout(FINAL_GRACE, drain()).await.is_err() {
        log!("final grace period of {FINAL_GRACE:?} over; abandoning:");
        log_stragglers();
        return Ok(ExitCode::FAILURE);
    }
    log!("drained: no limited call in flight");

    // Every request has been answered, so the server's graceful shutdown ends too.
    timeout(FINAL_GRACE, server)
        .await
        .context("the server did not shut down")???;
    log!("server stopped");

    if let Some(client) = client {
        let report = client.await??;
        check_demo(&first, &report)?;
        log!("demo: everything as expected");
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// The demo's client
// ---------------------------------------------------------------------------------------

/// What the demo's client got back.
struct DemoReport {
    work: Vec<StatusCode>,
    jobs: Vec<StatusCode>,
    long_polls: Vec<StatusCode>,
}

const DEMO_WORK: u64 = 8;
const DEMO_JOBS: usize = 3;
const DEMO_LONG_POLLS: usize = 2;
/// 40 steps of 50 ms: far longer than the grace period.
const DEMO_JOB_STEPS: u32 = 40;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn request(client: HttpClient, method: &str, uri: String) -> anyhow::Result<StatusCode> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())?;
    let response = client.request(request).await?;
    let status = response.status();
    // Read the body to the end, so the connection goes back to the pool.
    response.into_body().collect().await?;
    Ok(status)
}

/// Opens two long polls, submits three long jobs and sends eight quick requests; once the
/// quick ones are answered and both long polls are inside their handler, it tells `main` to
/// shut down, and then waits for the long polls' answers.
async fn demo_client(
    address: SocketAddr,
    ready: oneshot::Sender<()>,
) -> anyhow::Result<DemoReport> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{address}");

    let long_polls: Vec<_> = (0..DEMO_LONG_POLLS)
        .map(|_| tokio::spawn(request(client.clone(), "GET", format!("{base}/events"))))
        .collect();
    let jobs = futures::future::join_all((0..DEMO_JOBS).map(|_| {
        request(
            client.clone(),
            "POST",
            format!("{base}/jobs/{DEMO_JOB_STEPS}"),
        )
    }));
    let work = futures::future::join_all(
        (0..DEMO_WORK).map(|i| request(client.clone(), "GET", format!("{base}/work/{}", 10 * i))),
    );
    let (jobs, work) = tokio::join!(jobs, work);
    let jobs = jobs.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let work = work.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    log!(
        "demo: {} quick requests answered, {} jobs accepted",
        work.len(),
        jobs.len()
    );

    // The long polls were sent first but may reach their handler last: wait until both are
    // in flight, so that the shutdown finds them there.
    timeout(FINAL_GRACE, async {
        while limiter("graceful_shutdown::wait_for_event").map_or(0, |l| l.in_flight())
            < DEMO_LONG_POLLS
        {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .context("the long polls never reached their handler")?;
    let _ = ready.send(());

    let mut statuses = Vec::new();
    for long_poll in long_polls {
        statuses.push(long_poll.await??);
    }
    log!("demo: long polls answered {statuses:?}");
    Ok(DemoReport {
        work,
        jobs,
        long_polls: statuses,
    })
}

/// The demo asserts what it shows, so CI notices a regression.
fn check_demo(first: &FirstDrain, report: &DemoReport) -> anyhow::Result<()> {
    // The long polls end only when asked to wrap up, so the first drain cannot complete.
    let FirstDrain::TimedOut(names) = first else {
        anyhow::bail!("the first drain completed with two long polls open");
    };
    ensure!(
        names
            .iter()
            .any(|name| name == "graceful_shutdown::wait_for_event"),
        "the open long polls were not reported by name: {names:?}"
    );
    ensure!(
        report.work == [StatusCode::OK; DEMO_WORK as usize],
        "quick requests: {:?}",
        report.work
    );
    ensure!(
        report.jobs == [StatusCode::ACCEPTED; DEMO_JOBS],
        "job submissions: {:?}",
        report.jobs
    );
    ensure!(
        report.long_polls == [StatusCode::SERVICE_UNAVAILABLE; DEMO_LONG_POLLS],
        "long polls: {:?}",
        report.long_polls
    );
    // drain() returned, so every job has ended, the one still waiting for a permit at the
    // shutdown included: each either finished or wrapped up.
    let (finished, wrapped_up) = (JOBS_FINISHED.load(SeqCst), JOBS_WRAPPED_UP.load(SeqCst));
    ensure!(
        finished + wrapped_up == DEMO_JOBS,
        "jobs: {finished} finished and {wrapped_up} wrapped up, of {DEMO_JOBS}"
    );
    log!("demo: jobs: {finished} finished, {wrapped_up} wrapped up early");
    Ok(())
}
