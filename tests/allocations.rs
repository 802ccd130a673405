//! Heap allocations per limited call in steady state: none. This is a count, not a time,
//! so it is a test rather than a benchmark.
//!
//! A counting global allocator counts the allocations made by this thread while counting is
//! on. Futures are polled by hand with a no-op waker, so no executor allocates either. The
//! first call of a function initializes and registers its limiter (which allocates once);
//! steady state is every call after that.
//!
//! Limiters made at run time leave nothing behind: a limiter that is created, used and
//! dropped frees every allocation it made (its state, its registry entry).
//!
//! The tests take turns (`serial()`): a limiter registered by one test's first call
//! could otherwise grow the registry while another test counts.
//!
//! The counts hold with limit-runtime's `tracing` and `metrics` features on too (CI runs this
//! file with `--all-features`), as long as no subscriber or recorder is installed, which is
//! the case here: a disabled event or span does nothing, and each limiter's metric keys are
//! built once, when it is registered. What an installed subscriber or recorder allocates is
//! its own business. Only the future's size differs with a feature on; see the last test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use limit_runtime::{Limiter, concurrency_limit};
use limit_suite::serial;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Allocations made while counting, minus those freed while counting.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the arguments it was given, so `System`'s
// guarantees hold unchanged; the bookkeeping only touches const-initialized thread-locals,
// which never allocate. `try_with` tolerates thread-locals being torn down at thread exit.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        freed(); // the old block
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freed();
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count() {
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            let _ = LIVE.try_with(|n| n.set(n.get() + 1));
        }
    });
}

fn freed() {
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = LIVE.try_with(|n| n.set(n.get() - 1));
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `work` makes on this thread.
fn allocations_of(work: impl FnOnce()) -> usize {
    counted(work).0
}

/// The allocations `work` makes on this thread, and how many of them it has not freed.
fn counted(work: impl FnOnce()) -> (usize, isize) {
    ALLOCATIONS.with(|n| n.set(0));
    LIVE.with(|n| n.set(0));
    COUNTING.with(|counting| counting.set(true));
    work();
    COUNTING.with(|counting| counting.set(false));
    (ALLOCATIONS.with(Cell::get), LIVE.with(Cell::get))
}

fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = poll(future.as_mut()) {
            return output;
        }
    }
}

const CALLS: u64 = 1_000;

#[concurrency_limit(4)]
async fn uncontended(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

#[test]
fn an_uncontended_call_allocates_nothing() {
    let _serial = serial();
    assert_eq!(run(uncontended(1)), 2); // initializes the limiter
    let allocations = allocations_of(|| {
        for x in 0..CALLS {
            assert_eq!(run(uncontended(x)), x + 1);
        }
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} uncontended calls");
}

#[concurrency_limit(1)]
async fn contended(gate: &tokio::sync::Notify) {
    gate.notified().await;
}

#[test]
fn a_call_that_waits_for_its_permit_allocates_nothing() {
    let _serial = serial();
    let gate = tokio::sync::Notify::new();
    {
        let mut warm = pin!(contended(&gate));
        assert!(poll(warm.as_mut()).is_pending());
    }
    let allocations = allocations_of(|| {
        for _ in 0..CALLS {
            let mut first = pin!(contended(&gate));
            let mut second = pin!(contended(&gate));
            assert!(
                poll(first.as_mut()).is_pending(),
                "first runs, waits at its gate"
            );
            assert!(
                poll(second.as_mut()).is_pending(),
                "second waits for the permit"
            );
            gate.notify_waiters();
            assert!(poll(first.as_mut()).is_ready());
            assert!(
                poll(second.as_mut()).is_pending(),
                "admitted, now at its gate"
            );
            gate.notify_waiters();
            assert!(poll(second.as_mut()).is_ready());
        }
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} contended pairs");
}

#[concurrency_limit(2, key = key)]
async fn keyed(key: u64) -> u64 {
    std::hint::black_box(key)
}

#[test]
fn a_keyed_call_on_a_key_in_use_allocates_nothing() {
    let _serial = serial();
    // A call kept alive holds key 7's entry, as other calls of a busy key would.
    let holder = keyed(7);
    let allocations = allocations_of(|| {
        for _ in 0..CALLS {
            assert_eq!(run(keyed(7)), 7);
        }
    });
    drop(holder);
    assert_eq!(allocations, 0, "allocations in {CALLS} calls of a live key");
}

/// The bytes the attribute adds to a call's future, printed with `--nocapture`: at most 96,
/// which is what a hand-written `static` semaphore's `acquire().await` adds (tokio's
/// `Acquire` future is 88 of them). The call's guards are zero-sized; a regression that
/// stores a reference, or nests another `async fn` state, fails here.
///
/// The bound is for the default build only. With `tracing` or `metrics` on, a call's future
/// also keeps what it needs to observe a wait, whether or not a subscriber or recorder is
/// installed: the time it started waiting, and with `tracing` the wait span and the
/// instrumented wait around `wait_in_line!`. The attribute then adds 112 bytes (`metrics`) or
/// 208 (`tracing`, or both), as the crate documentation's Features section says; the size is
/// still printed.
#[test]
fn the_attribute_adds_no_more_to_the_future_than_a_hand_written_semaphore() {
    let _serial = serial();
    static SEMAPHORE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

    async fn plain(x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }
    async fn hand_written(x: u64) -> u64 {
        let _permit = SEMAPHORE.acquire().await;
        std::hint::black_box(x) + 1
    }
    let added = size_of_val(&uncontended(1)) - size_of_val(&plain(1));
    let hand = size_of_val(&hand_written(1)) - size_of_val(&plain(1));
    println!(
        "future size: plain {} bytes, annotated {} bytes, added {added} (hand-written semaphore adds {hand})",
        size_of_val(&plain(1)),
        size_of_val(&uncontended(1))
    );
    if cfg!(any(feature = "tracing", feature = "metrics")) {
        return;
    }
    assert!(
        added <= 96,
        "the attribute adds {added} bytes to the future; the target is 96"
    );
    assert!(
        added <= hand,
        "the attribute adds {added} bytes, a hand-written semaphore {hand}"
    );
}

/// What an adaptive call carries from its admission to its end (`adaptive/state.rs`'s
/// `Stamp`): the bound on what an adaptive limit adds to a call's future.
const STAMP: usize = 16;

#[concurrency_limit(adaptive)]
async fn adaptive(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

/// An adaptive call's sample (two clock reads, the controller's lock and arithmetic) makes no
/// allocation either, and its future is at most a stamp larger than a fixed limit's.
#[test]
fn an_adaptive_call_allocates_nothing_and_adds_at_most_a_stamp() {
    let _serial = serial();
    assert_eq!(run(adaptive(1)), 2); // makes the limiter, and its controller
    let allocations = allocations_of(|| {
        for x in 0..CALLS {
            assert_eq!(run(adaptive(x)), x + 1);
        }
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} adaptive calls");
    let limiter = limit_suite::limiter_of("allocations::adaptive");
    let samples = limiter.stats().adaptive.expect("adaptive").samples;
    assert_eq!(samples, CALLS + 1, "every call was a sample");

    let fixed = size_of_val(&uncontended(1));
    let added = size_of_val(&adaptive(1)) - fixed;
    println!("future size: adaptive adds {added} bytes to a fixed limit's {fixed}");
    assert!(
        added <= STAMP,
        "an adaptive call's future is {added} bytes larger than a fixed limit's"
    );
}

struct Service {
    connections: Limiter,
    shared: Arc<Limiter>,
}

impl Service {
    async fn plain(&self, x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }

    #[concurrency_limit(limiter = &self.connections)]
    async fn borrowed(&self, x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }

    #[concurrency_limit(limiter = self.shared.clone())]
    async fn shared(&self, x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }
}

/// A limiter per instance, borrowed or in an `Arc`: no allocation per call once the limiter
/// is in use, and one pointer more than the `static` path (at most 8 bytes), and room for an
/// adaptive call's stamp (16 bytes): whether the limiter is adaptive is known only at run
/// time, so its calls carry the room, which a fixed limit leaves unwritten. The waiting
/// call's future stores the pointer once: a queued call knows from its type whether it waits
/// at the back of the line or at the front (`Back`, `Front` in `call.rs`), so no flag sits
/// beside the pointer.
#[test]
fn instance_limiters_add_a_pointer_and_allocate_nothing_per_call() {
    let _serial = serial();
    let service = Service {
        connections: Limiter::new(4),
        shared: Arc::new(Limiter::new(4)),
    };
    assert_eq!(run(service.borrowed(1)), 2); // the limiters' first use makes their state
    assert_eq!(run(service.shared(1)), 2);
    let allocations = allocations_of(|| {
        for x in 0..CALLS {
            assert_eq!(run(service.borrowed(x)), x + 1);
            assert_eq!(run(service.shared(x)), x + 1);
        }
    });
    assert_eq!(allocations, 0, "allocations in {CALLS} calls of each");

    let plain = size_of_val(&service.plain(1));
    async fn plain_fn(x: u64) -> u64 {
        std::hint::black_box(x) + 1
    }
    let static_added = size_of_val(&uncontended(1)) - size_of_val(&plain_fn(1));
    for (how, size) in [
        ("borrowed", size_of_val(&service.borrowed(1))),
        ("shared", size_of_val(&service.shared(1))),
    ] {
        let added = size - plain;
        println!("future size: {how} limiter adds {added} bytes (a `static` adds {static_added})");
        if cfg!(not(any(feature = "tracing", feature = "metrics"))) {
            assert!(
                added <= static_added + 8 + STAMP,
                "a {how} limiter adds {added} bytes to the future; a `static` adds {static_added}"
            );
        }
    }
}

/// 100,000 limiters made at run time, each used and dropped: every allocation they made is
/// freed, so a server that makes one per connection does not grow.
#[test]
fn a_dropped_limiter_leaves_nothing_behind() {
    let _serial = serial();
    let warm = Limiter::new(1);
    drop(warm.try_acquire().unwrap()); // the registry exists
    drop(warm);
    let (allocations, live) = counted(|| {
        for n in 0..100_000_usize {
            let limiter = Limiter::new(1 + n % 4);
            let permit = limiter.try_acquire().unwrap();
            assert_eq!(limiter.in_flight(), 1);
            drop(permit);
            drop(limiter);
        }
    });
    assert!(
        allocations >= 100_000,
        "each limiter made its state: {allocations}"
    );
    assert_eq!(live, 0, "allocations left by 100,000 limiters");
}
