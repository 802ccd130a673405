//! Uncontended overhead (issue 4, item 1): one call at a time on a current-thread runtime,
//! so every call finds a free permit. Three functions with the same trivial body: a plain
//! `async fn` (the reference), the same fn under `#[concurrency_limit(64)]` (the contender,
//! drain tracking and stats included), and the baseline, a hand-written
//! `static Semaphore` acquire + drop around the body.
//!
//! Each round times `CALLS` sequential calls of each of the three, in an order that rotates
//! from round to round. Overhead = time per call - the same round's plain time per call;
//! the ratio is the annotated overhead's median ÷ the hand-written overhead's median.
//! Reports figures only; nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::hint::black_box;
use std::time::Instant;

mod common;

use limit_runtime::concurrency_limit;
use tokio::sync::Semaphore;

const CALLS: u64 = 200_000;
const ROUNDS: usize = 15;

async fn plain(x: u64) -> u64 {
    black_box(x) + 1
}

#[concurrency_limit(64)]
async fn annotated(x: u64) -> u64 {
    black_box(x) + 1
}

static SEM: Semaphore = Semaphore::const_new(64);

async fn hand(x: u64) -> u64 {
    let _permit = SEM.acquire().await.unwrap();
    black_box(x) + 1
}

/// Nanoseconds per call over `CALLS` sequential calls.
fn time_ns<F, Fut>(rt: &tokio::runtime::Runtime, f: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..CALLS {
            black_box(f(black_box(i)).await);
        }
        start.elapsed().as_nanos() as f64 / CALLS as f64
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Warm-up (also creates the annotated function's limiter).
    time_ns(&rt, plain);
    time_ns(&rt, annotated);
    time_ns(&rt, hand);

    let (mut p, mut a, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Rotate the order, so that no side always runs right after another.
        for side in 0..3 {
            match (round + side) % 3 {
                0 => p.push(time_ns(&rt, plain)),
                1 => a.push(time_ns(&rt, annotated)),
                _ => h.push(time_ns(&rt, hand)),
            }
        }
    }
    // Overhead per round (interleaved, so each round's plain time is the reference).
    let ann_over: Vec<f64> = a.iter().zip(&p).map(|(a, p)| a - p).collect();
    let hand_over: Vec<f64> = h.iter().zip(&p).map(|(h, p)| h - p).collect();
    let (p, a, h) = (common::median(p), common::median(a), common::median(h));
    let (ann_over, hand_over) = (common::median(ann_over), common::median(hand_over));
    println!("uncontended ns/call: plain {p:.2}, annotated {a:.2}, hand {h:.2}");
    println!(
        "RESULT|uncontended overhead ns/call (hand-written sem vs annotated)|{hand_over:.2}|{ann_over:.2}|{:.2}|<= 1.0 (stretch <= 0.5)",
        ann_over / hand_over
    );
}
