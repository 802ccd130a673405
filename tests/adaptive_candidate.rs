//! This crate's adaptive controller (`limit_suite::sim::candidate`): each signal moves the
//! limit as documented, on steps computed by hand (the derivation is in the comment above
//! each expected value); the limit stays within its bounds whatever the samples (proptest);
//! and on the simulator it meets the goals of issue 17 that it meets (the others are
//! explained in `design/adaptive/controller.md`). Everything is simulated time: no assertion
//! reads a wall clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use limit_suite::sim::candidate::{Candidate, CandidateConfig, PROBE_RISE};
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

#[test]
fn defaults_follow_from_the_bounds() {
    let c = CandidateConfig::default();
    assert_eq!((c.initial, c.min, c.max), (4, 1, 1000));
    assert_eq!(Candidate::default().name(), "limit-runtime");
    assert_eq!(Candidate::default().initial_limit(), 4);
    // `max = 2` starts at 2, `min = 8` at 8: the default is defined within the bounds.
    assert_eq!(CandidateConfig::new(1, 2).initial, 2);
    assert_eq!(CandidateConfig::new(8, 100).initial, 8);
    assert_eq!(CandidateConfig::new(1, 100).initial(50).initial, 50);
}

#[test]
#[should_panic(expected = "initial within [min, max]")]
fn an_initial_outside_the_bounds_is_an_error() {
    let _ = CandidateConfig::new(2, 10).initial(11);
}

#[test]
#[should_panic(expected = "1 <= min <= max")]
fn a_min_of_zero_is_an_error() {
    let _ = CandidateConfig::new(0, 10);
}

/// Slow start: a round is one smoothed RTT and at least a limit's worth of calls; an
/// unqueued round in use doubles the limit.
#[test]
fn slow_start_doubles_each_unqueued_round() {
    let mut c = Candidate::default();
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
    assert!(c.in_slow_start());
}

/// Leaving slow start: one high round holds, a second one hands over to the gradient,
/// `limit + 0.5 × (limit × 1.3 / ratio − limit)`.
#[test]
fn a_queue_ends_slow_start_and_the_gradient_takes_over() {
    let mut c = Candidate::default();
    assert_eq!(round(&mut c, ms(100), ms(100), 4, 4), Some(8));
    assert_eq!(round(&mut c, ms(200), ms(100), 8, 8), Some(16));
    // Ratio 1.5 once: held (it may be noise). The round's mean (150 ms) is the next round's
    // length.
    assert_eq!(round(&mut c, ms(300), ms(150), 16, 16), None);
    assert!(c.in_slow_start());
    // Ratio 1.5 again, 150 ms later: target 16 × 1.3 / 1.5 = 13.87 (within [8, 24]), half-way
    // from 16: 14.93, reported as 15.
    assert_eq!(round(&mut c, ms(450), ms(150), 16, 16), Some(15));
    assert!(!c.in_slow_start());
    // The baseline did not move: a queued round never raises it.
    assert_eq!(c.baseline(), Some(ms(100)));
    // A gradient round needs half a limit of calls (8 of 15) over 150 ms. Ratio 1.3 is the
    // tolerance: target = limit, no move.
    assert_eq!(round(&mut c, ms(600), ms(130), 15, 8), None);
    assert_eq!(c.limit(), 15);
    // Ratio 1.8 (180 ms): target 14.93 × 1.3 / 1.8 = 10.79, half-way: 12.86, reported 13.
    assert_eq!(round(&mut c, ms(730), ms(180), 15, 8), Some(13));
    // Two rounds after slow start ended (at 450 ms + 2 × 150 ms) the first probe is due: the
    // next round closes, then dips. A faster round (90 ms; 7 calls, half of 13) first lowers
    // the baseline by 0.5 × 7 / 32 of the gap: 100 − 10 × 0.109375 = 98.90625 ms. The dip is
    // min(12.86 / 2, 0.75 × 12.86 / max(ratio, 1)) = 6.43, floored: 6.
    assert_eq!(round(&mut c, ms(930), ms(90), 13, 7), Some(6));
    assert!(c.probing());
    let baseline = c.baseline().expect("a baseline").as_secs_f64();
    assert!((baseline - 0.098_906_25).abs() < 1e-9, "{baseline}");
    // The probe round: 1.5 smoothed RTTs (135 ms; these end at 140) and 6 calls admitted
    // under the dip. They took 100 ms (within 1.25 of the baseline): that is the baseline,
    // and the limit comes back to min(12.86, 1.3 × 12.86 / 1) = 12.86, reported 13.
    assert_eq!(round(&mut c, ms(1070), ms(100), 6, 6), Some(13));
    assert_eq!(c.baseline(), Some(ms(100)));
    // A collapse: a round at 4 baselines (400 ms; 7 calls) is no jitter, so the gradient
    // applies undamped and unclamped: 12.86 × 1.3 / 4 = 4.18, reported 4.
    assert_eq!(round(&mut c, ms(1200), ms(400), 13, 7), Some(4));
}

/// A drop backs off by 0.8, calls admitted above the limit in force are not judged, and two
/// rounds faster than the baseline start slow start again.
#[test]
fn a_drop_backs_off_and_calls_above_the_limit_are_ignored() {
    let mut c = Candidate::default();
    assert_eq!(round(&mut c, ms(100), ms(100), 4, 4), Some(8));
    // Calls admitted with 20 in flight came from a higher limit: the round does not close
    // however many come back.
    assert_eq!(round(&mut c, ms(300), ms(100), 20, 50), None);
    // One dropped call among 8 fresh ones: 8 × 0.8 = 6.4, reported 6; slow start is over.
    assert_eq!(round(&mut c, ms(300), ms(100), 8, 7), None);
    assert_eq!(calls(&mut c, ms(300), ms(10), 8, 1, true), Some(6));
    assert!(!c.in_slow_start());

    // Two rounds faster than the baseline restart slow start. The first (3 calls, half of 6,
    // at 90 ms) lowers the baseline by 0.5 × 3 / 32 of the gap: 99.53 ms; ratio 0.904,
    // target 6.4 × 1.3 / 0.904 = 9.20, half-way: 7.80, reported 8.
    assert_eq!(round(&mut c, ms(400), ms(90), 6, 3), Some(8));
    assert!(!c.in_slow_start());
    // The second (4 calls): baseline 98.93 ms, ratio 0.91 again: slow start, 2 × 7.80 = 15.6.
    assert_eq!(round(&mut c, ms(500), ms(90), 8, 4), Some(16));
    assert!(c.in_slow_start());
}

/// The probe: every 10 s the limit dips to half (or below three quarters of what the
/// downstream serves), one round of calls admitted under the dip gives the baseline, and the
/// limit comes back; a probe that finds the RTT much higher raises the baseline by 1.25 at
/// most and keeps the dip.
#[test]
fn the_probe_measures_the_baseline_under_a_dip() {
    let mut c = Candidate::default();
    let mut now = ms(100);
    let mut limit = 4;
    // Slow start to 64 on unqueued 100 ms rounds.
    while limit < 64 {
        limit = round(&mut c, now, ms(100), limit, limit).expect("doubles");
        now += ms(100);
    }
    // Two rounds at ratio 1.3 leave slow start: target 64 × 1.3 / 1.3 = 64, no move; the
    // first probe is due two rounds on (at 1.0 s + 2 × 130 ms, less the interval).
    assert_eq!(round(&mut c, now, ms(130), 64, 64), None);
    now += ms(130);
    assert_eq!(round(&mut c, now, ms(130), 64, 64), None);
    assert!(!c.in_slow_start());
    // The round after next starts the probe: it serves 64 / 1.3 = 49.2, so the dip is
    // min(32, 0.75 × 49.2 = 36.9) = 32.
    now += ms(130);
    assert_eq!(round(&mut c, now, ms(130), 64, 32), None);
    now += ms(130);
    assert_eq!(round(&mut c, now, ms(130), 64, 32), Some(32));
    assert!(c.probing());
    // A probe round lasts 1.5 smoothed RTTs and a whole dip of calls admitted under it:
    // they took 110 ms, so the baseline rises to 110 ms (within 1.25 of 100) and the limit
    // comes back to min(64, 1.3 × 49.2 = 64).
    now += ms(195);
    assert_eq!(round(&mut c, now, ms(110), 32, 32), Some(64));
    assert_eq!(c.baseline(), Some(ms(110)));
    assert!(!c.probing());

    // Ten seconds on, a probe that finds 300 ms: the baseline rises by PROBE_RISE only and
    // the limit stays at the dip.
    now += secs(10);
    assert_eq!(round(&mut c, now, ms(143), 64, 32), Some(32));
    assert!(c.probing());
    now += ms(300);
    assert_eq!(round(&mut c, now, ms(300), 32, 32), None);
    let baseline = c.baseline().expect("a baseline").as_secs_f64();
    assert!((baseline - 0.110 * PROBE_RISE).abs() < 1e-9, "{baseline}");
    assert_eq!(c.limit(), 32);
}

/// A limit set by hand is where the controller goes on from: a round at the tolerance keeps
/// it.
#[test]
fn a_limit_set_by_hand_is_kept() {
    let mut c = Candidate::default();
    assert_eq!(round(&mut c, ms(100), ms(100), 4, 4), Some(8));
    c.set_limit(ms(150), 50);
    assert_eq!(c.limit(), 50);
    assert!(!c.in_slow_start());
    // 25 calls (half of 50) at 130 ms, ratio 1.3: target 50 × 1.3 / 1.3 = 50, no change.
    assert_eq!(round(&mut c, ms(300), ms(130), 50, 25), None);
    assert_eq!(c.limit(), 50);
    // Outside the bounds, it is clamped.
    c.set_limit(ms(300), 5000);
    assert_eq!(c.limit(), 1000);
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
        let mut c = Candidate::new(CandidateConfig::new(min, max));
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

/// Feeds the candidate one call in `n` (every n-th, so the run stays deterministic).
struct OneIn {
    inner: Candidate,
    n: usize,
    seen: usize,
}

impl Controller for OneIn {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn initial_limit(&self) -> usize {
        self.inner.initial_limit()
    }
    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        self.seen += 1;
        if self.seen.is_multiple_of(self.n) {
            self.inner.on_sample(now, sample)
        } else {
            None
        }
    }
}

/// Sampling one call in four keeps the pass with few calls a round (the hard limit of 5) and
/// with noisy calls (the jittery link). Not on the two services: there it overshoots in slow
/// start and fails on p99 (open, `design/adaptive/controller.md`).
#[test]
fn one_call_in_four_is_enough_for_a_queue_and_for_jitter() {
    for (scenario, oracle) in [(scenarios::hard_limit(), 5), (scenarios::jittery(), 20)] {
        let o = measure(&scenario, &harness::run(&scenario, Box::new(Fixed(oracle))));
        let config = CandidateConfig {
            sample_one_in: 4,
            ..CandidateConfig::default()
        };
        let sampled = OneIn {
            inner: Candidate::new(config),
            n: 4,
            seen: 0,
        };
        let m = measure(&scenario, &harness::run(&scenario, Box::new(sampled)));
        assert!(
            table::passes(&m, o.throughput, o.p99),
            "{}: {m:?} against {o:?}",
            scenario.name
        );
    }
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
    let candidate = Candidate::new(CandidateConfig::default().initial(1));
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
