//! Stress: many calls of one limited function on a multi-thread runtime, cancelled in every
//! way tokio offers, panicking at random, while another task keeps resizing the limit.
//!
//! What this proves, whatever the interleaving:
//!
//! - the limit holds: no more bodies ever run at once than the largest limit ever set;
//! - nothing leaks: afterwards `drain()` returns, the counters read zero, exactly `L` permits
//!   can be taken at once under a limit of `L`, every admission started a body, and resident
//!   memory did not grow between the first tenth of the calls and the end;
//! - nothing inside the library panics (a panic hook flags any panic but the injected ones).
//!
//! Each call does one of: await in place; spawn and join; spawn and abort (before or after
//! its first poll); `tokio::time::timeout` with a zero or tiny duration (cancelled while
//! waiting or mid-body); lose a `tokio::select!` race (dropped); or be dropped unpolled. One
//! body in 23 panics. The choices come from a seeded xorshift generator; the interleaving
//! comes from the scheduler, so each run explores a different one.
//!
//! 20,000 calls by default, to keep CI fast. The full run is a million calls:
//!
//! ```sh
//! LIMIT_STRESS_CALLS=1000000 cargo test --release --test stress -- --nocapture
//! ```
//!
//! This file calls the process-wide `drain()` and installs a process-wide panic hook, so it
//! holds a single test.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Duration;

use futures::FutureExt;
use limit_runtime::{Limiter, concurrency_limit, drain};
use limit_suite::{Gauge, resident_bytes};
use tokio::task::yield_now;
use tokio::time::timeout;

/// Calls made by default; `LIMIT_STRESS_CALLS` overrides it.
const DEFAULT_CALLS: u64 = 20_000;
/// Tasks making calls concurrently. Far more than the largest limit, so calls queue.
const WORKERS: u64 = 32;
/// The largest limit the resizer sets.
const MAX_LIMIT: usize = 8;
const INITIAL_LIMIT: usize = 4;
/// The resizer's turns between two resizes.
const RESIZE_EVERY: usize = 32;
/// Limit checked at the end: exactly this many permits must be free at once.
const FINAL_LIMIT: usize = 5;
/// Allowed growth of resident memory from the end of the first tenth of the calls to the
/// end. Allocators keep freed memory, tokio's task slabs and timer wheel grow to their high
/// water mark, and two threads' caches come and go: a few MiB, all reached in the first
/// tenth. A leak of one small allocation per call is 16 bytes × 900,000 calls ≈ 14 MiB in
/// the full run, and a leaked future or task (hundreds of bytes) exceeds the bound after
/// ~20,000 calls; so the default run catches gross leaks, the full run small ones.
const SLACK: u64 = 16 << 20;
/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(300);
/// The message of the injected panics; the panic hook keeps quiet about these only.
const PANIC_MARKER: &str = "stress: injected panic";

static STRESS: Limiter = Limiter::new(INITIAL_LIMIT).with_name("stress");
static GAUGE: Gauge = Gauge::new();
/// The largest limit set so far, raised *before* the limiter is resized to it.
static MOST_EVER_SET: AtomicUsize = AtomicUsize::new(INITIAL_LIMIT);
static BODIES: AtomicU64 = AtomicU64::new(0);
static INJECTED_PANICS: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED_PANIC: AtomicBool = AtomicBool::new(false);
static NEXT_CALL: AtomicU64 = AtomicU64::new(0);
static CALLS_DONE: AtomicU64 = AtomicU64::new(0);
static RESIDENT_AFTER_FIRST_TENTH: OnceLock<u64> = OnceLock::new();

/// xorshift64*: deterministic, no dependency, good enough to pick branches.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // Never zero, or xorshift stays at zero.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[concurrency_limit(limiter = STRESS)]
async fn work(plan: u64) {
    // The guard is a local of the body, so it is dropped (also when unwinding) before the
    // permit, which the expansion holds outside the body: the gauge never counts a body
    // whose permit is already given back.
    let _running = GAUGE.enter();
    BODIES.fetch_add(1, SeqCst);
    for _ in 0..plan % 4 {
        yield_now().await;
    }
    if plan.is_multiple_of(23) {
        INJECTED_PANICS.fetch_add(1, SeqCst);
        panic!("stress: injected panic");
    }
}

/// Quiet for the injected panics (tokio catches them in spawned tasks, `catch_unwind`
/// elsewhere); any other panic is reported as usual and fails the test at the end.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&PANIC_MARKER) {
            return;
        }
        UNEXPECTED_PANIC.store(true, SeqCst);
        default(info);
    }));
}

/// One call, cancelled (or not) the way `rng` picks.
async fn one_call(rng: &mut Rng) {
    let plan = rng.next();
    match rng.below(6) {
        0 => {
            let _ = AssertUnwindSafe(work(plan)).catch_unwind().await;
        }
        1 => {
            let _ = tokio::spawn(work(plan)).await;
        }
        2 => {
            // Aborted before its first poll, or after whatever it got to in one yield.
            let handle = tokio::spawn(work(plan));
            if rng.below(2) == 0 {
                yield_now().await;
            }
            handle.abort();
            let _ = handle.await;
        }
        3 => {
            // A zero timeout polls the call once and then drops it.
            let limit = Duration::from_micros(rng.below(3) * rng.below(100));
            let _ = AssertUnwindSafe(timeout(limit, work(plan)))
                .catch_unwind()
                .await;
        }
        4 => {
            let race = async {
                tokio::select! {
                    () = work(plan) => {}
                    () = yield_now() => {}
                }
            };
            let _ = AssertUnwindSafe(race).catch_unwind().await;
        }
        _ => drop(work(plan)),
    }
}

async fn worker(seed: u64, calls: u64) {
    let mut rng = Rng::new(seed);
    while NEXT_CALL.fetch_add(1, SeqCst) < calls {
        one_call(&mut rng).await;
        if CALLS_DONE.fetch_add(1, SeqCst) + 1 == calls / 10 {
            RESIDENT_AFTER_FIRST_TENTH
                .set(resident_bytes())
                .expect("measured once");
        }
    }
}

async fn resizer(stop: &AtomicBool) -> u64 {
    let mut rng = Rng::new(u64::MAX);
    let mut resizes = 0;
    while !stop.load(SeqCst) {
        let limit = 1 + usize::try_from(rng.below(MAX_LIMIT as u64)).expect("small");
        MOST_EVER_SET.fetch_max(limit, SeqCst);
        STRESS.set_limit(limit);
        resizes += 1;
        // Not after every yield: `set_limit` hands free permits over to the queue, so a
        // resize at every turn would rescue a permit that a broken release left stranded,
        // and hide the bug. Between resizes, only the calls themselves move permits.
        for _ in 0..RESIZE_EVERY {
            yield_now().await;
        }
    }
    resizes
}

fn call_count() -> u64 {
    std::env::var("LIMIT_STRESS_CALLS").map_or(DEFAULT_CALLS, |calls| {
        calls
            .parse()
            .expect("LIMIT_STRESS_CALLS is a number of calls")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_panicking_and_resized_calls_leak_nothing() {
    let calls = call_count();
    assert!(calls >= 10, "LIMIT_STRESS_CALLS must be at least 10");
    install_panic_hook();

    static STOP: AtomicBool = AtomicBool::new(false);
    let resizer = tokio::spawn(resizer(&STOP));
    let workers: Vec<_> = (0..WORKERS)
        .map(|seed| tokio::spawn(worker(seed, calls)))
        .collect();
    for worker in workers {
        timeout(HANG, worker)
            .await
            .expect("the workers finish")
            .expect("a worker does not panic");
    }
    STOP.store(true, SeqCst);
    let resizes = resizer.await.expect("the resizer does not panic");
    let resident_at_end = resident_bytes();

    // Every call has ended (each was awaited, joined, aborted and joined, or dropped), so
    // this returns at once unless a call leaked its in-flight count.
    timeout(HANG, drain())
        .await
        .unwrap_or_else(|_| panic!("drain() returns: {}", limit_runtime::stragglers()));

    let stats = STRESS.stats();
    let early = *RESIDENT_AFTER_FIRST_TENTH
        .get()
        .expect("measured after the first tenth");
    eprintln!(
        "stress: {calls} calls, {} bodies, {} panics, {resizes} resizes, peak {} running, \
         resident {} KiB after the first tenth and {} KiB at the end; {stats:?}",
        BODIES.load(SeqCst),
        INJECTED_PANICS.load(SeqCst),
        GAUGE.peak(),
        early >> 10,
        resident_at_end >> 10,
    );
    assert!(
        !UNEXPECTED_PANIC.load(SeqCst),
        "a panic other than the injected ones (see above)"
    );
    assert_eq!(
        (stats.running, stats.waiting, stats.in_flight),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(GAUGE.current(), 0);
    // Admission and the body's start happen in the same poll, with no `.await` between
    // them, so no cancellation can fall in between: every admission started a body.
    assert_eq!(stats.admitted, BODIES.load(SeqCst), "{stats:?}");
    assert_eq!(stats.rejected, 0, "nothing here can be refused: {stats:?}");
    let most = MOST_EVER_SET.load(SeqCst);
    assert!(
        GAUGE.peak() <= most && stats.peak_running <= most,
        "{} bodies ran at once (the limiter saw {}), but the limit never exceeded {most}",
        GAUGE.peak(),
        stats.peak_running,
    );
    // With this many calls, every path was taken; a run where none panicked or none
    // reached a body would prove nothing.
    assert!(INJECTED_PANICS.load(SeqCst) > 0 && resizes > 0, "{stats:?}");

    // No permit lost or duplicated across all of that.
    STRESS.set_limit(FINAL_LIMIT);
    let permits: Vec<_> = (0..FINAL_LIMIT)
        .map(|taken| {
            STRESS
                .try_acquire()
                .unwrap_or_else(|error| panic!("permit {taken} of {FINAL_LIMIT}: {error}"))
        })
        .collect();
    assert!(
        STRESS.try_acquire().is_err(),
        "more than {FINAL_LIMIT} permits"
    );
    drop(permits);
    assert_eq!(STRESS.stats().in_flight, 0);

    assert!(
        resident_at_end <= early + SLACK,
        "resident memory grew from {early} to {resident_at_end} bytes over {} calls",
        calls - calls / 10
    );
}
