//! Per-call cost with many waiters (issue 4, item 7): limit 1 on a current-thread runtime,
//! W+1 tasks each calling the limited function in a loop, so W calls are always waiting on
//! the same limiter. Time per admitted call with W = 100,000 (contender) vs W = 10
//! (baseline), for `#[concurrency_limit(1)]`; the ratio is many ÷ few. The same ratio for a
//! hand-written `static Semaphore` is printed as a reference for what the queue length
//! costs by itself (cache misses over 100k tasks), so the annotated ratio is read against it.
//! Each body yields once while it holds the permit, so that the other tasks get polled and
//! queue up (without it, a call that finds the permit free never yields and the first task
//! would starve the rest of the current-thread runtime).
//!
//! Every round measures, on a fresh runtime each, W = 10 then W = 100,000 for the annotated
//! fn and for the reference, which side goes first alternating by round; figures are medians.
//! Reports figures only; nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::hint::black_box;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

mod common;

use limit_runtime::concurrency_limit;
use tokio::sync::{Notify, Semaphore};

/// Admitted calls timed per measurement, after every task has gone round once.
const CALLS: u64 = 300_000;
const ROUNDS: usize = 3;

#[concurrency_limit(1)]
async fn annotated(x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x) + 1
}

static SEM: Semaphore = Semaphore::const_new(1);

async fn hand(x: u64) -> u64 {
    let _permit = SEM.acquire().await.unwrap();
    tokio::task::yield_now().await;
    black_box(x) + 1
}

static DONE: AtomicU64 = AtomicU64::new(0);
static TARGET: AtomicU64 = AtomicU64::new(u64::MAX);
static STOP: AtomicBool = AtomicBool::new(false);
static REACHED: Notify = Notify::const_new();

/// Nanoseconds per admitted call with `waiters` calls waiting.
fn run(waiters: u64, annotated_side: bool) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    DONE.store(0, SeqCst);
    TARGET.store(u64::MAX, SeqCst);
    STOP.store(false, SeqCst);
    let ns = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..=waiters {
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !STOP.load(SeqCst) {
                    if annotated_side {
                        black_box(annotated(i).await);
                    } else {
                        black_box(hand(i).await);
                    }
                    i += 1;
                    let done = DONE.fetch_add(1, SeqCst) + 1;
                    if done == TARGET.load(SeqCst) {
                        REACHED.notify_one();
                    }
                }
            }));
        }
        // Let every task go round once so the queue is at its steady length.
        TARGET.store(waiters + 1, SeqCst);
        REACHED.notified().await;
        let start = Instant::now();
        TARGET.store(DONE.load(SeqCst) + CALLS, SeqCst);
        REACHED.notified().await;
        let ns = start.elapsed().as_nanos() as f64 / CALLS as f64;
        STOP.store(true, SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
        ns
    });
    drop(rt);
    eprintln!("  waiters={waiters} annotated={annotated_side}: {ns:.1} ns/call");
    ns
}

fn main() {
    // Warm-up.
    run(10, true);
    run(10, false);
    // Index 0: annotated, 1: the tokio `Semaphore` reference.
    let (mut few, mut many) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            few[side].push(run(10, side == 0));
            many[side].push(run(100_000, side == 0));
        }
    }
    for (side, (few, many)) in few.into_iter().zip(many).enumerate() {
        let annotated_side = side == 0;
        let (few, many) = (common::median(few), common::median(many));
        let (label, target) = if annotated_side {
            ("annotated", "<= 1.5")
        } else {
            ("reference: tokio Semaphore", "(reference)")
        };
        println!(
            "RESULT|waiters_scaling {label}: ns/call, 10 vs 100k waiting|{few:.1}|{many:.1}|{:.2}|{target}",
            many / few
        );
    }
}
