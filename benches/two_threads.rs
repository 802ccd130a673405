//! Scaling across threads (issue 4, item 8): 2 OS threads, each with its own current-thread
//! runtime, each calling its own independently limited function in a loop (contender), vs 1
//! thread making the same calls, both functions one after the other (baseline); the ratio is
//! the median of the per-round ratios of throughput, 2 threads ÷ 1 thread. Anything the two
//! limiters share on every call (a process-global atomic) shows up as a ratio well below 2.
//! The same with plain `async fn`s is printed as a reference for what this machine's two
//! cores give by themselves (on a shared machine, that reference varies as much).
//!
//! Every round measures 1 thread then 2 threads, for the limited fns and for the plain
//! ones, which kind goes first alternating by round.
//! Reports figures only; nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::hint::black_box;
use std::time::Instant;

mod common;

use limit_runtime::concurrency_limit;

const CALLS: u64 = 2_000_000;
/// Plain calls are ~40x cheaper; make that reference run long enough to time thread
/// scaling rather than thread and runtime start-up.
const PLAIN_CALLS: u64 = 25 * CALLS;
const ROUNDS: usize = 11;

#[concurrency_limit(64)]
async fn limited_a(x: u64) -> u64 {
    black_box(x) + 1
}
#[concurrency_limit(64)]
async fn limited_b(x: u64) -> u64 {
    black_box(x) + 1
}
async fn plain_a(x: u64) -> u64 {
    black_box(x) + 1
}
async fn plain_b(x: u64) -> u64 {
    black_box(x) + 1
}

fn count(limited: bool) -> u64 {
    if limited { CALLS } else { PLAIN_CALLS }
}

/// `count(limited)` calls of one function on a fresh current-thread runtime.
fn calls(which: u8, limited: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..count(limited) {
            let x = black_box(i);
            let y = match (limited, which) {
                (true, 0) => limited_a(x).await,
                (true, _) => limited_b(x).await,
                (false, 0) => plain_a(x).await,
                (false, _) => plain_b(x).await,
            };
            black_box(y);
        }
    });
}

/// Throughput in million calls per second for `2 * count(limited)` calls.
fn one_thread(limited: bool) -> f64 {
    let start = Instant::now();
    std::thread::spawn(move || {
        calls(0, limited);
        calls(1, limited);
    })
    .join()
    .unwrap();
    2.0 * count(limited) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn two_threads(limited: bool) -> f64 {
    let start = Instant::now();
    let a = std::thread::spawn(move || calls(0, limited));
    let b = std::thread::spawn(move || calls(1, limited));
    a.join().unwrap();
    b.join().unwrap();
    2.0 * count(limited) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    for limited in [true, false] {
        // Warm-up.
        one_thread(limited);
        two_threads(limited);
    }
    // Index 0: limited, 1: the plain reference.
    let mut one = [Vec::new(), Vec::new()];
    let mut two = [Vec::new(), Vec::new()];
    let mut ratio = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let o = one_thread(side == 0);
            let t = two_threads(side == 0);
            one[side].push(o);
            two[side].push(t);
            ratio[side].push(t / o);
        }
    }
    for (side, ((one, two), ratio)) in one.into_iter().zip(two).zip(ratio).enumerate() {
        let limited = side == 0;
        let (label, target) = if limited {
            ("annotated", ">= 1.6")
        } else {
            ("reference: plain async fn", "(reference)")
        };
        println!(
            "RESULT|two_threads {label}: Mcalls/s, 1 thread vs 2 threads|{:.1}|{:.1}|{:.2}|{target}",
            common::median(one),
            common::median(two),
            common::median(ratio)
        );
    }
}
