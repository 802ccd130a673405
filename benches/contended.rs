//! Contended throughput (issue 4, item 2): `CALLS` calls spawned at once on a 2-worker
//! multi-thread runtime, then awaited with a drain, with limits 1, 4 and 64; each body yields
//! once while it holds its permit. The contender is `#[concurrency_limit(N)]` awaited with
//! `drain()`; the baseline is what a user writes by hand for the same: a `static Semaphore`,
//! plus the in-flight counter and `Notify` from `common` (counted when the call is made,
//! before it is spawned) awaited with the hand-written drain.
//!
//! Per limit: one warm-up of each side, then `ROUNDS` rounds alternating which side goes
//! first; the ratio is the median of the per-round ratios annotated ÷ hand-written.
//! Reports figures only; nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::hint::black_box;
use std::time::{Duration, Instant};

mod common;

use limit_runtime::{concurrency_limit, drain};
use tokio::sync::Semaphore;

const CALLS: u64 = 200_000;
/// Per-round ratios vary by ±30% on a 2-core machine (the workers share the cores with the
/// spawning thread), so the median takes enough rounds to settle, and the spread is printed.
const ROUNDS: usize = 9;

#[concurrency_limit(1)]
async fn ann1(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x) + 1
}
#[concurrency_limit(4)]
async fn ann4(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x) + 1
}
#[concurrency_limit(64)]
async fn ann64(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x) + 1
}

static SEM1: Semaphore = Semaphore::const_new(1);
static SEM4: Semaphore = Semaphore::const_new(4);
static SEM64: Semaphore = Semaphore::const_new(64);

/// The hand-written call: counted before it is spawned, as the annotated one is.
fn hand(sem: &'static Semaphore, x: u64) -> impl Future<Output = u64> + Send {
    let guard = common::enter();
    async move {
        let _guard = guard;
        let _permit = sem.acquire().await.unwrap();
        tokio::task::yield_now().await;
        black_box(x) + 1
    }
}

fn run_annotated(rt: &tokio::runtime::Runtime, limit: usize) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..CALLS {
            match limit {
                1 => drop(tokio::spawn(ann1(i))),
                4 => drop(tokio::spawn(ann4(i))),
                _ => drop(tokio::spawn(ann64(i))),
            }
        }
        drain().await;
        start.elapsed()
    })
}

fn run_hand(rt: &tokio::runtime::Runtime, limit: usize) -> Duration {
    let sem = match limit {
        1 => &SEM1,
        4 => &SEM4,
        _ => &SEM64,
    };
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..CALLS {
            drop(tokio::spawn(hand(sem, i)));
        }
        common::drain().await;
        start.elapsed()
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for limit in [1, 4, 64] {
        // Warm-up.
        run_annotated(&rt, limit);
        run_hand(&rt, limit);
        let (mut a, mut h, mut r) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which side goes first.
            let (ta, th) = if round % 2 == 0 {
                let ta = run_annotated(&rt, limit);
                (ta, run_hand(&rt, limit))
            } else {
                let th = run_hand(&rt, limit);
                (run_annotated(&rt, limit), th)
            };
            let (ta, th) = (ta.as_secs_f64() * 1e3, th.as_secs_f64() * 1e3);
            a.push(ta);
            h.push(th);
            r.push(ta / th);
        }
        let (low, high) = r
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        eprintln!("contended limit={limit}: per-round ratios from {low:.2} to {high:.2}");
        println!(
            "RESULT|contended limit={limit}, {CALLS} calls, ms (hand vs annotated)|{:.1}|{:.1}|{:.2}|<= 1.0",
            common::median(h),
            common::median(a),
            common::median(r)
        );
    }
}
