//! This crate's adaptive limit on the simulator (`limit_suite::sim::candidate`, an adapter
//! over the runtime's controller, `limit_runtime::__private::AdaptiveController`): the
//! adapter drives it as the runtime does (time, samples, a limit set by hand, on steps
//! computed by hand); the limit stays within its bounds whatever the samples (proptest); and
//! on the simulator it meets the goals of issue 17 that it meets (the others are explained in
//! `design/adaptive/controller.md`). Everything is simulated time: no assertion reads a wall
//! clock.
//!
//! The controller's own unit tests, each signal's step computed by hand, are in
//! `limit-runtime/src/adaptive/controller.rs`; the ones here that only repeated them (the
//! gradient, a drop, the probe, and `Adaptive`'s errors, tested in
//! `limit-runtime/src/adaptive/mod.rs`) went when the simulator's copy of the controller did.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use limit_runtime::Adaptive;
use limit_suite::sim::candidate::Candidate;
use limit_suite::sim::downstream::DownstreamSpec;
use limit_suite::sim::harness::{self, Fixed, Run};
use limit_suite::sim::load::LoadSpec;
use limit_suite::sim::metrics::{Measured, measure};
use limit_suite::sim::scenarios::{self, MAX_WAIT, SERVICE, Scenario};
use limit_suite::sim::table;
use limit_suite::sim::{Controller, Sample};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Feeds `n` calls that end at `now` after `rtt`, each admitted with `inflight` in flight;
/// returns what the last one answered (a round closes on its last call) and checks that the
/// others answered nothing.
fn round(
    c: &mut Candidate,
    now: Duration,
    rtt: Duration,
    inflight: usize,
    n: usize,
) -> Option<usize> {
    calls(c, now, rtt, inflight, n, false)
}

fn calls(
    c: &mut Candidate,
    now: Duration,
    rtt: Duration,
    inflight: usize,
    n: usize,
    dropped: bool,
) -> Option<usize> {
    let sample = Sample {
        rtt,
        inflight,
        dropped,
    };
    for _ in 1..n {
        assert_eq!(c.on_sample(now, sample), None, "a round closed early");
    }
    c.on_sample(now, sample)
}

/// A controller as the harness starts one: its first call admitted at the run's time 0.
fn started() -> Candidate {
    let mut c = Candidate::default();
    c.on_admit(Duration::ZERO, 1);
    c
}

/// The contender's name and start: the runtime's defaults, which follow from the bounds.
#[test]
fn defaults_follow_from_the_bounds() {
    let c = Candidate::default();
    assert_eq!(c.name(), "limit-runtime-adaptive");
    assert_eq!((c.initial_limit(), c.limit()), (4, 4));
    assert_eq!(c.baseline(), None);
    // `max = 2` starts at 2, `min = 8` at 8: the default is defined within the bounds.
    assert_eq!(Candidate::new(Adaptive::new().max(2)).initial_limit(), 2);
    assert_eq!(Candidate::new(Adaptive::new().min(8)).initial_limit(), 8);
    assert_eq!(
        Candidate::new(Adaptive::new().initial(50)).initial_limit(),
        50
    );
}

/// Slow start through the adapter: the simulator's `Duration`s are the controller's time
/// (from the first admission, at 0), a round is one smoothed RTT and at least a limit's
/// worth of calls, and an unqueued round in use doubles the limit.
#[test]
fn slow_start_doubles_each_unqueued_round() {
    let mut c = started();
    // The first call sets the round's length (100 ms); the round began at 0 and needs 4
    // calls: the 4th, at 100 ms, closes it. Mean 100 ms is the baseline, ratio 1 < 1.1,
    // peak 4 >= 0.9 × 4 − 1: 4 × 2 = 8.
    assert_eq!(round(&mut c, ms(100), ms(100), 4, 4), Some(8));
    assert_eq!(c.baseline(), Some(ms(100)));
    // The next round began at 100 ms: 8 calls back by 200 ms, ratio 1: 16.
    assert_eq!(round(&mut c, ms(200), ms(100), 8, 8), Some(16));
    // Not in use: 16 calls back but none admitted with more than 10 in flight
    // (10 < 0.9 × 16 − 1 = 13.4): nothing is learnt about a higher limit.
    assert_eq!(round(&mut c, ms(300), ms(100), 10, 16), None);
    assert_eq!(c.limit(), 16);
    // Still doubling (in slow start): an unqueued round in use, 16 calls back by 400 ms.
    assert_eq!(round(&mut c, ms(400), ms(100), 16, 16), Some(32));
}

/// A limit set by hand, at a simulator time, is where the controller goes on from: a round
/// at the tolerance keeps it.
#[test]
fn a_limit_set_by_hand_is_kept() {
    let mut c = started();
    assert_eq!(round(&mut c, ms(100), ms(100), 4, 4), Some(8));
    c.set_limit(ms(150), 50);
    assert_eq!(c.limit(), 50);
    // The set starts a new round at 150 ms (in the gradient: half a limit of calls over
    // 0.9 × 100 ms). 25 calls (half of 50) at 130 ms, ratio 1.3: target 50 × 1.3 / 1.3 = 50,
    // no change.
    assert_eq!(round(&mut c, ms(300), ms(130), 50, 25), None);
    assert_eq!(c.limit(), 50);
    // Outside the bounds, it is clamped.
    c.set_limit(ms(300), 5000);
    assert_eq!(c.limit(), 1000);
    c.set_limit(ms(300), 0);
    assert_eq!(c.limit(), 1);
}

proptest! {
    /// Whatever the samples, every limit it answers, and the one it holds, is within
    /// `[min, max]`, and it starts within them.
    #[test]
    fn the_limit_stays_within_its_bounds(
        min in 1usize..10,
        span in 0usize..200,
        samples in prop::collection::vec((1u64..2_000, 1usize..400, any::<bool>(), 0u64..50), 1..400),
    ) {
        let max = min + span;
        let mut c = Candidate::new(Adaptive::new().min(min).max(max));
        prop_assert!((min..=max).contains(&c.initial_limit()));
        let mut now = Duration::ZERO;
        for (rtt, inflight, dropped, gap) in samples {
            now += ms(gap);
            let sample = Sample { rtt: ms(rtt), inflight, dropped };
            if let Some(limit) = c.on_sample(now, sample) {
                prop_assert!((min..=max).contains(&limit), "{limit} outside [{min}, {max}]");
            }
            prop_assert!((min..=max).contains(&c.limit()));
        }
    }
}

/// The candidate, and the fixed limit that is the scenario's oracle, measured.
fn against_oracle(scenario: &Scenario, oracle: usize) -> (Measured, Measured) {
    let fixed = measure(scenario, &harness::run(scenario, Box::new(Fixed(oracle))));
    let candidate = measure(
        scenario,
        &harness::run(scenario, Box::new(Candidate::default())),
    );
    (candidate, fixed)
}

/// The table's pass on every scenario, against the oracle the bench finds for each (the
/// bench runs the whole sweep; these are its winners), the two services included.
#[test]
fn passes_every_scenario() {
    for (scenario, oracle) in [
        (scenarios::hard_limit(), 5),
        (scenarios::shallow_knee(), 40),
        (scenarios::jittery(), 20),
        (scenarios::capacity_drop(), 50),
        (scenarios::drift(), 10),
        (scenarios::burst(), 20),
        (scenarios::two_services(), 11),
    ] {
        let (m, o) = against_oracle(&scenario, oracle);
        assert!(
            table::passes(&m, o.throughput, o.p99),
            "{}: {m:?} against {o:?}",
            scenario.name
        );
    }
}

/// The drift scenario's service time doubles over 10 minutes: the baseline follows it
/// (within 25% at the end), through the probes.
#[test]
fn the_baseline_follows_a_real_drift() {
    let scenario = scenarios::drift();
    let (_, baselines) = baselines(&scenario);
    let (_, last) = baselines.last().copied().expect("samples");
    let ratio = last.as_secs_f64() / (2.0 * SERVICE.as_secs_f64());
    assert!((0.75..=1.25).contains(&ratio), "{last:?}");
}

/// On the jittery link the limit varies by at most 15% (time-weighted, steady state).
#[test]
fn the_limit_is_steady_on_the_jittery_link() {
    let scenario = scenarios::jittery();
    let m = measure(
        &scenario,
        &harness::run(&scenario, Box::new(Candidate::default())),
    );
    assert!(m.cv <= 0.15, "{m:?}");
}

/// 100 servers, 1.5× their load, from `initial = 1`: the limit reaches the knee (90 or
/// more: within 10% of it) within 12 unloaded RTTs.
#[test]
fn ramps_from_1_to_a_knee_at_100_within_12_rtts() {
    let scenario = Scenario {
        name: "ramp-100",
        about: "100 servers, constant 100 ms, FIFO queue; 1500 req/s; from 1",
        downstreams: vec![DownstreamSpec::new(100, SERVICE)],
        load: LoadSpec::poisson(1500.0, MAX_WAIT),
        duration: secs(3),
        converge: vec![(Duration::ZERO, secs(3))],
        steady: vec![(secs(2), secs(3))],
        seed: 17,
    };
    let candidate = Candidate::new(Adaptive::new().initial(1));
    let run = harness::run(&scenario, Box::new(candidate));
    let reached = run
        .limits
        .iter()
        .find(|&&(_, limit)| limit >= 90)
        .map(|&(at, _)| at);
    let rtts = reached.map(|at| at.as_secs_f64() / SERVICE.as_secs_f64());
    assert!(
        rtts.is_some_and(|r| r <= 12.0),
        "{rtts:?}: {:?}",
        run.limits
    );
}

/// Records the candidate's baseline at each sample.
struct Recorded {
    inner: Candidate,
    baselines: Rc<RefCell<Vec<(Duration, Duration)>>>,
}

impl Controller for Recorded {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn initial_limit(&self) -> usize {
        self.inner.initial_limit()
    }
    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        let new = self.inner.on_sample(now, sample);
        if let Some(baseline) = self.inner.baseline() {
            self.baselines.borrow_mut().push((now, baseline));
        }
        new
    }
}

fn baselines(scenario: &Scenario) -> (Run, Vec<(Duration, Duration)>) {
    let baselines = Rc::new(RefCell::new(Vec::new()));
    let controller = Recorded {
        inner: Candidate::default(),
        baselines: Rc::clone(&baselines),
    };
    let run = harness::run(scenario, Box::new(controller));
    let out = baselines.borrow().clone();
    (run, out)
}

/// Ten simulated minutes of overload (5 servers, 1.2× their load, constant 100 ms): after
/// the first probe the baseline stays within 25% of the true unloaded RTT, however long the
/// queue lasts.
#[test]
fn the_baseline_does_not_drift_in_ten_minutes_of_overload() {
    let scenario = Scenario {
        name: "overload-10min",
        about: "5 servers, constant 100 ms, FIFO queue; 60 req/s for 10 minutes",
        downstreams: vec![DownstreamSpec::new(5, SERVICE)],
        load: LoadSpec::poisson(60.0, MAX_WAIT),
        duration: secs(600),
        converge: vec![(Duration::ZERO, secs(600))],
        steady: vec![(secs(300), secs(600))],
        seed: 18,
    };
    let (run, baselines) = baselines(&scenario);
    let drift = baselines
        .iter()
        .filter(|(at, _)| *at >= secs(10))
        .map(|(_, b)| (b.as_secs_f64() / SERVICE.as_secs_f64() - 1.0).abs())
        .fold(0.0, f64::max);
    assert!(drift <= 0.25, "drift {drift}");
    // And it was overloaded all along: a third of the callers gave up, or were queued.
    let m = measure(&scenario, &run);
    assert!(m.throughput >= 0.95 * 50.0, "{m:?}");
}
