//! One limit across several processes, through Redis.
//!
//! ```text
//! cargo run --example fleet --features redis
//! ```
//!
//! The parent starts a `redis-server` of its own (or uses `REDIS_URL` when it is set), then
//! runs this program 3 more times as workers (`--worker N`). Each worker shares the limiter
//! "fleet-demo" (limit 5) through a [`Fleet`] and makes 20 calls at once, 20–80 ms each.
//! Inside its permit, every call counts itself in a Redis counter, so the parent can draw how
//! many calls run across the whole fleet, every 20 ms: never more than 5.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use limit_runtime::redis::Fleet;
use limit_runtime::{Limiter, concurrency_limit};
use limit_suite::redis_server::RedisServer;
use redis::aio::MultiplexedConnection;

/// Every worker's limiter: the same name in each process makes it one limit.
static DEMO: Limiter = Limiter::new(LIMIT).with_name("fleet-demo");
const LIMIT: usize = 5;
const WORKERS: usize = 3;
const CALLS: usize = 20;
/// Calls inside a permit now, across the fleet.
const RUNNING: &str = "fleet-demo:running";
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// At most this many timeline lines, so that the output stays short on a slow machine.
const MAX_TIMELINE: usize = 40;
/// Bounds every wait, so that nothing hangs.
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|arg| arg == "--worker") {
        Some(at) => {
            let n: usize = args
                .get(at + 1)
                .and_then(|n| n.parse().ok())
                .expect("--worker N");
            runtime().block_on(worker(n));
        }
        None => parent(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to Redis")
}

// ---------------------------------------------------------------------------------------------
// A worker: one process of the fleet.

/// One call: counts itself in, runs for `length`, counts itself out. Returns how many calls
/// ran across the fleet when it started.
#[concurrency_limit(limiter = DEMO)]
async fn call(mut redis: MultiplexedConnection, length: Duration) -> i64 {
    let running: i64 = redis::cmd("INCR")
        .arg(RUNNING)
        .query_async(&mut redis)
        .await
        .expect("INCR");
    tokio::time::sleep(length).await;
    let _: i64 = redis::cmd("DECR")
        .arg(RUNNING)
        .query_async(&mut redis)
        .await
        .expect("DECR");
    running
}

async fn worker(n: usize) {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let fleet = Fleet::connect(&url).await.expect("connect to Redis");
    fleet.share(&DEMO).await.expect("share the limiter");
    let redis = connection(&url).await;
    println!("READY");
    // Wait for the others, so that all start together.
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("read GO");

    let mut random = Random::new(n);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let length = Duration::from_millis(random.between(20, 80));
            tokio::spawn(call(redis.clone(), length))
        })
        .collect();
    let mut max = 0;
    for running in calls {
        max = max.max(running.await.expect("a call panicked"));
    }
    // A permit goes back from the fleet's own thread a moment after its call ends: make sure
    // the server has them all before this process exits, or the others wait out the leases.
    fleet.flush().await;
    println!("DONE {max}");
}

/// xorshift, seeded by the worker's number and the time: enough for random lengths.
struct Random(u64);

impl Random {
    fn new(n: usize) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        Self((u64::from(nanos) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: starts the server and the workers, and draws the timeline.

/// A worker process, killed (if still running) when dropped.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Worker {
    fn start(n: usize, url: &str) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("this program's path"))
            .args(["--worker", &n.to_string()])
            .env("REDIS_URL", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a worker");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take().expect("piped stdin");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Worker {
            child,
            stdin,
            lines,
        }
    }

    /// The worker's next line, which must start with `word`: the rest of it.
    fn expect(&self, word: &str) -> String {
        let line = self
            .lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("a worker did not say {word}"));
        line.strip_prefix(word)
            .unwrap_or_else(|| panic!("a worker said {line:?}, expected {word}"))
            .trim()
            .to_owned()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parent() {
    // Our own server, unless one is given; it is killed when `server` is dropped.
    let (server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = RedisServer::start();
            let url = server.url();
            (Some(server), url)
        }
    };
    println!(
        "{WORKERS} processes x {CALLS} calls of 20-80 ms, one limit of {LIMIT} (\"{}\") via {url}",
        DEMO.name()
    );
    let runtime = runtime();
    let mut redis = runtime.block_on(connection(&url));
    runtime.block_on(async {
        let _: i64 = redis::cmd("DEL")
            .arg(RUNNING)
            .query_async(&mut redis)
            .await
            .expect("DEL");
    });

    let mut workers: Vec<Worker> = (1..=WORKERS).map(|n| Worker::start(n, &url)).collect();
    for worker in &workers {
        worker.expect("READY");
    }
    for worker in &mut workers {
        writeln!(worker.stdin, "GO").expect("tell a worker to go");
    }

    // Sample the fleet-wide count every 20 ms until every worker is done.
    let start = Instant::now();
    let mut maxima = Vec::new();
    let mut sampled_max = 0;
    let mut printed = 0;
    runtime.block_on(async {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while maxima.len() < workers.len() {
            every.tick().await;
            let running: i64 = redis::cmd("GET")
                .arg(RUNNING)
                .query_async::<Option<i64>>(&mut redis)
                .await
                .expect("GET")
                .unwrap_or(0);
            sampled_max = sampled_max.max(running);
            if printed < MAX_TIMELINE {
                let bar = "#".repeat(usize::try_from(running.max(0)).unwrap_or(0));
                let line = format!(
                    "t={:>4}ms fleet-wide running: {running} {bar}",
                    start.elapsed().as_millis()
                );
                println!("{}", line.trim_end());
                printed += 1;
            } else if printed == MAX_TIMELINE {
                println!("(timeline cut)");
                printed += 1;
            }
            for worker in &workers {
                if let Ok(line) = worker.lines.try_recv() {
                    let max = line
                        .strip_prefix("DONE ")
                        .and_then(|max| max.parse::<i64>().ok())
                        .unwrap_or_else(|| panic!("a worker said {line:?}, expected DONE"));
                    maxima.push(max);
                }
            }
            assert!(start.elapsed() < DEADLINE, "the workers did not finish");
        }
    });
    for worker in &mut workers {
        let status = worker.child.wait().expect("wait for a worker");
        assert!(status.success(), "a worker failed: {status}");
    }

    let max = maxima.iter().copied().max().unwrap_or(0);
    let held: String = runtime.block_on(async {
        redis::cmd("HGET")
            .arg(format!("limit-runtime:{{{}}}:meta", DEMO.name()))
            .arg("held")
            .query_async(&mut redis)
            .await
            .expect("HGET")
    });
    println!(
        "{} calls in {} ms; most running at once across the fleet: {max} (sampled: {sampled_max}), \
         limit {LIMIT}; permits still held: {held}",
        WORKERS * CALLS,
        start.elapsed().as_millis()
    );
    let limit = i64::try_from(LIMIT).expect("a small limit");
    assert!(
        max <= limit,
        "{max} calls ran at once, above the limit of {limit}"
    );
    assert!(sampled_max <= limit);
    assert_eq!(held, "0");
    drop(workers);
    drop(server);
}
