//! `Limiter::set_limit`: a new limit takes effect at once. Growing admits waiters right away;
//! shrinking never revokes a running call and admits nobody until fewer than the new limit
//! run; `set_limit(0)` pauses admission until the limit grows again; for `key = …` it
//! changes every key's limit.
//!
//! Each transition is checked twice: poll by poll (`tokio_test`, no runtime), where every
//! admission is visible, and under load on a multi-thread runtime, where a script of resizes
//! runs against tasks that call the limited function in loops. Then randomized stresses
//! resize from several tasks (and threads) at once, racing releases and admissions, and
//! check that no permit was lost or duplicated.
//!
//! Every test has its own annotated functions and limiters, and nothing here calls the
//! process-wide `drain()` (the tests of this file run in parallel); `Limiter::drain` is per
//! limiter.

use std::collections::BTreeMap;
use std::pin::{Pin, pin};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, Either, select};
use limit_runtime::{Limiter, concurrency_limit};
use limit_suite::{Gauge, HANG, limiter_of};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_test::task::{self, Spawn};
use tokio_test::{assert_pending, assert_ready};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// Poll by poll: a rig of calls whose bodies wait for a release, driven one poll at a time.

/// What the bodies of one rig report: the ids of the calls admitted, in admission order.
#[derive(Default)]
struct Probe {
    started: Mutex<Vec<u32>>,
}

impl Probe {
    async fn body(&self, id: u32, release: oneshot::Receiver<()>) {
        lock(&self.started).push(id);
        // A dropped sender releases the body too.
        let _ = release.await;
    }
}

type Make = fn(&'static Probe, u32, oneshot::Receiver<()>) -> BoxFuture<'static, ()>;

struct Pending {
    task: Spawn<BoxFuture<'static, ()>>,
    release: Option<oneshot::Sender<()>>,
    done: bool,
}

/// Calls of one limited function, each made and polled by the test itself.
struct Rig<'a> {
    limiter: &'a Limiter,
    probe: &'static Probe,
    make: Make,
    calls: BTreeMap<u32, Pending>,
}

impl<'a> Rig<'a> {
    fn new(limiter: &'a Limiter, make: Make) -> Self {
        Self {
            limiter,
            probe: Box::leak(Box::default()),
            make,
            calls: BTreeMap::new(),
        }
    }

    /// Makes call `id` and polls it once.
    fn call(&mut self, id: u32) {
        let (release, hold) = oneshot::channel();
        let mut task = task::spawn((self.make)(self.probe, id, hold));
        assert_pending!(task.poll(), "call {id} either waits or runs its body");
        let old = self.calls.insert(
            id,
            Pending {
                task,
                release: Some(release),
                done: false,
            },
        );
        assert!(old.is_none(), "call ids are unique");
    }

    fn calls(&mut self, ids: impl IntoIterator<Item = u32>) {
        for id in ids {
            self.call(id);
        }
    }

    /// Polls every unfinished call once, so that any call that was handed a permit runs.
    fn poll_all(&mut self) {
        for (id, call) in &mut self.calls {
            if !call.done {
                assert_pending!(call.task.poll(), "call {id} was not released");
            }
        }
    }

    /// Ends the body of `id`, then polls every other call.
    fn finish(&mut self, id: u32) {
        let call = self.calls.get_mut(&id).expect("a call of the rig");
        assert!(self.probe.has_started(id), "call {id} is running");
        call.release
            .take()
            .expect("released once")
            .send(())
            .expect("the call is alive");
        assert_ready!(call.task.poll(), "call {id} ends once released");
        call.done = true;
        self.poll_all();
    }

    /// Ends running calls, oldest first, until none runs.
    fn finish_all(&mut self) {
        while let Some(&id) = self.running().first() {
            self.finish(id);
        }
    }

    /// Calls admitted and not finished.
    fn running(&self) -> Vec<u32> {
        let started = lock(&self.probe.started).clone();
        started
            .into_iter()
            .filter(|id| !self.calls[id].done)
            .collect()
    }

    /// Calls not admitted yet.
    fn waiting(&self) -> Vec<u32> {
        self.calls
            .keys()
            .copied()
            .filter(|id| !self.probe.has_started(*id))
            .collect()
    }

    /// Waiting calls whose waker was called since their last poll.
    fn woken(&self) -> Vec<u32> {
        self.waiting()
            .into_iter()
            .filter(|id| self.calls[id].task.is_woken())
            .collect()
    }

    /// Every admission so far, in order.
    fn admission_order(&self) -> Vec<u32> {
        lock(&self.probe.started).clone()
    }
}

impl Probe {
    fn has_started(&self, id: u32) -> bool {
        lock(&self.started).contains(&id)
    }
}

// The scenarios below run once on a `static Limiter` shared through `limiter = …`, and once
// on an annotated function's own limiter, found by name after its first call.

/// Limit 2 with 2 running and 3 waiting; `set_limit(4)` admits the first two waiters at
/// once, and the third when a place frees up.
fn growing_admits_waiters_at_once(mut rig: Rig) {
    assert_eq!(rig.limiter.limit(), 2);
    rig.calls(0..5);
    assert_eq!(rig.running(), [0, 1]);

    rig.limiter.set_limit(4);
    assert_eq!(rig.limiter.limit(), 4);
    assert_eq!(
        rig.woken(),
        [2, 3],
        "the new places go to the first waiters"
    );
    rig.poll_all();
    assert_eq!(rig.running(), [0, 1, 2, 3]);
    assert_eq!(rig.waiting(), [4]);

    rig.finish(0);
    assert_eq!(rig.running(), [1, 2, 3, 4]);
    rig.call(5);
    assert_eq!(rig.waiting(), [5], "the new limit is a limit too");
    rig.finish_all();
    assert_eq!(rig.admission_order(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// Limit 4 with 4 running; `set_limit(2)` revokes nothing, and the waiters start only once
/// fewer than 2 run: releasing 1 admits nobody, a 2nd admits nobody, a 3rd admits one.
fn shrinking_keeps_running_calls_and_admits_only_below_the_new_limit(mut rig: Rig) {
    assert_eq!(rig.limiter.limit(), 4);
    rig.calls(0..7);
    assert_eq!(rig.running(), [0, 1, 2, 3]);

    rig.limiter.set_limit(2);
    assert_eq!(rig.limiter.limit(), 2);
    rig.poll_all();
    assert_eq!(rig.running(), [0, 1, 2, 3], "no running call is revoked");
    assert_eq!(rig.limiter.running(), 4);

    rig.finish(0);
    assert_eq!(rig.running(), [1, 2, 3], "3 still run: above the new limit");
    assert!(rig.woken().is_empty());
    rig.finish(1);
    assert_eq!(rig.running(), [2, 3], "2 run: at the new limit");
    assert!(rig.woken().is_empty());
    rig.finish(2);
    assert_eq!(rig.running(), [3, 4], "1 ran, so exactly one waiter starts");
    rig.finish(3);
    assert_eq!(rig.running(), [4, 5]);
    rig.call(7);
    assert_eq!(rig.waiting(), [6, 7]);
    rig.finish_all();
    assert_eq!(rig.admission_order(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// Limit 2 with 2 running; `set_limit(0)` lets them finish and starts nothing, not even
/// calls made after it, until the limit grows again.
fn limit_zero_pauses_admission_until_the_limit_grows(mut rig: Rig) {
    rig.calls(0..3);
    assert_eq!(rig.running(), [0, 1]);

    rig.limiter.set_limit(0);
    assert_eq!(rig.limiter.limit(), 0);
    rig.call(3);
    rig.finish(0);
    rig.finish(1);
    assert!(rig.running().is_empty(), "the running calls finished");
    rig.call(4);
    rig.poll_all();
    assert!(rig.running().is_empty(), "nothing starts at limit 0");
    assert_eq!(rig.waiting(), [2, 3, 4]);
    assert_eq!(rig.limiter.waiting(), 3);

    rig.limiter.set_limit(1);
    assert_eq!(rig.woken(), [2]);
    rig.poll_all();
    assert_eq!(rig.running(), [2]);
    rig.limiter.set_limit(3);
    assert_eq!(rig.woken(), [3, 4]);
    rig.poll_all();
    assert_eq!(rig.running(), [2, 3, 4]);
    rig.finish_all();
    assert_eq!(rig.admission_order(), [0, 1, 2, 3, 4]);
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// Limit 4 with 4 running: `set_limit(1)` then `set_limit(3)` before any call ends is the
/// same as `set_limit(3)`; `set_limit(1)` then `set_limit(6)` admits 2 waiters at once.
fn shrink_then_grow_before_debts_are_paid_counts_from_the_running_calls(mut rig: Rig) {
    rig.calls(0..8);
    assert_eq!(rig.running(), [0, 1, 2, 3]);

    rig.limiter.set_limit(1);
    rig.limiter.set_limit(3);
    rig.poll_all();
    assert_eq!(rig.running(), [0, 1, 2, 3], "4 run, the limit is 3");
    rig.finish(0);
    assert_eq!(rig.running(), [1, 2, 3], "3 run: at the limit");
    rig.finish(1);
    assert_eq!(rig.running(), [2, 3, 4], "2 ran, so one starts");

    rig.limiter.set_limit(1);
    rig.limiter.set_limit(6);
    assert_eq!(rig.woken(), [5, 6, 7], "3 run, the limit is 6");
    rig.poll_all();
    assert_eq!(rig.running(), [2, 3, 4, 5, 6, 7]);
    rig.call(8);
    assert_eq!(rig.waiting(), [8]);

    // Shrink twice, then grow: the limit is the last value, counted from what runs.
    rig.limiter.set_limit(4);
    rig.limiter.set_limit(0);
    rig.limiter.set_limit(5);
    rig.finish(2);
    assert_eq!(rig.running(), [3, 4, 5, 6, 7], "5 run: at the limit");
    rig.finish(3);
    assert_eq!(rig.running(), [4, 5, 6, 7, 8]);
    rig.finish_all();
    assert_eq!(rig.admission_order(), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// Limit 3 with 1 running: `set_limit(1)` takes the idle places back at once.
fn shrinking_takes_idle_places_back_at_once(mut rig: Rig) {
    rig.call(0);
    rig.limiter.set_limit(1);
    rig.calls(1..3);
    assert_eq!(rig.running(), [0]);
    rig.finish(0);
    assert_eq!(rig.running(), [1]);
    rig.finish(1);
    assert_eq!(rig.running(), [2]);
    rig.finish_all();
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// A waiter that was handed a permit (woken, not polled yet) when the limit shrinks below
/// what runs does not start: the limit counts it as a call still to admit.
fn a_waiter_handed_a_permit_during_a_shrink_does_not_start(mut rig: Rig) {
    rig.calls(0..4);
    assert_eq!(rig.running(), [0, 1]);

    // End call 0 without polling the waiters: its permit goes to call 2, which is woken.
    let call = rig.calls.get_mut(&0).expect("call 0");
    call.release.take().expect("once").send(()).expect("alive");
    assert_ready!(call.task.poll());
    call.done = true;
    assert_eq!(rig.woken(), [2], "call 2 holds the freed permit");

    rig.limiter.set_limit(1);
    rig.poll_all();
    assert_eq!(
        rig.running(),
        [1],
        "1 runs, the limit is 1: call 2 must not start"
    );
    rig.finish(1);
    // Call 2 gave its handed permit up to the shrink, and waits at the front of the line,
    // still ahead of call 3: FIFO holds across the resize.
    assert_eq!(rig.running(), [2], "call 2, first in line, starts");
    rig.finish(2);
    assert_eq!(rig.running(), [3], "then call 3");
    rig.finish_all();
    assert_eq!(rig.admission_order().len(), 4);
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// A waiter handed a permit and then dropped, during a shrink, gives the permit back; it
/// must not become a free place while the calls that run are at or above the new limit.
fn a_waiter_cancelled_with_a_permit_during_a_shrink_leaves_no_extra_place(mut rig: Rig) {
    rig.calls(0..3);
    assert_eq!(rig.running(), [0, 1]);
    let call = rig.calls.get_mut(&0).expect("call 0");
    call.release.take().expect("once").send(()).expect("alive");
    assert_ready!(call.task.poll());
    call.done = true;
    assert_eq!(rig.woken(), [2], "call 2 holds the freed permit");

    rig.limiter.set_limit(1);
    let cancelled = rig.calls.remove(&2).expect("call 2");
    drop(cancelled);
    rig.call(3);
    assert_eq!(
        rig.running(),
        [1],
        "1 runs, the limit is 1: call 3 must not start"
    );
    assert!(rig.limiter.try_acquire().is_err(), "no place is free");
    rig.finish(1);
    assert_eq!(rig.running(), [3]);
    rig.finish_all();
    assert_eq!(rig.limiter.in_flight(), 0);
}

/// Runs `scenario` twice, as `scenario::on_a_static_limiter` (a `static` limiter of
/// `limit`, shared through `limiter = …`) and `scenario::on_a_functions_limiter` (a
/// function's own limiter of `limit`, found by name after its first call).
macro_rules! on_both_limiters {
    ($scenario:ident, $limit:literal) => {
        mod $scenario {
            use super::*;

            static SHARED: Limiter =
                Limiter::new($limit).with_name(concat!(module_path!(), "::SHARED"));

            #[concurrency_limit(limiter = SHARED)]
            async fn shared(probe: &'static Probe, id: u32, release: oneshot::Receiver<()>) {
                probe.body(id, release).await;
            }

            #[concurrency_limit($limit)]
            async fn own(probe: &'static Probe, id: u32, release: oneshot::Receiver<()>) {
                probe.body(id, release).await;
            }

            #[test]
            fn on_a_static_limiter() {
                super::$scenario(Rig::new(&SHARED, |p, id, r| Box::pin(shared(p, id, r))));
            }

            #[test]
            fn on_a_functions_limiter() {
                // The first call registers the limiter; dropped unpolled, it is never admitted.
                drop(own(Box::leak(Box::default()), 0, oneshot::channel().1));
                let limiter = limiter_of(concat!(module_path!(), "::own"));
                super::$scenario(Rig::new(&limiter, |p, id, r| Box::pin(own(p, id, r))));
            }
        }
    };
}

on_both_limiters!(growing_admits_waiters_at_once, 2);
on_both_limiters!(
    shrinking_keeps_running_calls_and_admits_only_below_the_new_limit,
    4
);
on_both_limiters!(limit_zero_pauses_admission_until_the_limit_grows, 2);
on_both_limiters!(
    shrink_then_grow_before_debts_are_paid_counts_from_the_running_calls,
    4
);
on_both_limiters!(shrinking_takes_idle_places_back_at_once, 3);
on_both_limiters!(a_waiter_handed_a_permit_during_a_shrink_does_not_start, 2);
on_both_limiters!(
    a_waiter_cancelled_with_a_permit_during_a_shrink_leaves_no_extra_place,
    2
);

#[test]
fn limit_zero_refuses_try_acquire_until_the_limit_grows() {
    static PAUSE_TRY: Limiter = Limiter::new(1).with_name("resize-pause-try");
    let running = PAUSE_TRY.try_acquire().expect("a free place");
    PAUSE_TRY.set_limit(0);
    drop(running);
    assert!(PAUSE_TRY.try_acquire().is_err(), "limit 0 admits nothing");
    PAUSE_TRY.set_limit(2);
    let a = PAUSE_TRY.try_acquire().expect("the limit grew to 2");
    let b = PAUSE_TRY.try_acquire().expect("the limit grew to 2");
    assert!(PAUSE_TRY.try_acquire().is_err(), "2 run, the limit is 2");
    drop((a, b));
}

// ---------------------------------------------------------------------------------------
// FIFO order, with no resize in flight.

#[concurrency_limit(1, name = "resize-fifo")]
async fn fifo(probe: &'static Probe, id: u32, release: oneshot::Receiver<()>) {
    probe.body(id, release).await;
}

#[test]
fn waiters_are_admitted_in_call_order_before_and_after_resizes() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(fifo(Box::leak(Box::default()), 0, oneshot::channel().1));
    let limiter = limiter_of("resize-fifo");
    let mut rig = Rig::new(&limiter, |p, id, r| Box::pin(fifo(p, id, r)));
    // Made in an order that is not the id order, so the check is about calls, not ids.
    let made = [5, 3, 9, 0, 7, 1, 8, 2, 6, 4, 11, 10];
    rig.calls(made);
    rig.finish(5);
    rig.finish(3);

    // A grow hands the new places to the oldest waiters.
    rig.limiter.set_limit(3);
    rig.poll_all();
    assert_eq!(rig.running(), [9, 0, 7]);

    // A shrink whose debt is paid leaves the queue in order.
    rig.limiter.set_limit(1);
    rig.finish(9);
    rig.finish(0);
    assert_eq!(rig.running(), [7], "the debt is paid by returning calls");
    rig.finish(7);
    while !rig.running().is_empty() {
        let running = rig.running();
        assert_eq!(running.len(), 1, "the limit is 1");
        rig.finish(running[0]);
    }
    assert_eq!(rig.admission_order(), made);
    assert_eq!(rig.limiter.in_flight(), 0);
}

// ---------------------------------------------------------------------------------------
// `key = …`: `set_limit` changes every key's limit, including keys created afterwards.

#[concurrency_limit(2, key = key, name = "resize-keyed")]
async fn keyed(key: u32, probe: &'static Probe, id: u32, release: oneshot::Receiver<()>) {
    probe.body(id, release).await;
}

/// Calls of key `k` have ids `100 * k ..`.
fn keyed_call(
    probe: &'static Probe,
    id: u32,
    release: oneshot::Receiver<()>,
) -> BoxFuture<'static, ()> {
    Box::pin(keyed(id / 100, probe, id, release))
}

fn of_key(ids: Vec<u32>, key: u32) -> Vec<u32> {
    ids.into_iter().filter(|id| id / 100 == key).collect()
}

#[test]
fn set_limit_changes_the_limit_of_every_key() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(keyed(0, Box::leak(Box::default()), 0, oneshot::channel().1));
    let limiter = limiter_of("resize-keyed");
    let mut rig = Rig::new(&limiter, keyed_call);
    // Keys 0 and 1: 2 running and 2 waiting each.
    rig.calls([0, 1, 2, 3, 100, 101, 102, 103]);
    assert_eq!(rig.running(), [0, 1, 100, 101]);
    assert_eq!(limiter.stats().active_keys, 2);

    // Grow: each key admits one more waiter at once.
    limiter.set_limit(3);
    assert_eq!(limiter.limit(), 3);
    assert_eq!(rig.woken(), [2, 102]);
    rig.poll_all();
    assert_eq!(rig.running(), [0, 1, 100, 101, 2, 102]);

    // Shrink: nothing is revoked, and each key starts a call only below 1.
    limiter.set_limit(1);
    rig.finish(0);
    rig.finish(1);
    assert_eq!(of_key(rig.running(), 0), [2], "key 0 is at its new limit");
    rig.finish(2);
    assert_eq!(
        of_key(rig.running(), 0),
        [3],
        "key 0 is below its new limit"
    );
    assert_eq!(
        of_key(rig.running(), 1),
        [100, 101, 102],
        "key 1 still above"
    );
    rig.finish(100);
    rig.finish(101);
    assert_eq!(of_key(rig.running(), 1), [102]);

    // A key created after the change gets the new limit.
    rig.calls([200, 201]);
    assert_eq!(of_key(rig.running(), 2), [200]);
    assert_eq!(of_key(rig.waiting(), 2), [201]);

    // Limit 0 pauses every key, old and new, until the limit grows.
    limiter.set_limit(0);
    rig.finish(3);
    rig.finish(102);
    rig.finish(200);
    rig.calls([300, 4]);
    rig.poll_all();
    assert!(rig.running().is_empty());
    assert_eq!(rig.waiting(), [4, 103, 201, 300]);
    limiter.set_limit(2);
    assert_eq!(rig.woken(), [4, 103, 201, 300]);
    rig.poll_all();
    rig.calls([5, 6]);
    assert_eq!(rig.running(), [4, 103, 201, 300, 5]);
    assert_eq!(rig.waiting(), [6]);
    rig.finish_all();
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(limiter.stats().active_keys, 0);
}

// ---------------------------------------------------------------------------------------
// Under load: a scripted sequence of resizes against tasks calling in loops.

const MAX_KEYS: usize = 3;
const MAX_TASKS: usize = 64;

/// Shared by the bodies and the controller of one load test.
struct Load {
    keys: usize,
    /// Bodies running now, per key.
    gauges: [Gauge; MAX_KEYS],
    /// `phase << 1 | settled`: a phase starts with a resize and is settled once every key
    /// was seen at or below the phase's limit after a `poll_fence`.
    epoch: AtomicUsize,
    /// The limit of the current phase; written before the phase is marked settled.
    limit: AtomicUsize,
    /// Per phase and key: the most bodies a body saw running (itself included) when it
    /// started in the settled part of the phase.
    settled_peak: Vec<[AtomicUsize; MAX_KEYS]>,
    /// In the stress test: a bound that holds at every moment, settled or not.
    hard_cap: usize,
    violations: Mutex<Vec<String>>,
    /// Bodies started.
    entries: AtomicU64,
    /// Per caller task: incremented as each poll of the task starts and as it ends, so odd
    /// while the task is being polled (see `poll_fence`).
    polls: Vec<AtomicU64>,
    stop: AtomicBool,
}

impl Load {
    fn leak(keys: usize, phases: usize, hard_cap: usize) -> &'static Self {
        assert!(keys <= MAX_KEYS);
        Box::leak(Box::new(Self {
            keys,
            gauges: [const { Gauge::new() }; MAX_KEYS],
            epoch: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
            settled_peak: (0..phases)
                .map(|_| [const { AtomicUsize::new(0) }; MAX_KEYS])
                .collect(),
            hard_cap,
            violations: Mutex::new(Vec::new()),
            entries: AtomicU64::new(0),
            polls: (0..MAX_TASKS).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
        }))
    }

    /// The body of every limited function of the load tests: `hold` keeps it running until
    /// released; without one it yields a few times, so bodies overlap.
    async fn body(&self, key: usize, hold: Option<oneshot::Receiver<()>>) {
        let before = self.epoch.load(SeqCst);
        let limit = self.limit.load(SeqCst);
        let _running = self.gauges[key].enter();
        let now = self.gauges[key].current();
        let after = self.epoch.load(SeqCst);
        self.entries.fetch_add(1, SeqCst);
        if now > self.hard_cap {
            self.violation(format!(
                "key {key}: {now} running, above every limit ever set"
            ));
        }
        // The epoch did not change around the reading, so the phase was settled at its
        // limit for the whole time this body was being admitted.
        if before == after && before & 1 == 1 {
            let phase = before >> 1;
            self.settled_peak[phase][key].fetch_max(now, SeqCst);
            if now > limit {
                self.violation(format!(
                    "phase {phase}, key {key}: {now} running after settling at limit {limit}"
                ));
            }
        }
        match hold {
            Some(hold) => drop(hold.await),
            None => {
                for _ in 0..3 {
                    limit_suite::yield_now().await;
                }
            }
        }
    }

    fn violation(&self, what: String) {
        let mut violations = lock(&self.violations);
        if violations.len() < 20 {
            violations.push(what);
        }
    }

    fn assert_no_violation(&self) {
        let violations = lock(&self.violations);
        assert!(violations.is_empty(), "limit exceeded: {violations:#?}");
    }
}

type LoadCall = fn(&'static Load, usize, Option<oneshot::Receiver<()>>) -> BoxFuture<'static, ()>;

/// Waits, polling every millisecond, until `done` holds; a hang fails the test.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = timeout(HANG, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// Starts `tasks` tasks that call `call` in a loop until `load.stop`; each returns how many
/// of its calls completed. Task `i` uses key `i % load.keys`.
fn start_callers(
    load: &'static Load,
    call: LoadCall,
    tasks: usize,
) -> Vec<tokio::task::JoinHandle<u64>> {
    assert!(tasks <= MAX_TASKS);
    (0..tasks)
        .map(|i| {
            tokio::spawn(CountPolls {
                polls: &load.polls[i],
                inner: Box::pin(async move {
                    let mut completed = 0;
                    while !load.stop.load(SeqCst) {
                        call(load, i % load.keys, None).await;
                        completed += 1;
                    }
                    completed
                }),
            })
        })
        .collect()
}

/// A caller task, counting its polls in `Load::polls`.
struct CountPolls {
    polls: &'static AtomicU64,
    inner: BoxFuture<'static, u64>,
}

impl Future for CountPolls {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        self.polls.fetch_add(1, SeqCst);
        let polled = self.inner.as_mut().poll(cx);
        self.polls.fetch_add(1, SeqCst);
        polled
    }
}

/// Waits until every poll of a caller task that was under way when this is called has
/// ended. A call admitted before a resize enters its body in the same poll (the permit and
/// the body's first statement are not separated by an `.await`), so after the fence every
/// call admitted before the resize shows in the gauges, and a gauge reading at or below the
/// new limit means the permits held are too.
async fn poll_fence(load: &'static Load) {
    let under_way: Vec<(usize, u64)> = load
        .polls
        .iter()
        .map(|polls| polls.load(SeqCst))
        .enumerate()
        .filter(|(_, polls)| polls % 2 == 1)
        .collect();
    wait_until("the polls under way end", || {
        under_way
            .iter()
            .all(|&(task, then)| load.polls[task].load(SeqCst) != then)
    })
    .await;
}

/// Stops the callers, waits for them and for the limiter, and checks that every call made
/// was admitted once: as many bodies started as calls completed, and as the limiter counted.
async fn stop_callers(
    load: &'static Load,
    limiter: &Limiter,
    admitted_before: u64,
    callers: Vec<tokio::task::JoinHandle<u64>>,
) {
    load.stop.store(true, SeqCst);
    let mut completed = 0;
    for caller in callers {
        completed += timeout(HANG, caller)
            .await
            .expect("every caller stops")
            .expect("no caller panics");
    }
    assert_eq!(load.entries.load(SeqCst), completed, "one body per call");
    assert_eq!(
        limiter.stats().admitted - admitted_before,
        completed,
        "the limiter admitted each call once"
    );
}

/// Runs `script` against `tasks` callers: each step is a list of limits set back to back
/// (its last value is the phase's limit). After each phase settles, no key may run more
/// than the limit, and every key must reach it.
async fn scripted_resizes_under_load(
    limiter: &Limiter,
    call: LoadCall,
    keys: usize,
    tasks: usize,
    script: &[&[usize]],
) {
    const HOLD: u64 = 300;
    let load = Load::leak(keys, script.len() + 1, usize::MAX);
    // One call per key that is never polled keeps each key's limit state alive throughout.
    let keep: Vec<_> = (0..keys).map(|key| call(load, key, None)).collect();
    let admitted_before = limiter.stats().admitted;
    let callers = start_callers(load, call, tasks);

    for (index, steps) in script.iter().enumerate() {
        let phase = index + 1;
        let limit = *steps.last().expect("a step sets a limit");
        load.epoch.store(phase << 1, SeqCst);
        load.limit.store(limit, SeqCst);
        for &step in *steps {
            limiter.set_limit(step);
        }
        assert_eq!(limiter.limit(), limit);
        poll_fence(load).await;
        wait_until(&format!("phase {phase} settles at {limit}"), || {
            load.gauges[..keys].iter().all(|g| g.current() <= limit)
        })
        .await;
        load.epoch.store(phase << 1 | 1, SeqCst);
        if limit == 0 {
            wait_until(&format!("phase {phase}: every caller waits"), || {
                limiter.waiting() == tasks
            })
            .await;
            let entries = load.entries.load(SeqCst);
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert_eq!(limiter.waiting(), tasks);
            }
            assert_eq!(load.entries.load(SeqCst), entries, "limit 0 admits nothing");
            assert!(load.gauges.iter().all(|g| g.current() == 0));
        } else {
            let entries = load.entries.load(SeqCst);
            wait_until(&format!("phase {phase}: every key reaches {limit}"), || {
                load.entries.load(SeqCst) >= entries + HOLD
                    && load.settled_peak[phase][..keys]
                        .iter()
                        .all(|peak| peak.load(SeqCst) >= limit)
            })
            .await;
        }
        load.assert_no_violation();
    }

    stop_callers(load, limiter, admitted_before, callers).await;
    drop(keep);
    timeout(HANG, limiter.drain())
        .await
        .expect("the limiter drains");
    load.assert_no_violation();
    for (phase, peaks) in load.settled_peak.iter().enumerate().skip(1) {
        let limit = *script[phase - 1].last().expect("a limit");
        for peak in &peaks[..keys] {
            assert!(peak.load(SeqCst) <= limit);
        }
    }
    assert_eq!(limiter.in_flight(), 0);
}

/// From limit 4: grow, shrink, to 0, from 0, shrink then grow before the running calls end,
/// several shrinks then a grow, grow then shrink, and the same limit again.
const SCRIPT: &[&[usize]] = &[
    &[8],
    &[3],
    &[0],
    &[5],
    &[1, 6],
    &[2, 0, 4],
    &[7, 1],
    &[1],
    &[0],
    &[1],
    &[9],
    &[2],
];

static LOAD_STATIC: Limiter = Limiter::new(4).with_name("resize-load-static");

#[concurrency_limit(limiter = LOAD_STATIC)]
async fn load_static(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_transition_holds_under_load_on_a_static_limiter() {
    scripted_resizes_under_load(
        &LOAD_STATIC,
        |l, k, h| Box::pin(load_static(l, k, h)),
        1,
        24,
        SCRIPT,
    )
    .await;
}

#[concurrency_limit(4, name = "resize-load-fn")]
async fn load_fn(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_transition_holds_under_load_on_a_functions_limiter() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(load_fn(Load::leak(1, 0, 0), 0, None));
    let limiter = limiter_of("resize-load-fn");
    scripted_resizes_under_load(
        &limiter,
        |l, k, h| Box::pin(load_fn(l, k, h)),
        1,
        24,
        SCRIPT,
    )
    .await;
}

#[concurrency_limit(4, key = key, name = "resize-load-keyed")]
async fn load_keyed(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_transition_holds_under_load_for_every_key() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(load_keyed(Load::leak(1, 0, 0), 0, None));
    let limiter = limiter_of("resize-load-keyed");
    scripted_resizes_under_load(
        &limiter,
        |l, k, h| Box::pin(load_keyed(l, k, h)),
        3,
        36,
        SCRIPT,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Randomized stress: concurrent resizes from several tasks, then a final limit that must
// hold exactly.

/// xorshift64*: deterministic per seed, so a failure can be replayed.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Checks that exactly `limit` calls of `key` run at once: `limit` start, one more waits,
/// and it starts as soon as one of them ends.
fn assert_exactly_limit_run(load: &'static Load, call: LoadCall, key: usize, limit: usize) {
    let mut releases = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..=limit {
        let (release, hold) = oneshot::channel();
        let mut task = task::spawn(call(load, key, Some(hold)));
        assert_pending!(task.poll());
        releases.push(release);
        calls.push(task);
    }
    assert_eq!(
        load.gauges[key].current(),
        limit,
        "key {key}: the final limit is {limit}, so exactly {limit} run (no permit lost or duplicated)"
    );
    let mut releases = releases.into_iter();
    releases.next().expect("a call").send(()).expect("alive");
    assert_ready!(calls[0].poll());
    assert!(
        calls[limit].is_woken(),
        "a place freed up for the last call"
    );
    assert_pending!(calls[limit].poll());
    assert_eq!(load.gauges[key].current(), limit);
    drop(releases);
    for call in &mut calls[1..] {
        assert_ready!(call.poll());
    }
    assert_eq!(load.gauges[key].current(), 0);
}

/// `limiter` is `'static` (leaked, for a function's limiter): the resizers are spawned tasks.
async fn concurrent_random_resizes(
    limiter: &'static Limiter,
    call: LoadCall,
    keys: usize,
    tasks: usize,
    seed: u64,
) {
    const RESIZERS: u64 = 4;
    const RESIZES: usize = 400;
    const MAX_LIMIT: u64 = 8;
    const FINAL: usize = 3;
    let load = Load::leak(keys, 1, MAX_LIMIT as usize);
    let keep: Vec<_> = (0..keys).map(|key| call(load, key, None)).collect();
    let admitted_before = limiter.stats().admitted;
    let callers = start_callers(load, call, tasks);

    let resizers: Vec<_> = (0..RESIZERS)
        .map(|r| {
            tokio::spawn(async move {
                let mut state = seed ^ (r + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for i in 0..RESIZES {
                    let limit = next_random(&mut state) % (MAX_LIMIT + 1);
                    limiter.set_limit(usize::try_from(limit).expect("small"));
                    if i % 8 == 0 {
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for resizer in resizers {
        timeout(HANG, resizer)
            .await
            .expect("resizing never blocks")
            .expect("no resizer panics");
    }
    limiter.set_limit(FINAL);
    assert_eq!(limiter.limit(), FINAL);
    stop_callers(load, limiter, admitted_before, callers).await;
    load.assert_no_violation();

    // Only the never-polled calls are left, and they keep every key's state alive.
    assert_eq!(limiter.in_flight(), keys);
    assert_eq!(limiter.running(), 0);
    for key in 0..keys {
        assert_exactly_limit_run(load, call, key, FINAL);
    }
    drop(keep);
    timeout(HANG, limiter.drain())
        .await
        .expect("the limiter drains");
    assert_eq!(limiter.in_flight(), 0);
}

static STRESS_STATIC: Limiter = Limiter::new(4).with_name("resize-stress-static");

#[concurrency_limit(limiter = STRESS_STATIC)]
async fn stress_static(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_random_resizes_lose_and_duplicate_no_permit_on_a_static_limiter() {
    concurrent_random_resizes(
        &STRESS_STATIC,
        |l, k, h| Box::pin(stress_static(l, k, h)),
        1,
        24,
        0x5eed_0001,
    )
    .await;
    assert!(
        STRESS_STATIC.try_acquire().is_ok(),
        "a free place after drain"
    );
}

#[concurrency_limit(4, name = "resize-stress-fn")]
async fn stress_fn(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_random_resizes_lose_and_duplicate_no_permit_on_a_functions_limiter() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(stress_fn(Load::leak(1, 0, 0), 0, None));
    let limiter = limiter_of("resize-stress-fn");
    concurrent_random_resizes(
        Box::leak(Box::new(limiter)),
        |l, k, h| Box::pin(stress_fn(l, k, h)),
        1,
        24,
        0x5eed_0002,
    )
    .await;
}

#[concurrency_limit(4, key = key, name = "resize-stress-keyed")]
async fn stress_keyed(load: &'static Load, key: usize, hold: Option<oneshot::Receiver<()>>) {
    load.body(key, hold).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_random_resizes_lose_and_duplicate_no_permit_for_any_key() {
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(stress_keyed(Load::leak(1, 0, 0), 0, None));
    let limiter = limiter_of("resize-stress-keyed");
    concurrent_random_resizes(
        Box::leak(Box::new(limiter)),
        |l, k, h| Box::pin(stress_keyed(l, k, h)),
        3,
        36,
        0x5eed_0003,
    )
    .await;
}

/// Threads that take and return permits as fast as they can, racing threads that resize:
/// every release and every admission may land in the middle of a resize. No moment may see
/// more permits held than the largest limit ever set, and afterwards exactly the final
/// limit's worth of permits exists.
#[test]
fn resizes_racing_releases_on_threads_lose_and_duplicate_no_permit() {
    static THREADS: Limiter = Limiter::new(4).with_name("resize-threads");
    const MAX_LIMIT: u64 = 8;
    const RESIZES: usize = 100_000;
    const FINAL: usize = 3;
    let held = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let stopped = tokio::sync::Semaphore::new(0);
    let hold = |permit: limit_runtime::Permit<'static>| {
        let now = held.fetch_add(1, SeqCst) + 1;
        most.fetch_max(now, SeqCst);
        std::hint::spin_loop();
        held.fetch_sub(1, SeqCst);
        drop(permit);
    };
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !stop.load(SeqCst) {
                    match THREADS.try_acquire() {
                        Ok(permit) => hold(permit),
                        Err(_) => std::thread::yield_now(),
                    }
                }
            });
        }
        // Waiters too, so that permits are also handed to queued calls mid-resize. They
        // give up when told to stop, so a lost permit fails the check below, not a hang.
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(SeqCst) {
                    let permit = futures::executor::block_on(async {
                        let acquire = pin!(THREADS.acquire());
                        match select(acquire, pin!(stopped.acquire())).await {
                            Either::Left((permit, _)) => Some(permit),
                            Either::Right(_) => None,
                        }
                    });
                    if let Some(permit) = permit {
                        hold(permit);
                    }
                }
            });
        }
        let resizers: Vec<_> = (0..2u64)
            .map(|r| {
                scope.spawn(move || {
                    let mut state = 0x5eed_0010 + r;
                    for _ in 0..RESIZES {
                        let limit = next_random(&mut state) % (MAX_LIMIT + 1);
                        THREADS.set_limit(usize::try_from(limit).expect("small"));
                    }
                })
            })
            .collect();
        for resizer in resizers {
            resizer.join().expect("no resizer panics");
        }
        // The waiters stop once they get a permit: the final limit lets them.
        THREADS.set_limit(FINAL);
        stop.store(true, SeqCst);
        stopped.close();
    });
    let most = most.load(SeqCst);
    assert!(
        most <= MAX_LIMIT as usize,
        "{most} permits held at once, above every limit ever set"
    );
    assert_eq!(THREADS.running(), 0);
    for round in 0..2 {
        let permits: Vec<_> = (0..FINAL)
            .map(|i| {
                THREADS
                    .try_acquire()
                    .unwrap_or_else(|_| panic!("round {round}: permit {i} of {FINAL} was lost"))
            })
            .collect();
        assert!(
            THREADS.try_acquire().is_err(),
            "round {round}: more than {FINAL} permits exist"
        );
        drop(permits);
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent resizes of a keyed function leave every key at the limit `limit()` reports.
// (`Limiter::set_limit` once resized the gate and the keys under separate locks, so
//     A: gate 1 -> 3 | B: gate 3 -> 5 | B: keys -> 5 | A: keys -> 3
// left `limit()` at 5 while existing keys admitted 3.)
// ---------------------------------------------------------------------------------------

#[concurrency_limit(1, key = key, name = "resize-keyed-race")]
async fn keyed_race(key: u32, gauge: &'static Gauge, release: oneshot::Receiver<()>) {
    let _running = gauge.enter();
    std::hint::black_box(key);
    let _ = release.await;
}

#[test]
fn concurrent_set_limit_leaves_every_key_at_the_reported_limit() {
    let gauge: &'static Gauge = Box::leak(Box::new(Gauge::new()));
    // The first call registers the limiter; dropped unpolled, it is never admitted.
    drop(keyed_race(u32::MAX, gauge, oneshot::channel().1));
    let limiter = limiter_of("resize-keyed-race");
    // A call that is never polled keeps key 0's state alive across rounds.
    let keep = keyed_race(0, gauge, oneshot::channel().1);
    for round in 0..2_000 {
        limiter.set_limit(1);
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for limit in [3, 5] {
                let barrier = &barrier;
                let limiter = &limiter;
                scope.spawn(move || {
                    barrier.wait();
                    limiter.set_limit(limit);
                });
            }
            // Other keys' calls contend for the key map's lock, which widens the window.
            scope.spawn(move || {
                for key in 1..100 {
                    drop(keyed_race(key, gauge, oneshot::channel().1));
                }
            });
        });
        let limit = limiter.limit();
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let (release, hold) = oneshot::channel();
                let mut call = task::spawn(keyed_race(0, gauge, hold));
                assert_pending!(call.poll());
                (call, release)
            })
            .collect();
        assert_eq!(
            gauge.current(),
            limit,
            "round {round}: limit() is {limit}, so key 0 should admit {limit}"
        );
        drop(calls);
    }
    drop(keep);
}
