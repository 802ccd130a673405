//! A polite crawler: at most 2 requests at once *per host*, and a request that cannot get a
//! slot within a deadline gives up instead of queueing forever.
//!
//! Run it with `cargo run --example crawler`. It needs no network: it starts three small
//! HTTP servers (axum) on `127.0.0.1`, one per "host", each on a port of its own, so the host
//! key `127.0.0.1:PORT` tells them apart. Then it spawns 30 fetches at once, spread unevenly
//! over the three hosts, through
//!
//! ```ignore
//! #[concurrency_limit(2, key = host_of(&url), max_wait = MAX_WAIT)]
//! async fn fetch(url: String) -> Result<Page, CrawlError> { … }
//! ```
//!
//! - `key = host_of(&url)`: every distinct host gets its own limit of 2, so a busy host does
//!   not hold back the others.
//! - `max_wait = MAX_WAIT`: a call that has not been admitted within `MAX_WAIT` returns
//!   `Err(CrawlError::from(LimitError))` without running the body. The busiest host gets
//!   more URLs than it can serve in that time, so some of its fetches give up.
//!
//! The live log shows each fetch starting, finishing or giving up, with the per-host
//! concurrency at that moment. The servers count how many requests they serve at once, so
//! the summary shows the per-host limit held from both sides of the connection. The example
//! asserts what it shows, so CI notices if the limiter regresses.
//!
//! With `cargo run --example crawler --features tracing`, the log also has the limiter's own
//! trace (limit-runtime's `tracing` feature), printed by a `tracing-subscriber` `fmt` layer:
//! a `DEBUG` event when a fetch starts waiting for its host's slot and when it is admitted
//! (with the time it waited), both in that fetch's `concurrency_limit.wait` span, and a `WARN`
//! event for each fetch that gives up. Each fetch runs in a `fetch{host, path}` span of the
//! example's, so the wait span shows whose wait it is. A fetch admitted at once emits nothing.
//! The example counts those events and checks them against its own log. Without the
//! feature the subscriber is installed all the same and the limiter emits nothing.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use limit_runtime::{LimitError, concurrency_limit, drain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{Instrument, Level};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// At most this many requests to one host at once.
const PER_HOST: usize = 2;

/// How long a fetch may wait for a slot of its host. The servers take 20–80 ms a page, 2 at
/// a time, so a host gets through about 10 pages in 250 ms: B (10 URLs) and C (5) make it, A
/// (15) does not, and its last few fetches give up. (With these page times, A's 11th fetch is
/// admitted at about 210 ms and its 12th would be at about 270 ms; B's last is admitted at
/// about 215 ms. 250 ms leaves a margin for timing noise on both sides.)
const MAX_WAIT: Duration = Duration::from_millis(250);

/// How many URLs each host gets: uneven on purpose.
const URLS_PER_HOST: [usize; 3] = [15, 10, 5];

/// The whole example must finish well within this; it takes about 300 ms.
const DEADLINE: Duration = Duration::from_secs(30);

/// When the crawl started: the log's time origin.
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The three hosts, set once the servers are listening (their ports are known only then).
static HOSTS: OnceLock<Vec<Host>> = OnceLock::new();

// ---------------------------------------------------------------------------------------
// The limited function
// ---------------------------------------------------------------------------------------

/// A fetched page.
#[derive(Debug)]
struct Page {
    status: u16,
    body: String,
}

/// Why a fetch failed: no slot within `MAX_WAIT`, or the request itself failed.
#[derive(Debug)]
enum CrawlError {
    /// The limiter refused the call; the request was never sent.
    Limit(LimitError),
    Io(std::io::Error),
}

/// What `max_wait` needs: the attribute returns `Err(From::from(limit_error))` when no slot
/// comes in time.
impl From<LimitError> for CrawlError {
    fn from(error: LimitError) -> Self {
        Self::Limit(error)
    }
}

impl fmt::Display for CrawlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limit(error) => error.fmt(f),
            Self::Io(error) => write!(f, "I/O error: {error}"),
        }
    }
}

impl std::error::Error for CrawlError {}

/// Fetches one URL, at most `PER_HOST` at once per host, waiting at most `MAX_WAIT` for a
/// slot. The key is evaluated when the call is made, so the call queues behind the calls of
/// its own host only.
#[concurrency_limit(PER_HOST, key = host_of(&url), max_wait = MAX_WAIT)]
async fn fetch(url: String) -> Result<Page, CrawlError> {
    // From here on this call holds one of its host's slots.
    let host = host_by_url(&url);
    host.waiting.fetch_sub(1, SeqCst);
    let running = host.client_running.fetch_add(1, SeqCst) + 1;
    host.client_peak.fetch_max(running, SeqCst);
    host.log("start", path_of(&url), "");

    let result = http_get(&url).await;

    // Bookkeeping before returning: the slot is given back only when this body ends, so the
    // next fetch of this host cannot start (and log "running 2/2") before this one has
    // counted itself out.
    host.client_running.fetch_sub(1, SeqCst);
    match &result {
        Ok(page) => {
            host.fetched.fetch_add(1, SeqCst);
            let note = format!("{} ({} bytes)", page.status, page.body.len());
            host.log("done", path_of(&url), &note);
        }
        Err(error) => host.log("failed", path_of(&url), &error.to_string()),
    }
    result.map_err(CrawlError::Io)
}

/// The limiter's key: the `host:port` part of `http://host:port/path`.
fn host_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split_once('/')
        .map_or(rest, |(host, _)| host)
        .to_owned()
}

fn path_of(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/').map_or("/", |slash| &rest[slash..])
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client: enough for `GET` against our own servers, no dependency
// ---------------------------------------------------------------------------------------

/// `GET url` over a fresh connection. `Connection: close` makes the server close the
/// connection after the response, so reading to the end reads exactly one response.
async fn http_get(url: &str) -> std::io::Result<Page> {
    let host = host_of(url);
    let mut stream = TcpStream::connect(&host).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        path_of(url)
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;

    let response = String::from_utf8_lossy(&response);
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("response without an end of headers"))?;
    // The status line: `HTTP/1.1 200 OK`.
    let status = head
        .lines()
        .next()
        .filter(|line| line.starts_with("HTTP/1."))
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("response without a valid status line"))?;
    Ok(Page {
        status,
        body: body.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// The servers: one per host, counting the requests they serve at once
// ---------------------------------------------------------------------------------------

/// Server-side counters: the evidence, independent of the client, that no host ever saw
/// more than `PER_HOST` requests at once.
#[derive(Default)]
struct ServerGauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    served: AtomicUsize,
}

async fn page(State(gauge): State<Arc<ServerGauge>>, uri: Uri) -> String {
    let now = gauge.now.fetch_add(1, SeqCst) + 1;
    gauge.peak.fetch_max(now, SeqCst);
    // Each page takes 20–80 ms, the same for the same path on every run.
    tokio::time::sleep(Duration::from_millis(20 + fnv1a(uri.path()) % 61)).await;
    gauge.now.fetch_sub(1, SeqCst);
    gauge.served.fetch_add(1, SeqCst);
    format!("<h1>{}</h1>", uri.path())
}

/// A small deterministic hash (FNV-1a), for the pseudo-random page times.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// Per-host bookkeeping and the log
// ---------------------------------------------------------------------------------------

struct Host {
    label: char,
    /// `127.0.0.1:PORT`: the key `host_of` gives for this host's URLs.
    addr: String,
    urls: usize,
    /// Fetches made and not admitted yet.
    waiting: AtomicUsize,
    client_running: AtomicUsize,
    client_peak: AtomicUsize,
    fetched: AtomicUsize,
    gave_up: AtomicUsize,
    server: Arc<ServerGauge>,
}

fn host_by_url(url: &str) -> &'static Host {
    let addr = host_of(url);
    HOSTS
        .get()
        .and_then(|hosts| hosts.iter().find(|host| host.addr == addr))
        .expect("every URL points at one of our hosts")
}

impl Host {
    /// One line of the live log, with this host's fetches running and waiting right now:
    ///
    /// ```text
    ///   104 ms  host A  done     /page/7    running 1/2 [#.]  waiting 11  200 (16 bytes)
    /// ```
    fn log(&self, event: &str, path: &str, note: &str) {
        let running = self.client_running.load(SeqCst);
        let slots = format!(
            "{}{}",
            "#".repeat(running),
            ".".repeat(PER_HOST.saturating_sub(running))
        );
        let line = format!(
            "{:>5} ms  host {}  {event:<7}  {path:<9}  running {running}/{PER_HOST} [{slots}]  \
             waiting {:>2}  {note}",
            STARTED.elapsed().as_millis(),
            self.label,
            self.waiting.load(SeqCst),
        );
        println!("{}", line.trim_end());
    }
}

// ---------------------------------------------------------------------------------------
// The limiter's own trace (with `--features tracing`)
// ---------------------------------------------------------------------------------------

/// The limiter's events, counted by kind, to check the trace against the crawl.
struct TraceCounts {
    /// `DEBUG` "waiting for a permit".
    waiting: AtomicUsize,
    /// `DEBUG` "admitted after waiting" (the event with a `waited` field).
    admitted: AtomicUsize,
    /// `WARN`: a fetch refused, here always because `MAX_WAIT` ran out.
    refused: AtomicUsize,
}

static TRACE: TraceCounts = TraceCounts {
    waiting: AtomicUsize::new(0),
    admitted: AtomicUsize::new(0),
    refused: AtomicUsize::new(0),
};

impl<S: tracing::Subscriber> Layer<S> for &'static TraceCounts {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if metadata.target() != "limit_runtime" {
            return;
        }
        let count = if *metadata.level() == Level::WARN {
            &self.refused
        } else if metadata.fields().field("waited").is_some() {
            &self.admitted
        } else {
            &self.waiting
        };
        count.fetch_add(1, SeqCst);
    }
}

/// The trace's time stamps: the live log's clock.
struct SinceStart;

impl FormatTime for SinceStart {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{:>5} ms", STARTED.elapsed().as_millis())
    }
}

/// Prints the limiter's events (target `limit_runtime`, `DEBUG` and up) and this example's
/// `fetch` spans that they happen in, on the live log's clock, and counts the events.
fn install_trace() {
    let filter = Targets::new()
        .with_target("limit_runtime", Level::DEBUG)
        .with_target(module_path!(), Level::INFO);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_timer(SinceStart)
                .with_target(false),
        )
        .with(&TRACE)
        .init();
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

// One thread, so the run is the same every time (but for timing noise): the tasks first run
// in the order they were spawned, which is the order each host's fetches queue in. The
// limiter does not need it; a multi-threaded runtime works the same, in a less repeatable
// order.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    install_trace();
    // Whatever goes wrong, the example ends: CI runs it.
    if tokio::time::timeout(DEADLINE, crawl()).await.is_err() {
        panic!(
            "the crawler example did not finish within {DEADLINE:?}; {}",
            limit_runtime::stragglers()
        );
    }
}

async fn crawl() {
    // Three servers on ephemeral ports of 127.0.0.1, stopped by `shutdown` at the end.
    let (shutdown, stop) = tokio::sync::watch::channel(());
    let mut hosts = Vec::new();
    let mut servers = Vec::new();
    for (label, urls) in ('A'..).zip(URLS_PER_HOST) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address").to_string();
        let server = Arc::new(ServerGauge::default());
        let app = Router::new().fallback(page).with_state(Arc::clone(&server));
        let mut stop = stop.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
                .expect("server");
        }));
        hosts.push(Host {
            label,
            addr,
            urls,
            // All of its URLs are about to be fetched, and none has been admitted yet.
            waiting: AtomicUsize::new(urls),
            client_running: AtomicUsize::new(0),
            client_peak: AtomicUsize::new(0),
            fetched: AtomicUsize::new(0),
            gave_up: AtomicUsize::new(0),
            server,
        });
    }
    let hosts = HOSTS.get_or_init(|| hosts);

    // The URLs, round-robin over the hosts that have some left (A B C A B C …, then A B …,
    // then A …), so the spawn order mixes the hosts.
    let mut urls = Vec::new();
    let mut next = [0; 3];
    while urls.len() < URLS_PER_HOST.iter().sum() {
        for (index, host) in hosts.iter().enumerate() {
            if next[index] < host.urls {
                next[index] += 1;
                urls.push(format!("http://{}/page/{}", host.addr, urls.len() + 1));
            }
        }
    }
    let total = urls.len();

    for host in hosts {
        println!("host {} = {} ({} URLs)", host.label, host.addr, host.urls);
    }
    println!(
        "\nfetching {total} URLs at once: at most {PER_HOST} per host, \
         each waiting at most {MAX_WAIT:?} for a slot\n"
    );

    LazyLock::force(&STARTED);
    let mut tasks = Vec::new();
    for url in urls {
        let host = host_by_url(&url);
        // The call is made here, before the task first runs: from this line on it counts as
        // in flight for `drain()`, and its `max_wait` clock starts when the task first polls
        // it, a moment later.
        let call = fetch(url.clone());
        let made = Instant::now();
        // The span the limiter's wait span (with `--features tracing`) is a child of.
        let span = tracing::info_span!("fetch", host = %host.label, path = path_of(&url));
        tasks.push(tokio::spawn(
            async move {
                match call.await {
                    Ok(_) => {} // logged by `fetch` itself
                    Err(CrawlError::Limit(error)) => {
                        host.waiting.fetch_sub(1, SeqCst);
                        host.gave_up.fetch_add(1, SeqCst);
                        let note =
                            format!("gave up after {} ms: {error}", made.elapsed().as_millis());
                        host.log("skipped", path_of(&url), &note);
                    }
                    Err(CrawlError::Io(_)) => {} // logged by `fetch`, as "failed"
                }
            }
            .instrument(span),
        ));
    }

    // Every fetch made above is over when this returns, the ones that gave up included.
    drain().await;
    let drained_at = STARTED.elapsed();
    // The fetch limiter's counters, as `drain()` left them: every call admitted or rejected,
    // none in flight, and no host key left behind.
    let stats = limit_runtime::limiter(concat!(module_path!(), "::fetch"))
        .expect("`fetch` was called, so its limiter is registered")
        .stats();

    // `drain()` covers the limited calls, not the few lines each task runs after its call
    // returns (the "skipped" bookkeeping above). Joining the tasks covers those, and turns a
    // panic in a task into a failure of the example.
    for task in tasks {
        task.await.expect("a crawl task panicked");
    }

    println!("\ndrain() returned after {} ms\n", drained_at.as_millis());
    println!("host  address          URLs  fetched  gave up  client peak  server peak");
    for host in hosts {
        println!(
            "{:<4}  {:<15}  {:>4}  {:>7}  {:>7}  {:>9}/{PER_HOST}  {:>9}/{PER_HOST}",
            host.label,
            host.addr,
            host.urls,
            host.fetched.load(SeqCst),
            host.gave_up.load(SeqCst),
            host.client_peak.load(SeqCst),
            host.server.peak.load(SeqCst),
        );
    }
    println!(
        "\nlimiter {:?}: admitted {}, rejected {}, peak_running {} (all hosts together: the \
         limit is per host), active_keys {}, in_flight {}",
        stats.name,
        stats.admitted,
        stats.rejected,
        stats.peak_running,
        stats.active_keys,
        stats.in_flight,
    );

    // What the example claims, checked.
    let mut fetched = 0;
    let mut gave_up = 0;
    for host in hosts {
        let (label, server_peak) = (host.label, host.server.peak.load(SeqCst));
        assert!(
            server_peak <= PER_HOST,
            "host {label} served {server_peak} requests at once; the limit is {PER_HOST}"
        );
        assert!(
            host.client_peak.load(SeqCst) <= PER_HOST,
            "host {label} had more than {PER_HOST} fetches running at once"
        );
        assert_eq!(
            host.fetched.load(SeqCst) + host.gave_up.load(SeqCst),
            host.urls,
            "host {label}: some URLs were neither fetched nor given up"
        );
        assert_eq!(
            host.server.served.load(SeqCst),
            host.fetched.load(SeqCst),
            "host {label}: the server did not serve exactly the fetched pages"
        );
        fetched += host.fetched.load(SeqCst);
        gave_up += host.gave_up.load(SeqCst);
    }
    assert_eq!(fetched + gave_up, total, "some URLs are unaccounted for");
    assert!(
        hosts
            .iter()
            .any(|host| host.server.peak.load(SeqCst) == PER_HOST),
        "no host ever served {PER_HOST} requests at once: the limit was never reached"
    );
    assert_eq!(
        (stats.admitted, stats.rejected),
        (fetched as u64, gave_up as u64),
        "the limiter's counters disagree with the crawl"
    );
    assert_eq!(stats.in_flight, 0, "drain() returned with calls in flight");
    assert_eq!(stats.active_keys, 0, "a host key outlived its last call");

    // The limiter's trace agrees with the crawl: every fetch that waited was admitted or gave
    // up, each one that gave up said so, and the fetches admitted at once said nothing.
    let (waited, admitted, refused) = (
        TRACE.waiting.load(SeqCst),
        TRACE.admitted.load(SeqCst),
        TRACE.refused.load(SeqCst),
    );
    if cfg!(feature = "tracing") {
        println!(
            "trace: {waited} fetches waited for a slot ({admitted} admitted after waiting, \
             {refused} gave up); the {} admitted at once emitted nothing",
            fetched - admitted
        );
        assert_eq!(
            waited,
            admitted + refused,
            "a wait that neither ended nor gave up"
        );
        assert_eq!(refused, gave_up, "a fetch gave up without a WARN event");
        assert!(
            admitted < fetched,
            "every fetch waited: none was admitted at once"
        );
    } else {
        println!("(run with `--features tracing` to see the limiter's own trace as well)");
        assert_eq!(waited + admitted + refused, 0, "events without the feature");
    }

    // Stop the servers; every connection is closed already, so this is immediate.
    shutdown.send(()).expect("the servers are still listening");
    for server in servers {
        server.await.expect("a server panicked");
    }
}
