//! This crate's own adaptive controller, as a simulator contender (`"limit-runtime"` in the
//! table). `design/adaptive/controller.md` explains the algorithm, its parameters and its
//! scores.
//!
//! **The runtime's controller (`limit-runtime/src/adaptive/controller.rs`) is the port of
//! this one, decision for decision, and the two must stay equal** until the simulator runs
//! the real adaptive limiter (issue 17's next step): the table measures this copy, so a
//! change here that the port does not get (or the reverse) means the table no longer
//! describes what users run. Change both, and the hand-computed steps in
//! `tests/adaptive_candidate.rs` and in the port's unit tests, together.
//!
//! In a paragraph: the samples are gathered in *rounds* of about one RTT (TCP acts once per
//! round trip), and a round counts only the calls admitted under the limit in force, so that
//! a decision never judges again the queue that an older, higher limit built. A round's mean
//! RTT is compared with a *baseline*, the unloaded RTT. While the ratio stays near 1 and the
//! limit is in use, the limit doubles each round (TCP slow start, RFC 5681): 1 reaches 100
//! in under 12 rounds. Afterwards it moves by a damped gradient towards
//! `limit · tolerance / ratio` (Netflix `Gradient2`'s form, but against the baseline rather
//! than a long average of the RTT, which follows the queue it judges). A round with a drop
//! (an output marked as overload) backs off multiplicatively (AIMD); a round at twice the
//! baseline is a collapse and takes the gradient's target undamped; two rounds under the
//! baseline restart slow start. The baseline goes down with faster rounds, weighted by their
//! calls; it goes up only in slow start and through a short *probe*: every `probe_interval`
//! the limit dips to `probe_factor` of itself until a round of calls admitted under the dip
//! is back, and that round's mean becomes the baseline, by at most [`PROBE_RISE`] per probe
//! (BBR's ProbeRTT, Cardwell et al., "BBR: Congestion-Based Congestion Control", ACM Queue
//! 2016; a dip to half for about two RTTs, not Envoy's pin to 3 and slow climb back).
//!
//! State is a dozen numbers (sums and counts, no window of samples), a sample costs a few
//! additions and compares, a round (one per RTT) a division and a few multiplications, and
//! time comes only from `now` and the samples' RTTs.

use std::time::Duration;

use super::{Controller, Sample};

/// The most one probe may raise the baseline by: a drift is slow, and a queue that a dip did
/// not drain is not a baseline.
pub const PROBE_RISE: f64 = 1.25;

/// The candidate's parameters. [`Default`] and [`CandidateConfig::new`] give the documented
/// defaults, which follow from the bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateConfig {
    /// The limit it starts from (default: 4, or the nearest bound when 4 is outside
    /// `[min, max]`: `max = 4` starts at 4).
    pub initial: usize,
    /// The lowest limit (default 1).
    pub min: usize,
    /// The highest limit (default 1000).
    pub max: usize,
    /// The ratio of a round's mean RTT to the baseline that the limit settles at: the
    /// queueing it accepts (default 1.3; not 1, because a shallow knee still serves more
    /// calls at 1.3, see `design/adaptive/controller.md`).
    pub tolerance: f64,
    /// Below this ratio a slow-start round counts as unqueued, and the limit doubles
    /// (default 1.1).
    pub slow_start_exit: f64,
    /// The weight of a gradient step (default 0.5: half-way to the gradient's target each
    /// round, which damps jitter without slowing a large correction much).
    pub smoothing: f64,
    /// The factor of a backoff after a round with drops (default 0.8).
    pub backoff: f64,
    /// How often the baseline is re-measured (default 10 s, BBR's ProbeRTT interval).
    pub probe_interval: Duration,
    /// The limit during a probe, as a fraction of the limit (default 0.5: well below
    /// `1 / tolerance`, so that the queue the tolerance allows drains, and so does one that
    /// a baseline too high allowed).
    pub probe_factor: f64,
    /// The shortest round (default 1 ms), so that a burst of fast calls is not judged on one.
    pub min_round: Duration,
    /// The caller feeds one call in this many (default 1: every call): a round's call
    /// counts are divided by it, the rest is unchanged (a round's mean is as good from a
    /// fixed share of its calls).
    pub sample_one_in: usize,
}

impl CandidateConfig {
    /// The defaults within `[min, max]`.
    ///
    /// # Panics
    ///
    /// If `min` is 0 or above `max` (the attribute reports these as errors).
    #[must_use]
    pub fn new(min: usize, max: usize) -> Self {
        assert!(min >= 1 && min <= max, "1 <= min <= max");
        Self {
            initial: 4usize.clamp(min, max),
            min,
            max,
            tolerance: 1.3,
            slow_start_exit: 1.1,
            smoothing: 0.5,
            backoff: 0.8,
            probe_interval: Duration::from_secs(10),
            probe_factor: 0.5,
            min_round: Duration::from_millis(1),
            sample_one_in: 1,
        }
    }

    /// The same, starting at `initial`.
    ///
    /// # Panics
    ///
    /// If `initial` is outside `[min, max]` (an error, not a clamp).
    #[must_use]
    pub fn initial(mut self, initial: usize) -> Self {
        assert!(
            (self.min..=self.max).contains(&initial),
            "initial within [min, max]"
        );
        self.initial = initial;
        self
    }
}

impl Default for CandidateConfig {
    fn default() -> Self {
        Self::new(1, 1000)
    }
}

/// The calls the first round, whose mean is the first baseline, needs at least.
const FIRST_ROUND: usize = 4;

/// A round whose mean RTT is this many baselines is a collapse, not jitter: the gradient
/// applies in full, undamped.
const SEVERE: f64 = 2.0;

/// A round's length in smoothed RTTs: a tenth short of one, so that a generation of calls
/// that all take exactly one RTT closes the round it began, rather than the next.
const ROUND: f64 = 0.9;

/// Which part of its cycle the controller is in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Doubling each round until the RTT rises.
    SlowStart,
    /// The damped gradient.
    Gradient,
    /// The baseline is being re-measured; the limit to go back to.
    Probe { restore: f64 },
}

/// This crate's controller (see the module's documentation).
#[derive(Clone, Debug)]
pub struct Candidate {
    config: CandidateConfig,
    /// The limit, kept as a float so that small steps add up.
    limit: f64,
    /// The limit last reported (the rounded `limit`).
    reported: usize,
    /// The unloaded RTT, in seconds; 0 until the first round.
    baseline: f64,
    /// The mean RTT of the last round, in seconds (the first call's until then): the next
    /// round's length.
    srtt: f64,
    phase: Phase,
    /// When the current round began.
    round_start: f64,
    /// The current round's sums: RTTs (seconds), calls, drops, largest in-flight.
    sum: f64,
    count: u32,
    drops: u32,
    peak: usize,
    /// When the baseline was last measured by a probe (or when the next probe is due,
    /// less `probe_interval`).
    probed: f64,
    /// Whether the last slow-start round was high (above `slow_start_exit`).
    high: bool,
    /// Unqueued gradient rounds in a row.
    low: u8,
}

impl Candidate {
    /// A controller with `config`.
    #[must_use]
    pub fn new(config: CandidateConfig) -> Self {
        Self {
            reported: config.initial,
            limit: config.initial as f64,
            baseline: 0.0,
            srtt: 0.0,
            phase: Phase::SlowStart,
            round_start: 0.0,
            sum: 0.0,
            count: 0,
            drops: 0,
            peak: 0,
            probed: 0.0,
            high: false,
            low: 0,
            config,
        }
    }

    /// The baseline (unloaded RTT) it estimates, once it has one.
    #[must_use]
    pub fn baseline(&self) -> Option<Duration> {
        (self.baseline > 0.0).then(|| Duration::from_secs_f64(self.baseline))
    }

    /// The limit now.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.reported
    }

    /// Whether it is still in slow start.
    #[must_use]
    pub fn in_slow_start(&self) -> bool {
        self.phase == Phase::SlowStart
    }

    /// A limit set by hand (the runtime's `set_limit`): the controller goes on from it, in
    /// its gradient (a probe under way is called off), with a new round.
    pub fn set_limit(&mut self, now: Duration, limit: usize) {
        let limit = limit.clamp(self.config.min, self.config.max);
        self.limit = limit as f64;
        self.reported = limit;
        self.phase = Phase::Gradient;
        self.high = false;
        self.low = 0;
        self.new_round(now.as_secs_f64());
    }

    /// Whether it is re-measuring its baseline.
    #[must_use]
    pub fn probing(&self) -> bool {
        matches!(self.phase, Phase::Probe { .. })
    }

    /// Sets the limit (clamped to the bounds) and starts a new round.
    fn set(&mut self, now: f64, limit: f64) -> Option<usize> {
        let (min, max) = (self.config.min as f64, self.config.max as f64);
        self.limit = limit.clamp(min, max);
        self.new_round(now);
        let rounded = (self.limit.round() as usize).clamp(self.config.min, self.config.max);
        if rounded == self.reported {
            return None;
        }
        self.reported = rounded;
        Some(rounded)
    }

    fn new_round(&mut self, now: f64) {
        self.round_start = now;
        self.sum = 0.0;
        self.count = 0;
        self.drops = 0;
        self.peak = 0;
    }

    /// Closes a round whose mean RTT is `mean`: the decision.
    fn decide(&mut self, now: f64, mean: f64) -> Option<usize> {
        let config = &self.config;
        if let Phase::Probe { restore } = self.phase {
            self.probed = now;
            self.phase = Phase::Gradient;
            if mean <= PROBE_RISE * self.baseline {
                // The round was admitted under the dip: its mean is the unloaded RTT.
                self.baseline = mean;
                return self.set(now, restore);
            }
            // Higher than a drift explains: the downstream got slower or lost servers just
            // now, and the dip did not drain it. The baseline rises by PROBE_RISE at most, so
            // that a queue never teaches it much; the limit stays at the dip for the gradient
            // to go on from; and another probe comes ten rounds on, once a passing queue has
            // drained.
            self.baseline *= PROBE_RISE;
            self.probed = now - config.probe_interval.as_secs_f64() + 10.0 * self.srtt;
            self.new_round(now);
            return None;
        }
        if self.drops > 0 {
            // A downstream that says "overloaded" is believed at once (AIMD's backoff).
            self.phase = Phase::Gradient;
            let limit = self.limit * config.backoff;
            return self.set(now, limit);
        }
        if self.baseline == 0.0 {
            self.baseline = mean;
        }
        let ratio = mean / self.baseline;
        let slow_start = self.phase == Phase::SlowStart;
        if ratio < 1.0 || (slow_start && ratio < config.slow_start_exit) {
            // A faster round lowers the baseline, weighted by its calls, so that one fast
            // call on a jittery link does not become the baseline (a minimum would: Vegas'
            // failure there). Only slow start's unqueued rounds, and the probes, raise it: a
            // queued round that raised it would be Gradient2's creep.
            let weight = 0.5 * (f64::from(self.count) / 32.0).min(1.0);
            self.baseline += weight * (mean - self.baseline);
        }
        // The limit is in use: a round whose calls never reached it says nothing about a
        // higher one (RFC 7661's rule for an application-limited sender).
        let in_use = self.peak as f64 >= 0.9 * self.limit - 1.0;
        if now - self.probed >= config.probe_interval.as_secs_f64() {
            // Half the limit, and at most three quarters of what the last round says the
            // downstream serves (its calls over its ratio, by Little's law), so that a dip
            // from far above the capacity (a limit that started there) drains it too. After
            // it, back to the limit, or to what the gradient would settle at if that is lower.
            let serves = self.limit / ratio.max(1.0);
            self.phase = Phase::Probe {
                restore: self.limit.min(config.tolerance * serves),
            };
            let dip = (self.limit * config.probe_factor)
                .min(0.75 * serves)
                .floor();
            return self.set(now, dip);
        }
        if slow_start {
            if ratio < config.slow_start_exit {
                self.high = false;
                if !in_use {
                    self.new_round(now);
                    return None;
                }
                let limit = 2.0 * self.limit;
                return self.set(now, limit);
            }
            if !self.high {
                // One high round may be noise (the first rounds are small, and a few calls
                // on a jittery link vary by 15%): hold the limit, and leave slow start only
                // if the next round is high too (HyStart's caution, RFC 9406, in its
                // simplest form).
                self.high = true;
                self.new_round(now);
                return None;
            }
            // Slow start ends in a queue of its own making, and if the limit started above
            // the capacity, its first rounds were queued too and the baseline is too high:
            // the first probe comes two rounds on (BBR drains after its startup for the
            // same reason).
            self.phase = Phase::Gradient;
            self.probed = now - config.probe_interval.as_secs_f64() + 2.0 * self.srtt;
        }
        if ratio < 1.0 && in_use {
            // Two rounds in a row faster than the baseline, at a limit in use: the capacity
            // is well above the limit (it came back, or slow start ended on a noisy round). Slow start again,
            // rather than the gradient's 15% a round (TCP restarts slow start for less).
            self.low = self.low.saturating_add(1);
            if self.low >= 2 {
                self.low = 0;
                self.high = false;
                self.phase = Phase::SlowStart;
                let limit = 2.0 * self.limit;
                return self.set(now, limit);
            }
        } else {
            self.low = 0;
        }
        let target = self.limit * config.tolerance / ratio;
        if target > self.limit && !in_use {
            self.new_round(now);
            return None;
        }
        if ratio >= SEVERE {
            // A round whose mean is twice the baseline is no jitter: the capacity fell.
            // Straight to the gradient's target (Little's law: what the downstream serves,
            // times the tolerance), or the queue the old limit built keeps every call slow
            // for as many rounds as halving steps take.
            return self.set(now, target);
        }
        // Up by at most half, down by at most half per round: one odd round cannot throw the
        // limit far; and half-way to that, which damps the jitter of the RTT.
        let target = target.clamp(0.5 * self.limit, 1.5 * self.limit);
        let limit = self.limit + config.smoothing * (target - self.limit);
        self.set(now, limit)
    }
}

impl Default for Candidate {
    fn default() -> Self {
        Self::new(CandidateConfig::default())
    }
}

impl Controller for Candidate {
    fn name(&self) -> String {
        "limit-runtime".to_owned()
    }

    fn initial_limit(&self) -> usize {
        self.config.initial
    }

    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        let now_s = now.as_secs_f64();
        let rtt = sample.rtt.as_secs_f64();
        if self.srtt == 0.0 {
            if rtt <= 0.0 {
                return None;
            }
            // The first call back is the fastest of the first ones, not a baseline: it only
            // sets the first round's length; the first round's mean is the baseline.
            self.srtt = rtt;
            self.probed = now_s;
        }
        // A call admitted above the limit now shows the queue of an older, higher limit:
        // judging it again would cut twice for one queue. (Not "admitted since the limit
        // moved": that keeps only the calls fast enough to be back already, and a slow
        // service behind the same limiter would never be seen.)
        if sample.inflight <= self.reported {
            self.sum += rtt;
            self.count += 1;
            self.drops += u32::from(sample.dropped);
            self.peak = self.peak.max(sample.inflight);
        }
        // A round lasts about one smoothed RTT (ROUND) and sees at least half a limit of calls
        // back; in slow start a whole limit, and in a probe a whole dip over one and a half
        // RTTs (with one call in N fed, N times fewer).
        // After a jump of the limit the first calls back are the fastest of those it let in,
        // and a round cut short would take their mean for the RTT (on a jittery link, a
        // baseline that is too low).
        let (rounds, calls) = match self.phase {
            Phase::Probe { .. } => (1.5, self.reported),
            Phase::SlowStart => (ROUND, self.reported),
            Phase::Gradient => (ROUND, self.reported.div_ceil(2)),
        };
        let mut calls = calls.div_ceil(self.config.sample_one_in.max(1));
        if self.baseline == 0.0 {
            // The first baseline is one round's mean: not one call's, on a jittery link.
            calls = calls.max(FIRST_ROUND);
        }
        let length = (rounds * self.srtt).max(self.config.min_round.as_secs_f64());
        if (self.count as usize) < calls.max(1) || now_s - self.round_start < length {
            return None;
        }
        let mean = self.sum / f64::from(self.count);
        if mean <= 0.0 {
            // Calls that took no time at all say nothing of a queue, and a baseline of 0
            // would make every ratio infinite (the runtime's copy has the same guard).
            self.new_round(now_s);
            return None;
        }
        self.srtt = mean;
        self.decide(now_s, mean)
    }
}
