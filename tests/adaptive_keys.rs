//! `adaptive` with `key = …`: each key has a controller of its own, so two downstreams
//! behind one function each get a limit of their own; a key that goes idle keeps what it
//! learned and comes back with it (up to 1024 idle keys; beyond that the keys idle longest
//! are forgotten and start again from the limiter's limit); a manual `set_limit` reaches
//! every key, idle ones too.
//!
//! A key's limit is not in `stats()` (that is the limiter's own controller, which new keys
//! start from), so the tests read it from the calls: under a load that keeps every key
//! saturated, the calls of a key inside the downstream at a moment are its limit then.
//! Everything runs on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::concurrency_limit;
use limit_suite::{Gauge, limiter_of};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A downstream of `capacity` slots, each call holding one for `service`; `inside` counts
/// the calls admitted by the limiter and not yet returned (queued at a slot or served).
struct Downstream {
    key: u32,
    slots: Semaphore,
    service: Duration,
    inside: Gauge,
}

impl Downstream {
    fn new(key: u32, capacity: usize, service: Duration) -> Arc<Self> {
        Arc::new(Self {
            key,
            slots: Semaphore::new(capacity),
            service,
            inside: Gauge::new(),
        })
    }

    async fn serve(&self) {
        let _inside = self.inside.enter();
        let _slot = self.slots.acquire().await.expect("never closed");
        sleep(self.service).await;
    }
}

/// `callers` tasks per downstream, each calling `call` in a loop until the flag is set.
fn load<F, Fut>(
    downstreams: &[&Arc<Downstream>],
    callers: usize,
    stop: &Arc<AtomicBool>,
    call: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(Arc<Downstream>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut tasks = Vec::new();
    for downstream in downstreams {
        for _ in 0..callers {
            let (downstream, stop) = (Arc::clone(downstream), Arc::clone(stop));
            tasks.push(tokio::spawn(async move {
                while !stop.load(SeqCst) {
                    call(Arc::clone(&downstream)).await;
                }
            }));
        }
    }
    tasks
}

async fn finish(stop: &AtomicBool, tasks: Vec<JoinHandle<()>>) {
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.expect("a caller panicked");
    }
}

/// The median of each downstream's `inside`, watched every 5 ms for `length`.
async fn medians(downstreams: &[&Arc<Downstream>], length: Duration) -> Vec<usize> {
    let mut seen = vec![Vec::new(); downstreams.len()];
    let end = Instant::now() + length;
    while Instant::now() < end {
        for (seen, downstream) in seen.iter_mut().zip(downstreams) {
            seen.push(downstream.inside.current());
        }
        sleep(ms(5)).await;
    }
    seen.into_iter()
        .map(|mut seen| {
            seen.sort_unstable();
            seen[seen.len() / 2]
        })
        .collect()
}

/// Makes `count` calls of `downstream`'s key at once, lets them be admitted, and returns
/// how many were: the key's limit now. The calls then finish.
async fn burst<F, Fut>(downstream: &Arc<Downstream>, count: usize, call: F) -> usize
where
    F: Fn(Arc<Downstream>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let calls: Vec<_> = (0..count)
        .map(|_| tokio::spawn(call(Arc::clone(downstream))))
        .collect();
    // Every call has run up to its admission (or its wait); none has been served yet.
    sleep(ms(1)).await;
    let admitted = downstream.inside.current();
    for call in calls {
        call.await.expect("a call panicked");
    }
    admitted
}

#[concurrency_limit(adaptive(initial = 1, max = 256), key = downstream.key, name = "adaptive-keys/two")]
async fn two_keys(downstream: Arc<Downstream>) {
    downstream.serve().await;
}

/// Two keys of one function, in front of two downstreams of capacity 4 and 32: each key's
/// limit settles near its own downstream's capacity (about 1.3 × C; measured: medians of 5
/// and 42), where one shared limit would serve neither. Then both go idle, and each comes
/// back with what it learned, while a new key starts from the limiter's limit (its
/// `initial`, 1: the limiter's own controller has no sample, since keyed calls sample their
/// key's).
#[tokio::test(start_paused = true)]
async fn each_key_adapts_on_its_own_and_an_idle_key_comes_back_with_what_it_learned() {
    let small = Downstream::new(1, 4, ms(20));
    let large = Downstream::new(2, 32, ms(10));
    drop(two_keys(Arc::clone(&small))); // registers the limiter, unpolled
    let limiter = limiter_of("adaptive-keys/two");

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&[&small, &large], 128, &stop, two_keys);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(limiter.stats().active_keys, 2);
    let settled = medians(&[&small, &large], Duration::from_secs(12)).await;
    eprintln!("the keys' medians: {settled:?}");
    // Each within [C, 1.6 C] (`tests/adaptive_limit.rs`' band, and why).
    assert!((4..=6).contains(&settled[0]), "{settled:?}");
    assert!((32..=51).contains(&settled[1]), "{settled:?}");
    finish(&stop, tasks).await;

    let stats = limiter.stats();
    assert_eq!((stats.active_keys, stats.in_flight), (0, 0));
    assert_eq!(stats.limit, 1);
    assert_eq!(stats.adaptive.expect("adaptive").samples, 0);

    // A minute later, each key is back with its limit, not the limiter's 1.
    sleep(Duration::from_secs(60)).await;
    let small_again = burst(&small, 100, two_keys).await;
    let large_again = burst(&large, 100, two_keys).await;
    eprintln!("back from idle: {small_again}, {large_again}");
    assert!((4..=6).contains(&small_again), "{small_again}");
    assert!((32..=51).contains(&large_again), "{large_again}");
    let new_key = Downstream::new(3, 32, ms(10));
    assert_eq!(burst(&new_key, 100, two_keys).await, 1);
}

#[concurrency_limit(adaptive(initial = 2, max = 64), key = downstream.key, name = "adaptive-keys/many")]
async fn many_keys(downstream: Arc<Downstream>) {
    downstream.serve().await;
}

/// Up to 1024 idle keys keep what they learned; beyond that, the keys idle longest are
/// forgotten, and such a key starts again from the limiter's limit.
#[tokio::test(start_paused = true)]
async fn beyond_1024_idle_keys_the_longest_idle_is_forgotten() {
    let learner = Downstream::new(0, 16, ms(10));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&[&learner], 64, &stop, many_keys);
    sleep(Duration::from_secs(2)).await;
    finish(&stop, tasks).await;
    let learnt = burst(&learner, 100, many_keys).await;
    assert!(learnt >= 16, "{learnt}");
    assert_eq!(limiter_of("adaptive-keys/many").limit(), 2);

    // 1023 more idle keys: 1024 in all, each kept.
    let one_off = |key| async move {
        many_keys(Downstream::new(key, 1, ms(1))).await;
    };
    for key in 1..1024 {
        one_off(key).await;
    }
    // Its own burst moved it a little since (a sample each): it is still far above the
    // limiter's 2.
    let kept = burst(&learner, 100, many_keys).await;
    assert!(kept >= 16, "{kept}");
    // The learner is now the newest idle key; 1024 more make it the oldest, and over the
    // bound, the oldest quarter is forgotten.
    for key in 1024..2048 {
        one_off(key).await;
    }
    assert_eq!(
        burst(&learner, 100, many_keys).await,
        2,
        "forgotten, it starts from the limiter's limit"
    );
}

#[concurrency_limit(adaptive(initial = 1, max = 64), key = downstream.key, name = "adaptive-keys/set")]
async fn set_keys(downstream: Arc<Downstream>) {
    downstream.serve().await;
}

/// A manual `set_limit` reaches every key, idle ones too, and new keys start from it.
#[tokio::test(start_paused = true)]
async fn a_manual_set_limit_reaches_every_key_idle_or_not() {
    let first = Downstream::new(1, 32, ms(10));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&[&first], 128, &stop, set_keys);
    sleep(Duration::from_secs(2)).await;
    finish(&stop, tasks).await;
    assert!(burst(&first, 100, set_keys).await > 7);
    let limiter = limiter_of("adaptive-keys/set");
    limiter.set_limit(7);
    assert_eq!(limiter.limit(), 7);
    assert_eq!(burst(&first, 100, set_keys).await, 7, "the idle key");
    assert_eq!(
        burst(&Downstream::new(2, 32, ms(10)), 100, set_keys).await,
        7,
        "a new key"
    );
}
