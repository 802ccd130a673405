//! A producer with 200,000 inputs at a limit of 1, the shape of rust-parallel's `-j1`: the
//! peak of heap memory in use, counted by a global allocator (a count, not a time, so it
//! repeats), for three producers:
//!
//! - `owned` (the baseline): a hand-written producer that takes an owned semaphore permit,
//!   then spawns the job with the permit.
//! - `admitted` (the contender): `tokio::spawn(job(x).admitted().await)`.
//! - `spawn_all`, for contrast: `tokio::spawn(job(x))` for every input, one waiting task each.
//!
//! Each job yields once, so that it is still running when the producer comes back. Prints
//! `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use limit_runtime::{concurrency_limit, drain};
use tokio::sync::Semaphore;

const INPUTS: u64 = 200_000;

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the arguments it was given, so `System`'s
// guarantees hold unchanged; the bookkeeping is two atomics, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        IN_USE.fetch_sub(layout.size(), SeqCst);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), SeqCst);
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn grew(size: usize) {
    let now = IN_USE.fetch_add(size, SeqCst) + size;
    PEAK.fetch_max(now, SeqCst);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

async fn work(input: u64) -> u64 {
    tokio::task::yield_now().await;
    std::hint::black_box(input) * 2
}

#[concurrency_limit(1)]
async fn job(input: u64) -> u64 {
    work(input).await
}

/// The peak of heap bytes in use above what was in use when `producer` started.
fn peak_of(runtime: &tokio::runtime::Runtime, producer: impl Future<Output = ()>) -> usize {
    let base = IN_USE.load(SeqCst);
    PEAK.store(base, SeqCst);
    runtime.block_on(producer);
    PEAK.load(SeqCst) - base
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // Warm-up: the runtime's own buffers, the limiter's state.
    runtime.block_on(async {
        for input in 0..1_000 {
            tokio::spawn(job(input).admitted().await);
        }
        drain().await;
    });

    let owned = peak_of(&runtime, async {
        let semaphore = Arc::new(Semaphore::new(1));
        for input in 0..INPUTS {
            let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
            tokio::spawn(async move {
                let _permit = permit;
                work(input).await
            });
        }
        // Every permit back: every job done.
        let _all = semaphore.acquire_many(1).await.unwrap();
    });
    let admitted = peak_of(&runtime, async {
        for input in 0..INPUTS {
            tokio::spawn(job(input).admitted().await);
        }
        drain().await;
    });
    let spawn_all = peak_of(&runtime, async {
        for input in 0..INPUTS {
            tokio::spawn(job(input));
        }
        drain().await;
    });

    #[allow(clippy::cast_precision_loss)] // byte counts far below 2^52
    let kib = |bytes: usize| bytes as f64 / 1024.0;
    eprintln!(
        "peak heap in use, {INPUTS} inputs at limit 1: hand-written owned permit {:.1} KiB, \
         admitted() {:.1} KiB, spawn every input {:.1} KiB",
        kib(owned),
        kib(admitted),
        kib(spawn_all)
    );
    println!(
        "RESULT|producer peak heap KiB, {INPUTS} inputs at limit 1 (owned permit vs admitted())|{:.1}|{:.1}|{:.2}|<= 1.5",
        kib(owned),
        kib(admitted),
        kib(admitted) / kib(owned)
    );
    println!(
        "RESULT|producer peak heap KiB, {INPUTS} inputs at limit 1 (owned permit vs spawn every input)|{:.1}|{:.1}|{:.2}|-",
        kib(owned),
        kib(spawn_all),
        kib(spawn_all) / kib(owned)
    );
}
