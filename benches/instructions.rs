//! Instructions per uncontended call, counted by callgrind: `scripts/instructions.sh` runs
//! this binary under `valgrind --tool=callgrind` once per mode and subtracts the plain
//! `async fn`'s count. An instruction count repeats exactly on a loaded machine, where a
//! timing does not. Nothing is timed here; run without valgrind, it only runs the calls.
//!
//! Usage: `instructions <mode> <calls>`, with `mode` one of `plain`, `static` (the
//! function's own limiter), `borrowed` (`limiter = &self.limiter`), `arc`
//! (`limiter = self.limiter.clone()`) and `semaphore` (a hand-written tokio `Semaphore`).

use std::hint::black_box;
use std::sync::Arc;

use limit_runtime::{Limiter, concurrency_limit};
use tokio::sync::Semaphore;

async fn plain(x: u64) -> u64 {
    black_box(x) + 1
}

#[concurrency_limit(64)]
async fn annotated(x: u64) -> u64 {
    black_box(x) + 1
}

static SEMAPHORE: Semaphore = Semaphore::const_new(64);

async fn semaphore(x: u64) -> u64 {
    let _permit = SEMAPHORE.acquire().await.unwrap();
    black_box(x) + 1
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

async fn run<F: Future<Output = u64>>(calls: u64, call: impl Fn(u64) -> F) -> u64 {
    let mut sum = 0;
    for x in 0..calls {
        sum += call(black_box(x)).await;
    }
    sum
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "static".to_owned());
    let calls: u64 = args.next().map_or(100_000, |calls| calls.parse().unwrap());
    let service = Service {
        limiter: Limiter::new(64),
        shared: Arc::new(Limiter::new(64)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // One loop per mode, so that the loop itself is the same for each and nothing is
    // dispatched per call.
    let sum = match mode.as_str() {
        "plain" => runtime.block_on(run(calls, plain)),
        "static" => runtime.block_on(run(calls, annotated)),
        "borrowed" => runtime.block_on(run(calls, |x| service.borrowed(x))),
        "arc" => runtime.block_on(run(calls, |x| service.arc(x))),
        "semaphore" => runtime.block_on(run(calls, semaphore)),
        other => panic!("unknown mode {other:?}"),
    };
    black_box(sum);
}
