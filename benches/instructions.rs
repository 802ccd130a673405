//! Instructions per call, counted by callgrind, for `#[concurrency_limit(N)]` and the crates a
//! user would otherwise reach for. An instruction count repeats exactly on a loaded machine,
//! where a timing does not. Nothing is timed here; run without valgrind, this binary only
//! makes the calls (and checks them).
//!
//! Usage: `instructions <mode> <calls>` (defaults: `static 100000`). `scripts/instructions.sh`
//! builds it once and runs every mode under `valgrind --tool=callgrind` at two call counts,
//! N1 and N2: (count at N2 − count at N1) / (N2 − N1) is the cost of one call, with the
//! start-up (and anything else done once per run) cancelled out. Run
//! `scripts/instructions.sh` for the table; see the top of that file for its options.
//!
//! # Uncontended: limit 64, `black_box(x) + 1`, awaited one call after another
//!
//! On a current-thread runtime, one task awaits `calls` calls in turn, so each takes its
//! permit on the fast path. The script reports each mode's cost per call over `plain`.
//!
//! - `plain`: a plain `async fn`, the reference the others are measured over.
//! - `static`: `#[concurrency_limit(64)]`, the function's own limiter.
//! - `borrowed`: `#[concurrency_limit(limiter = &self.limiter)]`.
//! - `arc`: `#[concurrency_limit(limiter = self.shared.clone())]` (an `Arc` clone per call).
//! - `adaptive`: `#[concurrency_limit(adaptive(initial = 64))]`: every call a sample (two
//!   reads of tokio's clock, the controller's lock and its arithmetic).
//! - `semaphore`: a tokio `Semaphore`, acquire + drop (no way to wait for the calls).
//! - `hand`: the hand-written equivalent of the attribute, what `drain()` needs: a tokio
//!   `Semaphore`, plus an in-flight `AtomicUsize` counted when the call is made and
//!   decremented on drop, with `Notify::notify_waiters` when it reaches zero
//!   (`benches/common`, shared with `benches/contended.rs`). The baseline of the ratios.
//! - `async-lock`: `async_lock::Semaphore`, acquire + drop.
//! - `tower`: a `tower::limit::ConcurrencyLimit` around a `service_fn`: `ready().await`, then
//!   `call(x).await`.
//! - `tracker`: `tokio_util::task::TaskTracker::track_future` (counted when the call is made)
//!   around a tokio `Semaphore` acquire + drop.
//!
//! # Contended: limit 4, `yield_now().await` then `black_box(x) + 1`, `calls` spawned tasks
//!
//! On a current-thread runtime, one task spawns `calls` calls, each its own task, then waits
//! for all of them, each contender as its users would write it (see the `contended_*`
//! functions). All but 4 queue for a permit. The script reports the cost per call, spawn and
//! wait included, and its ratio to `contended-hand`'s. Modes: `contended-static`,
//! `contended-semaphore`, `contended-hand`, `contended-async-lock`, `contended-tower`,
//! `contended-tracker`.
//!
//! Before its measured run, each contended mode runs the same code once with
//! [`CHECK_CALLS`] calls and a probe in the body (a different instantiation of the same
//! generic code), and panics unless every call finished by the time the wait returned and
//! exactly [`CONTENDED_LIMIT`] ran at once at the peak. The measured run's probe is a no-op
//! type, so the measured bodies are the same for every contender and count nothing. The
//! check is the same at both call counts, so it cancels out with the start-up. Every mode
//! also checks the sum of what its calls returned, where it has them.
//!
//! The counts are this binary's, and LLVM inlines according to what else the binary holds:
//! tokio's `Semaphore::acquire` future has several callers here, so it is inlined into none
//! of them (`semaphore` counts 257 over `plain` here, and 221 in this file's earlier version,
//! where it was the only caller). That holds alike for every contender built on it, the
//! baseline included.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

mod common;

use limit_runtime::{Limiter, concurrency_limit, drain};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tower::limit::ConcurrencyLimit;
use tower::{Service as _, ServiceExt, service_fn};

/// The contended scenario's limit, for every contender (the attribute takes the literal).
const CONTENDED_LIMIT: usize = 4;
/// Calls in each contended mode's check run.
const CHECK_CALLS: u64 = 64;

// ---------------------------------------------------------------------------------------
// Uncontended: limit 64, body `black_box(x) + 1`.

async fn plain(x: u64) -> u64 {
    black_box(x) + 1
}

#[concurrency_limit(64)]
async fn annotated(x: u64) -> u64 {
    black_box(x) + 1
}

#[concurrency_limit(adaptive(initial = 64))]
async fn adaptive(x: u64) -> u64 {
    black_box(x) + 1
}

static SEMAPHORE: Semaphore = Semaphore::const_new(64);

async fn semaphore(x: u64) -> u64 {
    let _permit = SEMAPHORE.acquire().await.unwrap();
    black_box(x) + 1
}

static HAND: Semaphore = Semaphore::const_new(64);

/// A plain `fn`: the call is counted in flight when it is made, before the first poll, as the
/// attribute counts it.
fn hand(x: u64) -> impl Future<Output = u64> {
    let call = common::enter();
    async move {
        let _call = call;
        let _permit = HAND.acquire().await.unwrap();
        black_box(x) + 1
    }
}

static ASYNC_LOCK: async_lock::Semaphore = async_lock::Semaphore::new(64);

async fn async_lock(x: u64) -> u64 {
    let _guard = ASYNC_LOCK.acquire().await;
    black_box(x) + 1
}

static TRACKED: Semaphore = Semaphore::const_new(64);

/// `track_future` counts the call when it is made; the permit is taken inside.
fn tracked(tracker: &TaskTracker, x: u64) -> impl Future<Output = u64> {
    tracker.track_future(async move {
        let _permit = TRACKED.acquire().await.unwrap();
        black_box(x) + 1
    })
}

struct Service {
    limiter: Limiter,
    shared: Arc<Limiter>,
}

impl Service {
    #[concurrency_limit(limiter = &self.limiter)]
    async fn borrowed(&self, x: u64) -> u64 {
        black_box(x) + 1
    }

    #[concurrency_limit(limiter = self.shared.clone())]
    async fn arc(&self, x: u64) -> u64 {
        black_box(x) + 1
    }
}

/// The uncontended loop: `calls` calls, each awaited before the next is made. The same for
/// every mode but `tower`, which writes it out (see there).
async fn run<F: Future<Output = u64>>(calls: u64, call: impl Fn(u64) -> F) -> u64 {
    let mut sum = 0;
    for x in 0..calls {
        sum += call(black_box(x)).await;
    }
    sum
}

fn uncontended(runtime: &Runtime, calls: u64, mode: &str) {
    let service = Service {
        limiter: Limiter::new(64),
        shared: Arc::new(Limiter::new(64)),
    };
    let tracker = TaskTracker::new();
    let mut tower = ConcurrencyLimit::new(
        service_fn(|x: u64| async move { Ok::<_, Infallible>(black_box(x) + 1) }),
        64,
    );
    // One loop per mode, so that nothing is dispatched per call.
    let sum = match mode {
        "plain" => runtime.block_on(run(calls, plain)),
        "static" => runtime.block_on(run(calls, annotated)),
        "borrowed" => runtime.block_on(run(calls, |x| service.borrowed(x))),
        "arc" => runtime.block_on(run(calls, |x| service.arc(x))),
        "adaptive" => runtime.block_on(run(calls, adaptive)),
        "semaphore" => runtime.block_on(run(calls, semaphore)),
        "hand" => runtime.block_on(run(calls, hand)),
        "async-lock" => runtime.block_on(run(calls, async_lock)),
        // `run`'s loop, written out: the future of `call` does not borrow the service, but
        // `ready` needs it `&mut` before each call, which an `Fn` cannot lend. (`run` with an
        // `AsyncFnMut` costs tower 11 more instructions per call, and leaves the others as
        // they are.)
        "tower" => runtime.block_on(async {
            let mut sum = 0;
            for x in 0..calls {
                ServiceExt::<u64>::ready(&mut tower).await.unwrap();
                sum += tower.call(black_box(x)).await.unwrap();
            }
            sum
        }),
        "tracker" => runtime.block_on(run(calls, |x| tracked(&tracker, x))),
        _ => unreachable!(),
    };
    assert_eq!(sum, expected_sum(calls), "{mode}: wrong results");
    assert_eq!(SEMAPHORE.available_permits(), 64);
    assert_eq!(HAND.available_permits(), 64);
    assert_eq!(TRACKED.available_permits(), 64);
    assert!(tracker.is_empty());
}

/// 1 + 2 + … + calls: the sum of `x + 1` over `0..calls`.
fn expected_sum(calls: u64) -> u64 {
    calls * (calls + 1) / 2
}

// ---------------------------------------------------------------------------------------
// Contended: limit 4, body `yield_now().await; black_box(x) + 1`, spawned.

/// What the contended body does around its `yield_now()`: nothing in the measured run
/// ([`Off`]), count calls running at once in the check run ([`On`]).
trait Probe: Send + Sync + 'static {
    fn enter();
    fn exit();
}

/// The measured runs' probe: compiled away.
enum Off {}

impl Probe for Off {
    #[inline(always)]
    fn enter() {}
    #[inline(always)]
    fn exit() {}
}

/// The check runs' probe.
enum On {}

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);

impl Probe for On {
    fn enter() {
        let running = RUNNING.fetch_add(1, SeqCst) + 1;
        PEAK.fetch_max(running, SeqCst);
    }
    fn exit() {
        RUNNING.fetch_sub(1, SeqCst);
        DONE.fetch_add(1, SeqCst);
    }
}

/// The contended body, the same for every contender, run while it holds its permit.
async fn body<P: Probe>(x: u64) -> u64 {
    P::enter();
    tokio::task::yield_now().await;
    P::exit();
    black_box(x) + 1
}

/// Awaits every handle in turn: how a user waits for calls that have no drain of their own.
async fn join(handles: Vec<JoinHandle<u64>>) -> u64 {
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    sum
}

#[concurrency_limit(4)]
async fn ours<P: Probe>(x: u64) -> u64 {
    body::<P>(x).await
}

/// Ours: each call is made (and counted for `drain()`) where it is spawned; the `JoinHandle`s
/// are dropped; `drain()` waits until no limited call is in flight.
async fn contended_ours<P: Probe>(calls: u64) {
    for x in 0..calls {
        drop(tokio::spawn(ours::<P>(black_box(x))));
    }
    drain().await;
}

static C_SEMAPHORE: Semaphore = Semaphore::const_new(CONTENDED_LIMIT);

/// tokio's `Semaphore`: each task acquires a permit, runs the body and drops the permit; the
/// spawner keeps the `JoinHandle`s and awaits each one.
async fn contended_semaphore<P: Probe>(calls: u64) {
    let handles = (0..calls)
        .map(|x| {
            tokio::spawn(async move {
                let _permit = C_SEMAPHORE.acquire().await.unwrap();
                body::<P>(black_box(x)).await
            })
        })
        .collect();
    assert_eq!(join(handles).await, expected_sum(calls));
}

static C_HAND: Semaphore = Semaphore::const_new(CONTENDED_LIMIT);

/// The hand-written call: counted in flight when it is made (before it is spawned), the
/// permit taken inside, both released when the future ends.
fn hand_call<P: Probe>(x: u64) -> impl Future<Output = u64> + Send {
    let call = common::enter();
    async move {
        let _call = call;
        let _permit = C_HAND.acquire().await.unwrap();
        body::<P>(x).await
    }
}

/// Hand-written semaphore + in-flight counter + `Notify` (the baseline): the `JoinHandle`s
/// are dropped; the hand-written drain waits on the counter and its `Notify`.
async fn contended_hand<P: Probe>(calls: u64) {
    for x in 0..calls {
        drop(tokio::spawn(hand_call::<P>(black_box(x))));
    }
    common::drain().await;
}

static C_ASYNC_LOCK: async_lock::Semaphore = async_lock::Semaphore::new(CONTENDED_LIMIT);

/// async-lock's `Semaphore`: as tokio's, each task acquires a guard, runs the body and drops
/// the guard; the spawner awaits each `JoinHandle`.
async fn contended_async_lock<P: Probe>(calls: u64) {
    let handles = (0..calls)
        .map(|x| {
            tokio::spawn(async move {
                let _guard = C_ASYNC_LOCK.acquire().await;
                body::<P>(black_box(x)).await
            })
        })
        .collect();
    assert_eq!(join(handles).await, expected_sum(calls));
}

/// tower's `ConcurrencyLimit` around a `service_fn`: each task gets a clone of the service
/// (they share its semaphore), waits in `ready()` for a permit, and `call` moves the permit
/// into the response future, which holds it while the body runs (what `ServiceExt::oneshot`
/// does). The spawner awaits each `JoinHandle`.
async fn contended_tower<P: Probe>(calls: u64) {
    let service = ConcurrencyLimit::new(
        service_fn(|x: u64| async move { Ok::<_, Infallible>(body::<P>(x).await) }),
        CONTENDED_LIMIT,
    );
    let handles = (0..calls)
        .map(|x| {
            let mut service = service.clone();
            tokio::spawn(async move {
                ServiceExt::<u64>::ready(&mut service).await.unwrap();
                service.call(black_box(x)).await.unwrap()
            })
        })
        .collect();
    assert_eq!(join(handles).await, expected_sum(calls));
}

static C_TRACKED: Semaphore = Semaphore::const_new(CONTENDED_LIMIT);

/// tokio-util's `TaskTracker` + a tokio `Semaphore`: `track_future` counts the call where it
/// is spawned (`tracker.spawn(f)` is `tokio::spawn(tracker.track_future(f))`), the task
/// acquires a permit and runs the body; the `JoinHandle`s are dropped, and `close()` +
/// `wait()` waits until every tracked future has ended.
async fn contended_tracker<P: Probe>(calls: u64) {
    let tracker = TaskTracker::new();
    for x in 0..calls {
        let x = black_box(x);
        drop(tokio::spawn(tracker.track_future(async move {
            let _permit = C_TRACKED.acquire().await.unwrap();
            body::<P>(x).await
        })));
    }
    tracker.close();
    tracker.wait().await;
}

/// Runs `check` (the mode's code with [`CHECK_CALLS`] calls and the counting probe), checks
/// what it counted, then runs `measured`.
fn contended(
    runtime: &Runtime,
    mode: &str,
    check: impl Future<Output = ()>,
    measured: impl Future<Output = ()>,
) {
    runtime.block_on(check);
    let done = DONE.load(SeqCst) as u64;
    let peak = PEAK.load(SeqCst);
    assert_eq!(
        done, CHECK_CALLS,
        "{mode}: the wait returned with {done} of {CHECK_CALLS} calls finished"
    );
    assert_eq!(
        peak, CONTENDED_LIMIT,
        "{mode}: {peak} calls ran at once, with a limit of {CONTENDED_LIMIT}"
    );
    runtime.block_on(measured);
}

const MODES: &str = "plain, static, borrowed, arc, adaptive, semaphore, hand, async-lock, tower, tracker, \
    contended-static, contended-semaphore, contended-hand, contended-async-lock, \
    contended-tower, contended-tracker";

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "static".to_owned());
    let calls: u64 = args.next().map_or(100_000, |calls| calls.parse().unwrap());
    // No I/O or timer driver: nothing here needs one, and none runs a thread of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let c = CHECK_CALLS;
    match mode.as_str() {
        "plain" | "static" | "borrowed" | "arc" | "adaptive" | "semaphore" | "hand"
        | "async-lock" | "tower" | "tracker" => uncontended(&runtime, calls, &mode),
        "contended-static" => contended(
            &runtime,
            &mode,
            contended_ours::<On>(c),
            contended_ours::<Off>(calls),
        ),
        "contended-semaphore" => contended(
            &runtime,
            &mode,
            contended_semaphore::<On>(c),
            contended_semaphore::<Off>(calls),
        ),
        "contended-hand" => contended(
            &runtime,
            &mode,
            contended_hand::<On>(c),
            contended_hand::<Off>(calls),
        ),
        "contended-async-lock" => contended(
            &runtime,
            &mode,
            contended_async_lock::<On>(c),
            contended_async_lock::<Off>(calls),
        ),
        "contended-tower" => contended(
            &runtime,
            &mode,
            contended_tower::<On>(c),
            contended_tower::<Off>(calls),
        ),
        "contended-tracker" => contended(
            &runtime,
            &mode,
            contended_tracker::<On>(c),
            contended_tracker::<Off>(calls),
        ),
        other => panic!("unknown mode {other:?}; the modes are {MODES}"),
    }
}
