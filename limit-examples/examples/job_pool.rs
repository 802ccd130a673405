//! The "coroutine pool" scenario: a producer submits 50 jobs, at most 5 run at once, and
//! `drain()` says when every one of them has finished.
//!
//! Run it with `cargo run --example job_pool`. Each line of the timeline shows one job
//! starting or finishing, how many run at that moment, and which of the 5 slots are busy.
//!
//! The producer awaits `admitted()` before each spawn: it waits its turn while 5 jobs run, so
//! the jobs are admitted in the order they were submitted (they start in that order too, give
//! or take the few admitted together, whose tasks two worker threads pick up in either
//! order), and at most 6 exist at once (5 running, 1 waiting in the producer), however many
//! inputs there are. Spawning `job(id)` directly would
//! also keep the limit and `drain()`, but it makes one waiting task per input, and the jobs
//! would start in whatever order the scheduler first polls those tasks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use limit_runtime::{concurrency_limit, drain};

const JOBS: u32 = 50;
const LIMIT: usize = 5;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[concurrency_limit(LIMIT)]
async fn job(id: u32, started: Instant) {
    let running = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(running, Ordering::SeqCst);
    STARTED.lock().unwrap().push(id);
    report(started, "start ", id, running);

    // Jobs take between 20 and 110 ms, in a fixed pseudo-random pattern.
    let work = 20 + u64::from(id * 37 % 10) * 10;
    tokio::time::sleep(Duration::from_millis(work)).await;

    let running = RUNNING.fetch_sub(1, Ordering::SeqCst) - 1;
    FINISHED.fetch_add(1, Ordering::SeqCst);
    report(started, "finish", id, running);
}

fn report(started: Instant, event: &str, id: u32, running: usize) {
    let slots = format!("{}{}", "#".repeat(running), ".".repeat(LIMIT - running));
    println!(
        "{:>5} ms  {event} job {id:>2}   running {running}/{LIMIT} [{slots}]",
        started.elapsed().as_millis()
    );
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    println!("submitting {JOBS} jobs, at most {LIMIT} at a time\n");
    for id in 1..=JOBS {
        // Waits here while 5 jobs run; the spawned task then holds the job's permit. Each
        // call counts as in flight from the moment it is made, so the drain below cannot
        // miss a job that has not started yet.
        tokio::spawn(job(id, started).admitted().await);
    }
    drain().await;

    let finished = FINISHED.load(Ordering::SeqCst);
    let peak = PEAK.load(Ordering::SeqCst);
    let order = STARTED.lock().unwrap().clone();
    // Job `k` is admitted only once every earlier job has been, and at most `LIMIT` jobs hold a
    // permit, so no job starts more than `LIMIT - 1` places away from its submission.
    let in_order = order
        .iter()
        .enumerate()
        .all(|(place, &id)| (id as usize).abs_diff(place + 1) < LIMIT);
    println!(
        "\ndrain() returned after {} ms: {finished} of {JOBS} jobs finished, \
         at most {peak} ran at once, started {}",
        started.elapsed().as_millis(),
        if in_order {
            "in the order submitted (give or take the jobs admitted together)"
        } else {
            "out of order"
        }
    );
    assert_eq!(
        finished, JOBS as usize,
        "drain() returned before every job ended"
    );
    assert!(peak <= LIMIT, "the limit of {LIMIT} was exceeded: {peak}");
    assert!(in_order, "jobs started out of order: {order:?}");
}
