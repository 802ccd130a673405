//! `key = …`: each distinct key has its own limit, and its state lives only while the key has
//! a call in flight, so memory follows the keys in use, not every key ever seen.
//!
//! Also how the key is made: it borrows the arguments and is evaluated once, when the call
//! is made, and it combines with `max_wait` (one key times out while the others run).
//!
//! Every test has its own annotated function, so each has its own limiter. Nothing here
//! calls the process-wide `drain()`. The test with `max_wait` runs on a paused tokio clock,
//! so its wait is virtual; the poll-by-poll tests need no runtime.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use limit_runtime::{LimitError, Limiter, concurrency_limit};
use limit_suite::{ApiError, Gauge, HANG, gate, limiter_of, open, refusal, resident_bytes};
use tokio::sync::oneshot;
use tokio::time::{advance, timeout};
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

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
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(churn(u64::MAX));
    CHURN_LIMITER
        .set(limiter_of("keys-churn"))
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
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(forget(u32::MAX, oneshot::channel().1, false));
    let limiter = limiter_of("keys-forget");
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
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(keep(u32::MAX, oneshot::channel().1));
    let limiter = limiter_of("keys-keep");
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

// ---------------------------------------------------------------------------------------
// How the key is made: from the arguments, once, when the call is made.

fn host_of(url: &str) -> String {
    url.split('/').nth(2).unwrap_or_default().to_owned()
}

#[test]
fn each_distinct_key_gets_its_own_limit() {
    static GAUGE: Gauge = Gauge::new();

    #[concurrency_limit(2, key = host_of(&url))]
    async fn fetch_page(url: String, gate: oneshot::Receiver<()>) -> String {
        let _running = GAUGE.enter();
        let _ = gate.await;
        url
    }

    let mut releases = Vec::new();
    let mut held = Vec::new();
    for url in [
        "https://a.example/1",
        "https://a.example/2",
        "https://b.example/1",
        "https://b.example/2",
    ] {
        let (release, hold) = gate();
        releases.push(release);
        let mut call = task::spawn(fetch_page(url.to_owned(), hold));
        assert_pending!(call.poll());
        held.push(call);
    }
    assert_eq!(GAUGE.current(), 4, "two per host, on two hosts");
    let limiter = limiter_of("keys::fetch_page");
    assert_eq!(limiter.limit(), 2, "the limit of each key");

    let mut third_a = task::spawn(fetch_page("https://a.example/3".to_owned(), open()));
    assert_pending!(third_a.poll(), "a.example has its two calls");
    let mut first_c = task::spawn(fetch_page("https://c.example/1".to_owned(), open()));
    assert_eq!(assert_ready!(first_c.poll()), "https://c.example/1");
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.waiting,
            stats.in_flight,
            stats.active_keys
        ),
        (4, 1, 5, 2)
    );

    // A permit of b.example does nothing for a.example.
    releases.remove(2).send(()).unwrap();
    assert_eq!(assert_ready!(held[2].poll()), "https://b.example/1");
    assert_pending!(third_a.poll());
    releases.remove(0).send(()).unwrap();
    assert_eq!(assert_ready!(held[0].poll()), "https://a.example/1");
    assert!(third_a.is_woken());
    assert_eq!(assert_ready!(third_a.poll()), "https://a.example/3");

    drop(releases);
    for index in [1, 3] {
        assert_ready!(held[index].poll());
    }
    // Four held, and c.example's call alongside them.
    assert_eq!(GAUGE.peak(), 5);
    let stats = limiter.stats();
    assert_eq!(
        (
            stats.running,
            stats.in_flight,
            stats.active_keys,
            stats.peak_running
        ),
        (0, 0, 0, 5),
        "a key is forgotten with its last call"
    );
}

#[test]
fn the_key_borrows_the_arguments_and_is_evaluated_when_the_call_is_made() {
    static KEY_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);

    fn tenant_of(target: &Mutex<String>) -> String {
        KEY_EVALUATIONS.fetch_add(1, SeqCst);
        target.lock().unwrap().clone()
    }

    #[concurrency_limit(1, key = tenant_of(target))]
    async fn serve(target: &Mutex<String>, gate: oneshot::Receiver<()>) -> usize {
        let _ = gate.await;
        target.lock().unwrap().len()
    }

    let target = Mutex::new("alpha".to_owned());
    let (release, hold) = gate();
    let mut first = task::spawn(serve(&target, hold));
    assert_eq!(
        KEY_EVALUATIONS.load(SeqCst),
        1,
        "evaluated by the call itself"
    );
    let limiter = limiter_of("keys::serve");
    assert_eq!((limiter.in_flight(), limiter.stats().active_keys), (1, 1));
    assert_pending!(first.poll());

    // Made while the target says "alpha": its key is "alpha", whatever the target says when
    // it is first polled.
    let mut second = task::spawn(serve(&target, open()));
    *target.lock().unwrap() = "beta".to_owned();
    assert_pending!(second.poll(), "waits behind the other \"alpha\" call");
    let mut third = task::spawn(serve(&target, open()));
    assert_eq!(limiter.stats().active_keys, 2);
    assert_eq!(
        assert_ready!(third.poll()),
        4,
        "\"beta\" has a permit of its own"
    );
    assert_eq!(
        KEY_EVALUATIONS.load(SeqCst),
        3,
        "once per call, not per poll"
    );

    release.send(()).unwrap();
    assert_ready!(first.poll());
    assert!(second.is_woken());
    assert_ready!(second.poll());
    assert_eq!(KEY_EVALUATIONS.load(SeqCst), 3);
    assert_eq!((limiter.in_flight(), limiter.stats().active_keys), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn key_with_max_wait_times_out_one_key_while_other_keys_run() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(1, key = tenant, max_wait = Duration::from_millis(100))]
    async fn per_tenant(tenant: u32, gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(tenant)
    }

    let (release, hold) = gate();
    let mut busy = task::spawn(per_tenant(1, hold));
    assert_pending!(busy.poll());
    let mut late = task::spawn(per_tenant(1, open()));
    assert_pending!(late.poll());
    assert_eq!(
        assert_ready!(task::spawn(per_tenant(2, open())).poll()).unwrap(),
        2,
        "tenant 2 is not held up by tenant 1"
    );
    advance(Duration::from_millis(100)).await;
    assert!(late.is_woken());
    let error = refusal(assert_ready!(late.poll()));
    assert!(matches!(error, LimitError::Timeout { limit: 1, .. }));
    assert_eq!(BODIES.load(SeqCst), 2);
    let stats = limiter_of(error.name()).stats();
    assert_eq!(
        (stats.in_flight, stats.active_keys, stats.rejected),
        (1, 1, 1),
        "the refused call of tenant 1 left nothing behind"
    );

    release.send(()).unwrap();
    assert_eq!(assert_ready!(busy.poll()).unwrap(), 1);
    let stats = limiter_of(error.name()).stats();
    assert_eq!((stats.in_flight, stats.active_keys), (0, 0));
}
