//! `key = …`: each distinct key has its own limit, and its state lives only while the key has
//! a call in flight, so memory follows the keys in use, not every key ever seen.
//!
//! Every test has its own annotated function, so each has its own limiter. Nothing here
//! calls the process-wide `drain()`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use limit_runtime::{Limiter, concurrency_limit};
use limit_suite::{Gauge, resident_bytes};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// The limiter of an annotated function, which exists once the function has been called:
/// the call made here is dropped before it is polled, so it is never admitted.
fn limiter_of(name: &str, first_call: impl FnOnce()) -> Limiter {
    first_call();
    limit_runtime::limiter(name).unwrap_or_else(|| panic!("`{name}` is registered"))
}

// ---------------------------------------------------------------------------------------
// A million distinct keys, at most 64 in flight: the key table stays small and so does
// the process.

/// Distinct keys to go through; `LIMIT_SUITE_KEYS` overrides it.
const KEYS: u64 = 1_000_000;
/// Calls in flight at once, at most: one per worker.
const WORKERS: usize = 64;
/// Keys per measuring window: memory after the last window is compared with memory after
/// the first.
const WINDOW: u64 = 100_000;
/// What allocators may hold on to between two measurements. A leak of the keys alone would
/// be hundreds of bytes per key, so at least 100 MiB for the keys after the first window.
const SLACK: u64 = 16 << 20;

static CHURN_LIMITER: OnceLock<Limiter> = OnceLock::new();
static CHURN_MOST_KEYS: AtomicUsize = AtomicUsize::new(0);

#[concurrency_limit(2, key = key, name = "keys-churn")]
async fn churn(key: u64) {
    let limiter = CHURN_LIMITER
        .get()
        .expect("set before the first admitted call");
    CHURN_MOST_KEYS.fetch_max(limiter.stats().active_keys, SeqCst);
    // Let the other workers' calls overlap with this one.
    limit_suite::yield_now().await;
    std::hint::black_box(key);
}

fn key_count() -> u64 {
    std::env::var("LIMIT_SUITE_KEYS").map_or(KEYS, |keys| {
        keys.parse().expect("LIMIT_SUITE_KEYS is a number of keys")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_distinct_keys_leave_no_key_state_and_no_memory_behind() {
    let keys = key_count();
    assert!(
        keys >= 2 * WINDOW,
        "LIMIT_SUITE_KEYS must be at least {}",
        2 * WINDOW
    );
    CHURN_LIMITER
        .set(limiter_of("keys-churn", || drop(churn(u64::MAX))))
        .expect("set once");
    let limiter = CHURN_LIMITER.get().expect("just set");

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static DONE: AtomicUsize = AtomicUsize::new(0);
    static AFTER_FIRST_WINDOW: OnceLock<u64> = OnceLock::new();
    let keys_usize = usize::try_from(keys).expect("fits");
    let window = usize::try_from(WINDOW).expect("fits");
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(async move {
                loop {
                    let key = NEXT.fetch_add(1, SeqCst);
                    if key >= keys_usize {
                        break;
                    }
                    churn(key as u64).await;
                    if DONE.fetch_add(1, SeqCst) + 1 == window {
                        AFTER_FIRST_WINDOW
                            .set(resident_bytes())
                            .expect("measured once");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        timeout(HANG, worker)
            .await
            .expect("the keys go through")
            .expect("no worker panics");
    }
    let after_last_window = resident_bytes();

    let stats = limiter.stats();
    assert_eq!(stats.admitted, keys, "every key was called once");
    assert_eq!(
        stats.active_keys, 0,
        "no key is left once no call is in flight"
    );
    assert_eq!(stats.in_flight, 0);
    let most = CHURN_MOST_KEYS.load(SeqCst);
    assert!(
        most <= WORKERS,
        "{most} keys were tracked at once with at most {WORKERS} calls in flight"
    );
    assert!(
        most >= 2,
        "calls of different keys overlapped ({most} at most)"
    );

    let first = *AFTER_FIRST_WINDOW.get().expect("measured");
    if cfg!(target_os = "linux") {
        assert!(
            after_last_window <= first + SLACK,
            "resident memory grew from {} KiB after {WINDOW} keys to {} KiB after {keys}",
            first >> 10,
            after_last_window >> 10,
        );
    }
    timeout(HANG, limiter.drain()).await.expect("drains");
}

// ---------------------------------------------------------------------------------------
// A key is forgotten with its last call, however that call ends.

static FORGET_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(1, key = key, name = "keys-forget")]
async fn forget(key: u32, hold: oneshot::Receiver<()>, panics: bool) {
    let _running = FORGET_GAUGE.enter();
    let _ = hold.await;
    if panics {
        // Unwinds as a panic does, without the panic hook: a printed (and symbolized)
        // backtrace would allocate while the memory test of this file measures.
        std::panic::resume_unwind(Box::new(format!("the body of key {key} panics")));
    }
}

#[test]
fn a_key_is_forgotten_with_its_last_call_however_that_call_ends() {
    let limiter = limiter_of("keys-forget", || {
        drop(forget(u32::MAX, oneshot::channel().1, false));
    });
    let active = || limiter.stats().active_keys;

    // Never polled.
    let unpolled = forget(1, oneshot::channel().1, false);
    assert_eq!(active(), 1);
    drop(unpolled);
    assert_eq!(active(), 0);

    // Dropped while waiting, and mid-body.
    let (release_running, hold) = oneshot::channel();
    let mut running = task::spawn(forget(2, hold, false));
    assert_pending!(running.poll());
    let mut waiting = task::spawn(forget(2, oneshot::channel().1, false));
    assert_pending!(waiting.poll());
    assert_eq!(
        (FORGET_GAUGE.current(), active()),
        (1, 1),
        "one key, two calls"
    );
    drop(waiting);
    assert_eq!(active(), 1, "key 2 still has a running call");
    drop(running);
    assert_eq!((FORGET_GAUGE.current(), active()), (0, 0));
    drop(release_running);

    // Completed.
    let (release, hold) = oneshot::channel();
    let mut done = task::spawn(forget(3, hold, false));
    assert_pending!(done.poll());
    release.send(()).expect("alive");
    assert_ready!(done.poll());
    assert_eq!(active(), 0);
    drop(done);

    // Panicked.
    let (release, hold) = oneshot::channel();
    let mut panicking = task::spawn(forget(4, hold, true));
    assert_pending!(panicking.poll());
    release.send(()).expect("alive");
    let polled = catch_unwind(AssertUnwindSafe(|| panicking.poll()));
    assert!(polled.is_err(), "the body panicked");
    drop(panicking);
    assert_eq!((FORGET_GAUGE.current(), active()), (0, 0));
    assert_eq!(limiter.in_flight(), 0);
}

static KEEP_GAUGE: Gauge = Gauge::new();

#[concurrency_limit(2, key = key, name = "keys-keep")]
async fn keep(key: u32, hold: oneshot::Receiver<()>) {
    let _running = KEEP_GAUGE.enter();
    std::hint::black_box(key);
    let _ = hold.await;
}

#[test]
fn a_key_keeps_its_limit_while_it_has_calls_and_starts_afresh_after() {
    let limiter = limiter_of("keys-keep", || drop(keep(u32::MAX, oneshot::channel().1)));
    let mut releases = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..3 {
        let (release, hold) = oneshot::channel();
        let mut call = task::spawn(keep(7, hold));
        assert_pending!(call.poll());
        releases.push(release);
        calls.push(call);
    }
    assert_eq!((KEEP_GAUGE.current(), limiter.stats().active_keys), (2, 1));

    // Ending one call of the key hands its place to the key's waiter: same key, same limit.
    releases.remove(0).send(()).expect("alive");
    assert_ready!(calls[0].poll());
    assert!(calls[2].is_woken());
    assert_pending!(calls[2].poll());
    assert_eq!((KEEP_GAUGE.current(), limiter.stats().active_keys), (2, 1));

    drop(releases);
    for call in &mut calls[1..] {
        assert_ready!(call.poll());
    }
    assert_eq!((KEEP_GAUGE.current(), limiter.stats().active_keys), (0, 0));

    // The key comes back with the full limit.
    let (release, hold) = oneshot::channel();
    let mut first = task::spawn(keep(7, hold));
    let (release_second, hold) = oneshot::channel();
    let mut second = task::spawn(keep(7, hold));
    let (release_third, hold) = oneshot::channel();
    let mut third = task::spawn(keep(7, hold));
    assert_eq!(limiter.stats().active_keys, 1);
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_pending!(third.poll());
    assert_eq!(
        KEEP_GAUGE.current(),
        2,
        "a key that came back has its full limit again"
    );
    drop((release, release_second, release_third));
    assert_ready!(first.poll());
    assert_ready!(second.poll());
    assert_ready!(third.poll());
    assert_eq!(limiter.stats().active_keys, 0);
}
