//! Runs one scenario against one controller: a real [`Limiter`] whose limit the controller
//! moves with `set_limit`, every call through its `acquire`, the downstream and the load of
//! the scenario, all on a current-thread tokio runtime with a paused clock and the
//! scenario's seed. Nothing reads the wall clock, so a run is a function of its inputs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use limit_runtime::Limiter;
use tokio::task::LocalSet;
use tokio::time::{Instant, sleep_until, timeout};

use super::downstream::{Downstream, Outcome};
use super::rng::SplitMix64;
use super::scenarios::Scenario;
use super::{Controller, Sample};

/// A fixed limit: the contender every oracle sweep is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed(pub usize);

impl Controller for Fixed {
    fn name(&self) -> String {
        format!("fixed-{}", self.0)
    }

    fn initial_limit(&self) -> usize {
        self.0
    }

    fn on_sample(&mut self, _now: Duration, _sample: Sample) -> Option<usize> {
        None
    }
}

/// How one call ended, as its caller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Served by the downstream.
    Served,
    /// Refused by the downstream as overloaded (a 503).
    Dropped,
    /// Its caller gave up waiting in the limiter (`max_wait`).
    Refused,
    /// Admitted, still running when the run ended: its latency is at least its age.
    Unfinished,
    /// Still waiting in the limiter when the run ended: not counted anywhere.
    Waiting,
}

/// One call of a run. Times are since the run began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When its caller made it.
    pub arrival: Duration,
    /// When it ended (for its caller: served, dropped or given up), or the run's end.
    pub end: Duration,
    /// How.
    pub fate: Fate,
}

impl CallRecord {
    /// The latency its caller felt: from arrival to end, the wait in the limiter included.
    #[must_use]
    pub fn latency(&self) -> Duration {
        self.end - self.arrival
    }
}

/// Everything a run recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The contender's name.
    pub contender: String,
    /// Every call, in arrival order.
    pub calls: Vec<CallRecord>,
    /// The limit as a step function: from each time on, that limit (the first at zero).
    /// Several changes at one instant are kept as the last.
    pub limits: Vec<(Duration, usize)>,
}

/// What the tasks of one run share (one thread: `Rc` and cells).
struct Shared {
    limiter: Limiter,
    controller: RefCell<Box<dyn Controller>>,
    downstreams: Vec<Downstream>,
    calls: RefCell<Vec<CallRecord>>,
    limits: RefCell<Vec<(Duration, usize)>>,
    limit: Cell<usize>,
    /// Admitted calls not ended yet: the `inflight` of a [`Sample`].
    inflight: Cell<usize>,
    start: Instant,
    max_wait: Duration,
}

impl Shared {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Applies a controller's answer: a new limit, at least 1, set on the real limiter.
    fn apply(&self, now: Duration, new: Option<usize>) {
        let Some(new) = new else { return };
        let new = new.clamp(1, Limiter::MAX_LIMIT);
        if new == self.limit.get() {
            return;
        }
        self.limit.set(new);
        self.limiter.set_limit(new);
        let mut limits = self.limits.borrow_mut();
        match limits.last_mut() {
            Some(last) if last.0 == now => last.1 = new,
            _ => limits.push((now, new)),
        }
    }

    fn end_call(&self, id: usize, fate: Fate) {
        let mut calls = self.calls.borrow_mut();
        calls[id].end = self.now();
        calls[id].fate = fate;
    }
}

/// Gives each run's limiter a name of its own (limiters made at run time are listed by
/// name while they live; the names are never printed in the table).
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs `scenario` with `controller` driving the limit, to the scenario's end.
///
/// # Panics
///
/// If the tokio runtime cannot be built.
#[must_use]
pub fn run(scenario: &Scenario, controller: Box<dyn Controller>) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    let local = LocalSet::new();
    let run = local.block_on(&runtime, simulate(scenario, controller));
    // The calls still in flight are dropped here, with the runtime still there for their
    // timers.
    drop(local);
    run
}

async fn simulate(scenario: &Scenario, controller: Box<dyn Controller>) -> Run {
    let start = Instant::now();
    let mut rng = SplitMix64::new(scenario.seed);
    let mut arrivals = rng.fork();
    let downstreams = scenario
        .downstreams
        .iter()
        .map(|spec| Downstream::new(spec.clone(), start, rng.fork()))
        .collect();
    let contender = controller.name();
    let initial = controller.initial_limit().clamp(1, Limiter::MAX_LIMIT);
    let tick = controller.tick();
    let serial = RUNS.fetch_add(1, Ordering::Relaxed);
    let shared = Rc::new(Shared {
        limiter: Limiter::new(initial)
            .with_owned_name(format!("sim/{}/{contender}/{serial}", scenario.name)),
        controller: RefCell::new(controller),
        downstreams,
        calls: RefCell::new(Vec::new()),
        limits: RefCell::new(vec![(Duration::ZERO, initial)]),
        limit: Cell::new(initial),
        inflight: Cell::new(0),
        start,
        max_wait: scenario.load.max_wait,
    });

    for index in 0..shared.downstreams.len() {
        let shared = Rc::clone(&shared);
        tokio::task::spawn_local(async move { shared.downstreams[index].follow_capacity().await });
    }
    if let Some(period) = tick.filter(|p| !p.is_zero()) {
        let shared = Rc::clone(&shared);
        let end = scenario.duration;
        tokio::task::spawn_local(async move {
            let mut at = period;
            while at < end {
                sleep_until(shared.start + at).await;
                let new = shared.controller.borrow_mut().on_tick(at);
                shared.apply(at, new);
                at += period;
            }
        });
    }

    let mut at = Duration::ZERO;
    loop {
        at = scenario.load.next_arrival(at, &mut arrivals);
        if at >= scenario.duration {
            break;
        }
        sleep_until(start + at).await;
        let id = {
            let mut calls = shared.calls.borrow_mut();
            calls.push(CallRecord {
                arrival: at,
                end: scenario.duration,
                fate: Fate::Waiting,
            });
            calls.len() - 1
        };
        tokio::task::spawn_local(call(Rc::clone(&shared), id));
    }
    sleep_until(start + scenario.duration).await;

    let calls = std::mem::take(&mut *shared.calls.borrow_mut());
    let limits = std::mem::take(&mut *shared.limits.borrow_mut());
    Run {
        contender,
        calls,
        limits,
    }
}

/// One call: waits in the limiter (at most `max_wait`), tells the controller it was
/// admitted, calls the downstream its turn names, gives its permit back, then gives the
/// controller its sample (the permit first, as Netflix's limiter decrements its in-flight
/// count before `onSample`; a waiter is then admitted under the limit in force).
async fn call(shared: Rc<Shared>, id: usize) {
    let Ok(permit) = timeout(shared.max_wait, shared.limiter.acquire()).await else {
        shared.end_call(id, Fate::Refused);
        return;
    };
    let admitted = Instant::now();
    let inflight = shared.inflight.get() + 1;
    shared.inflight.set(inflight);
    shared.calls.borrow_mut()[id].fate = Fate::Unfinished;
    shared
        .controller
        .borrow_mut()
        .on_admit(shared.now(), inflight);

    let downstream = &shared.downstreams[id % shared.downstreams.len()];
    let outcome = downstream.call().await;

    shared.inflight.set(shared.inflight.get() - 1);
    drop(permit);
    let now = shared.now();
    let dropped = outcome == Outcome::Dropped;
    shared.end_call(id, if dropped { Fate::Dropped } else { Fate::Served });
    let sample = Sample {
        rtt: admitted.elapsed(),
        inflight,
        dropped,
    };
    let new = shared.controller.borrow_mut().on_sample(now, sample);
    shared.apply(now, new);
}

/// The adaptive contenders the bench runs beside the fixed limits: one fresh instance of
/// each anchor at its published defaults ([`super::anchors::all`]), then this crate's
/// adaptive limit at its defaults: the runtime's controller, through
/// [`super::candidate::Candidate`].
#[must_use]
pub fn anchors() -> Vec<Box<dyn Controller>> {
    let mut all = super::anchors::all();
    all.push(Box::new(super::candidate::Candidate::default()));
    all
}
