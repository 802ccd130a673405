//! Drain wake-up latency (issue 4, item 4): time from the last call ending (the last
//! instruction of its body) to `drain()` returning in a task that was already waiting, on a
//! 2-worker runtime. Baseline: the same handshake by hand, the in-flight counter and
//! `Notify` from `common`, awaited with its hand-written drain.
//!
//! `ITERS` handshakes of each side, alternating which goes first; the figures are medians
//! (p90 and p99 are printed too), and the ratio is annotated median ÷ hand-written median.
//! The one assertion checks correctness (a drain must not return while the call it waits for
//! is in flight), not time; nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::time::{Duration, Instant};

mod common;

use limit_runtime::{concurrency_limit, drain};
use tokio::sync::oneshot;

const ITERS: usize = 1_000;
/// How long the drainer is given to register before the call is released.
const SETTLE: Duration = Duration::from_millis(1);

#[concurrency_limit(64)]
async fn annotated(go: oneshot::Receiver<()>) -> Instant {
    let _ = go.await;
    Instant::now()
}

fn hand(go: oneshot::Receiver<()>) -> impl Future<Output = Instant> + Send {
    let guard = common::enter();
    async move {
        let _guard = guard;
        let _ = go.await;
        Instant::now()
    }
}

/// One handshake; returns microseconds from the body's end to the drain's return.
async fn once(annotated_side: bool) -> f64 {
    let (tx, rx) = oneshot::channel();
    let call = if annotated_side {
        tokio::spawn(annotated(rx))
    } else {
        tokio::spawn(hand(rx))
    };
    let drainer = tokio::spawn(async move {
        if annotated_side {
            drain().await;
        } else {
            common::drain().await;
        }
        Instant::now()
    });
    tokio::time::sleep(SETTLE).await;
    assert!(
        !drainer.is_finished(),
        "drain returned with a call in flight"
    );
    tx.send(()).unwrap();
    let ended = call.await.unwrap();
    let drained = drainer.await.unwrap();
    drained.duration_since(ended).as_secs_f64() * 1e6
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (a, h) = rt.block_on(async {
        let (mut a, mut h) = (Vec::new(), Vec::new());
        for i in 0..ITERS {
            if i % 2 == 0 {
                a.push(once(true).await);
                h.push(once(false).await);
            } else {
                h.push(once(false).await);
                a.push(once(true).await);
            }
        }
        (a, h)
    });
    println!(
        "drain_wakeup us: annotated p50 {:.1} p90 {:.1} p99 {:.1}; hand p50 {:.1} p90 {:.1} p99 {:.1}",
        common::median(a.clone()),
        percentile(a.clone(), 0.9),
        percentile(a.clone(), 0.99),
        common::median(h.clone()),
        percentile(h.clone(), 0.9),
        percentile(h.clone(), 0.99),
    );
    let (a, h) = (common::median(a), common::median(h));
    println!(
        "RESULT|drain wake-up median us (hand Notify vs drain())|{h:.1}|{a:.1}|{:.2}|<= 50 us median",
        a / h
    );
}
