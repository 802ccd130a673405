//! Per-key limits (issue 4, item 3): `#[concurrency_limit(2, key = …)]` (the contender) vs
//! what a user writes by hand (the baseline), a `Mutex<HashMap<K, Arc<Semaphore>>>` whose
//! entry is created by a key's first call and removed by its last (so memory follows the
//! keys in use, as ours does), plus the hand-written in-flight tracker from `common` (ours
//! also counts calls for `drain()`).
//!
//! 10,000 keys, every call spawned and then all awaited (`drain()`), each body yielding
//! once while it holds its permit, in two shapes:
//! - 1 call per key: every call creates its key's entry and removes it;
//! - 16 calls per key, spawned key after key: a key's calls overlap, so its entry is reused
//!   and most of them wait on the key's limit of 2.
//!
//! Both shapes run on a 2-worker multi-thread runtime (calls of many keys hit the map from
//! both workers, while the main thread spawns) and on a current-thread runtime (every call
//! is spawned before any runs: all keys are in the map at once, and no lock is contended).
//!
//! One difference is deliberate: the hand-written map keeps the capacity of its peak (that
//! is bounded too, by the keys in use at once), while ours also shrinks its table once it
//! is mostly empty, and so grows it again in the next run.
//!
//! Per runtime and shape: one warm-up of each side, then rounds alternating which side goes
//! first; the ratio is the median of the per-round ratios annotated ÷ hand-written. The one
//! assertion checks correctness (every key forgotten once its calls are done), not time;
//! nothing here fails on a slow machine.
//! Prints `RESULT|metric|baseline|contender|ratio|target` lines for `scripts/bench.sh`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod common;

use limit_runtime::{concurrency_limit, drain};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

const KEYS: u64 = 10_000;
const PER_KEY_LIMIT: usize = 2;

#[concurrency_limit(PER_KEY_LIMIT, key = key, name = "bench-keyed")]
async fn annotated(key: u64, x: u64) -> u64 {
    tokio::task::yield_now().await;
    black_box(x) + 1
}

/// The hand-written per-key map: an entry lives while some call of its key is in flight.
static HAND_KEYS: LazyLock<Mutex<HashMap<u64, Arc<Semaphore>>>> = LazyLock::new(Default::default);

fn hand_keys() -> MutexGuard<'static, HashMap<u64, Arc<Semaphore>>> {
    HAND_KEYS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One hand-written call of a key; the last one out removes the key's entry.
struct KeyCall {
    key: u64,
    /// `None` only inside `drop`.
    semaphore: Option<Arc<Semaphore>>,
}

impl KeyCall {
    fn enter(key: u64) -> Self {
        let semaphore = Arc::clone(
            hand_keys()
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(PER_KEY_LIMIT))),
        );
        Self {
            key,
            semaphore: Some(semaphore),
        }
    }

    fn semaphore(&self) -> &Semaphore {
        self.semaphore.as_ref().expect("taken only by drop")
    }
}

impl Drop for KeyCall {
    fn drop(&mut self) {
        let mut keys = hand_keys();
        let semaphore = self.semaphore.take().expect("dropped once");
        // Clones are made and dropped only under the lock, so 2 (the map's and ours) means
        // no other call of this key is in flight. (Letting our clone drop after the lock is
        // released, as a plain `Arc` field would, races: two last calls can each see the
        // other's clone, and the entry leaks.)
        if Arc::strong_count(&semaphore) == 2 {
            keys.remove(&self.key);
        }
        drop(semaphore);
    }
}

/// The hand-written call: counted, and its key entered, before it is spawned, as the
/// annotated one is. Locals drop in reverse: permit, then key, then the in-flight count.
fn hand(key: u64, x: u64) -> impl Future<Output = u64> + Send {
    let in_flight = common::enter();
    let key_call = KeyCall::enter(key);
    async move {
        let _in_flight = in_flight;
        let key_call = key_call;
        let _permit = key_call.semaphore().acquire().await.unwrap();
        tokio::task::yield_now().await;
        black_box(x) + 1
    }
}

/// `KEYS * per_key` calls, spawned key after key, then awaited. Checks that every key was
/// forgotten afterwards, so both sides did all of their work.
fn run(rt: &Runtime, annotated_side: bool, per_key: u64) -> Duration {
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        for key in 0..KEYS {
            for i in 0..per_key {
                if annotated_side {
                    drop(tokio::spawn(annotated(key, i)));
                } else {
                    drop(tokio::spawn(hand(key, i)));
                }
            }
        }
        if annotated_side {
            drain().await;
        } else {
            common::drain().await;
        }
        start.elapsed()
    });
    let keys_left = if annotated_side {
        limit_runtime::limiter("bench-keyed")
            .expect("called, so registered")
            .stats()
            .active_keys
    } else {
        hand_keys().len()
    };
    assert_eq!(
        keys_left, 0,
        "keys left behind (annotated: {annotated_side})"
    );
    elapsed
}

fn main() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (rt, rt_name) in [(&multi, "2-worker"), (&current, "current-thread")] {
        // Fewer calls per run means more rounds, so both shapes get a stable median.
        for (per_key, rounds) in [(1, 21), (16, 5)] {
            // Warm-up: runtime threads started, code paged in, the hand-written map grown.
            run(rt, true, per_key);
            run(rt, false, per_key);
            let (mut a, mut h, mut r) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                // Alternate which side goes first.
                let (ta, th) = if round % 2 == 0 {
                    let ta = run(rt, true, per_key);
                    (ta, run(rt, false, per_key))
                } else {
                    let th = run(rt, false, per_key);
                    (run(rt, true, per_key), th)
                };
                let (ta, th) = (ta.as_secs_f64() * 1e3, th.as_secs_f64() * 1e3);
                a.push(ta);
                h.push(th);
                r.push(ta / th);
            }
            let calls = KEYS * per_key;
            let (h, a, r) = (common::median(h), common::median(a), common::median(r));
            println!(
                "keyed {rt_name}, {per_key} call(s)/key: hand {:.0} ns/call, annotated {:.0} ns/call",
                h * 1e6 / calls as f64,
                a * 1e6 / calls as f64,
            );
            println!(
                "RESULT|keyed {rt_name}, {KEYS} keys x {per_key} call(s), limit {PER_KEY_LIMIT}/key, ms (hand-written map vs annotated)|{h:.1}|{a:.1}|{r:.2}|<= 1.0"
            );
        }
    }
}
