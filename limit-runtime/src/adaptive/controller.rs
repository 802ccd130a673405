//! The adaptive controller: a plain state machine that turns samples (a call's RTT, the
//! calls in flight when it was admitted, whether the downstream called it overloaded) into
//! a limit. It owns no clock, no lock and no allocation; the call path (`state.rs`) feeds it
//! behind the core's lock and applies what it answers through the existing resizing.
//!
//! **This is the one copy of the controller.** It was designed on the simulator (issue 16's,
//! in the root package) and ported from its prototype decision for decision; the simulator
//! now scores this very controller, through `__private::AdaptiveController`
//! (`src/sim/candidate.rs` in the root package is an adapter that maps the simulator's time
//! to `Instant`s and its samples to [`Controller::on_sample`]'s arguments). So the table and
//! the goals in `design/adaptive/controller.md` measure what users run: a change here is
//! measured by `cargo bench --bench adaptive` and `tests/adaptive_candidate.rs`, and the
//! README's table and `docs/adaptive/*.svg` are regenerated with it. The tests below compute
//! each signal's step by hand.
//!
//! # The algorithm
//!
//! Samples are gathered in *rounds* of about one RTT (a tenth short of the smoothed RTT, and
//! at least half a limit of calls back), and a round counts only the calls admitted with at
//! most the current limit in flight, so that a decision never judges again the queue that an
//! older, higher limit built. A round's mean RTT over the *baseline* (the unloaded RTT) is the
//! *ratio*.
//!
//! - **Slow start.** While the ratio stays under 1.1 and the limit is in use, the limit
//!   doubles each round (TCP slow start); one high round is held, two end it (`HyStart`'s
//!   caution).
//! - **Damped gradient.** Afterwards the limit moves half-way towards
//!   `limit × TOLERANCE / ratio`, clamped to ×0.5..×1.5 per round. A round at two baselines
//!   or more is a collapse, not jitter, and goes to that target at once; two rounds faster
//!   than the baseline start slow start again.
//! - **Drops.** A round with a drop backs off by 0.8, once per round however many drops.
//! - **Baseline.** It goes down with faster rounds, weighted by their calls (one fast call
//!   on a jittery link is not a baseline), and up only in slow start and through a *probe*:
//!   every 10 s (and two rounds after slow start, to drain what it overshot) the limit dips
//!   to half, or to three quarters of what the downstream serves if that is lower, until a
//!   round of calls admitted under the dip is back; that round's mean is the baseline, raised
//!   by at most ×1.25 per probe, and the limit returns to where it was (or to where the
//!   gradient would settle, if lower).
//!
//! # Invariants
//!
//! - The limit, held and answered, is always within `[min, max]` of its [`Bounds`]: every
//!   change goes through one clamp (`Controller::set`), and a manual set is clamped too.
//! - O(1) state: a dozen scalars (sums and counts, no window of samples), no allocation.
//! - Time is `tokio::time::Instant` (so paused-time tests see simulated latencies), kept as
//!   seconds since the first instant the controller saw (the first admission reported, or
//!   the first sample's admission); the simulator's adapter passes a base instant plus its
//!   `Duration` since the run began, so its runs are the same on every machine.

use std::time::Duration;

use tokio::time::Instant;

use super::Bounds;

// The parameters (each one's reason is in `design/adaptive/controller.md`'s parameters'
// table). Not configurable: the public configuration is the bounds; these are what the
// simulator's table measured. To try another value, change it here and run the bench.

/// The ratio of a round's mean RTT to the baseline that the limit settles at: the queueing
/// it accepts.
const TOLERANCE: f64 = 1.3;
/// Below this ratio a slow-start round counts as unqueued, and the limit doubles.
const SLOW_START_EXIT: f64 = 1.1;
/// The weight of a gradient step: half-way to its target each round.
const SMOOTHING: f64 = 0.5;
/// The factor of a backoff after a round with drops.
const BACKOFF: f64 = 0.8;
/// How often the baseline is re-measured (BBR's `ProbeRTT` interval).
const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// The limit during a probe, as a fraction of the limit: under `1 / TOLERANCE`, so that the
/// queue the tolerance allows drains.
const PROBE_FACTOR: f64 = 0.5;
/// The shortest round, so that a burst of fast calls is not judged on one.
const MIN_ROUND: Duration = Duration::from_millis(1);
/// The caller feeds one call in this many: a round's call counts are divided by it. 1 (every
/// call) until the call path measures whether sampling loses anything
/// (`design/adaptive/controller.md`, "Sampling one call in N").
const SAMPLE_ONE_IN: usize = 1;
/// The most one probe may raise the baseline by: a drift is slow, and a queue that a dip did
/// not drain is not a baseline.
const PROBE_RISE: f64 = 1.25;
/// The calls the first round, whose mean is the first baseline, needs at least.
const FIRST_ROUND: usize = 4;
/// A round whose mean RTT is this many baselines is a collapse, not jitter: the gradient
/// applies in full, undamped.
const SEVERE: f64 = 2.0;
/// A round's length in smoothed RTTs: a tenth short of one, so that a generation of calls
/// that all take exactly one RTT closes the round it began, rather than the next.
const ROUND: f64 = 0.9;

/// A limit as a float. Limits are at most `MAX_LIMIT` (2^31 - 1), exact in an `f64`.
#[expect(
    clippy::cast_precision_loss,
    reason = "limits are at most 2^31 - 1, which an f64 holds exactly"
)]
fn float(n: usize) -> f64 {
    n as f64
}

/// A float limit, rounded, within `[min, max]`.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the value is clamped to [min, max] first, so the cast is exact"
)]
fn rounded(limit: f64, bounds: Bounds) -> usize {
    // The float clamp first, so that the cast sees a value in range; the integer clamp then
    // covers a NaN, which `as` turns into 0.
    (limit.clamp(float(bounds.min), float(bounds.max)).round() as usize)
        .clamp(bounds.min, bounds.max)
}

/// Why the limit last changed: the `DEBUG` event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Slow start: the round was unqueued, and the limit doubled.
    SlowStart,
    /// The damped gradient's step towards `limit × 1.3 / ratio`.
    Gradient,
    /// A round at two baselines or more: straight to the gradient's target.
    Collapse,
    /// A round with a call that the function called overloaded: ×0.8.
    Overloaded,
    /// The limit dipped to re-measure the baseline.
    Probe,
    /// The probe ended, and the limit went back.
    ProbeEnd,
    /// `set_limit`, by hand (the controller goes on from it).
    SetLimit,
}

impl Reason {
    /// As the `DEBUG` event writes it.
    #[cfg_attr(not(feature = "tracing"), expect(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SlowStart => "slow start",
            Self::Gradient => "gradient",
            Self::Collapse => "latency collapse",
            Self::Overloaded => "overloaded",
            Self::Probe => "probe",
            Self::ProbeEnd => "probe end",
            Self::SetLimit => "set_limit",
        }
    }
}

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

/// The controller (see the module docs). `Clone` so that a key's learned state can be kept
/// when its entry is forgotten (`design/adaptive/runtime.md`, "Keys").
///
/// Public, hidden, in `__private` as `AdaptiveController`, for one reader: the simulator in
/// the root package (`src/sim/candidate.rs`), which scores this very controller. Not a
/// public API.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Controller {
    bounds: Bounds,
    /// The instant that time is measured from (the simulator's start of the run): the first
    /// admission, or the first sample's admission if no admission was reported.
    epoch: Option<Instant>,
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
    /// When the current round began, in seconds since `epoch`.
    round_start: f64,
    /// The current round's sums: RTTs (seconds), calls, drops, largest in-flight.
    sum: f64,
    count: u32,
    drops: u32,
    peak: usize,
    /// When the baseline was last measured by a probe (or when the next probe is due, less
    /// `PROBE_INTERVAL`), in seconds since `epoch`.
    probed: f64,
    /// Whether the last slow-start round was high (above `SLOW_START_EXIT`).
    high: bool,
    /// Unqueued gradient rounds in a row.
    low: u8,
    /// Why the limit last changed.
    reason: Reason,
    /// Rounds begun so far (the runtime's `State` watches it after a manual set).
    rounds: u64,
}

impl Controller {
    /// A controller starting at `bounds.initial`, in slow start.
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            epoch: None,
            limit: float(bounds.initial),
            reported: bounds.initial,
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
            reason: Reason::SlowStart,
            rounds: 0,
        }
    }

    /// A controller for `adaptive`'s bounds (the simulator's constructor).
    #[must_use]
    pub fn from_config(adaptive: super::Adaptive) -> Self {
        Self::new(adaptive.resolve())
    }

    /// The limit now, within `[min, max]`.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.reported
    }

    /// The baseline (unloaded RTT) it estimates, once it has one: for `stats()`, and for
    /// the simulator's tests of the baseline's drift.
    #[must_use]
    pub fn baseline(&self) -> Option<Duration> {
        (self.baseline > 0.0).then(|| Duration::from_secs_f64(self.baseline))
    }

    /// The mean RTT of the last round (the first call's, until a round closes), once a call
    /// came back: for `stats()`.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        (self.srtt > 0.0).then(|| Duration::from_secs_f64(self.srtt))
    }

    /// Rounds begun so far: a new one means the controller decided (a change of the limit,
    /// or none).
    pub(crate) fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Why the limit last changed (for the `DEBUG` event of the change `on_sample` returned).
    pub(crate) fn reason(&self) -> Reason {
        self.reason
    }

    /// Whether it is still in slow start.
    pub(crate) fn in_slow_start(&self) -> bool {
        self.phase == Phase::SlowStart
    }

    /// Whether it is re-measuring its baseline.
    pub(crate) fn probing(&self) -> bool {
        matches!(self.phase, Phase::Probe { .. })
    }

    /// Seconds from the epoch to `now` (the epoch is set here if it is not yet).
    fn seconds(&mut self, now: Instant) -> f64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_secs_f64()
    }

    /// A call was admitted at `now` with `inflight` calls in flight, itself included. The
    /// first one starts the clock (as the runtime's `State` counts from its first stamp).
    /// The algorithm reads the in-flight count from the sample; the hook has the
    /// simulator's signature (`src/sim/mod.rs`'s `Controller`), so that the simulator feeds
    /// this controller what it feeds the anchors.
    pub fn on_admit(&mut self, now: Instant, inflight: usize) {
        let _ = inflight;
        self.epoch.get_or_insert(now);
    }

    /// A limit set by hand (`Limiter::set_limit` on an adaptive limiter): the controller goes
    /// on from it (clamped to the bounds), in its gradient (a probe under way is called off),
    /// with a new round from `now`. `now` because the simulator's `set_limit` starts that
    /// round at the moment of the set, and the port keeps its behaviour.
    pub fn set_limit(&mut self, now: Instant, limit: usize) {
        let now = self.seconds(now);
        self.set_limit_secs(now, limit);
    }

    /// [`set_limit`](Self::set_limit), `now` in seconds as [`on_sample_secs`] counts them.
    ///
    /// [`on_sample_secs`]: Self::on_sample_secs
    pub(crate) fn set_limit_secs(&mut self, now: f64, limit: usize) {
        let limit = limit.clamp(self.bounds.min, self.bounds.max);
        self.limit = float(limit);
        self.reported = limit;
        self.phase = Phase::Gradient;
        self.high = false;
        self.low = 0;
        self.new_round(now);
    }

    /// A call admitted with `inflight` in flight (itself included) ended at `now` after
    /// `rtt` (admission to completion, not its wait), `dropped` if its output says the
    /// downstream is overloaded. Returns the new limit if it changes.
    pub fn on_sample(
        &mut self,
        now: Instant,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
    ) -> Option<usize> {
        if self.epoch.is_none() {
            // No admission was reported: the run began when this call was admitted.
            self.epoch = Some(now.checked_sub(rtt).unwrap_or(now));
        }
        let now = self.seconds(now);
        self.on_sample_secs(now, rtt.as_secs_f64(), inflight, dropped)
    }

    /// [`on_sample`](Self::on_sample), with the times in seconds: `now` since the instant
    /// the caller counts from (the limiter's first admission, in `state.rs`, which reads
    /// the clock once per sample and so converts it once).
    pub(crate) fn on_sample_secs(
        &mut self,
        now_s: f64,
        rtt: f64,
        inflight: usize,
        dropped: bool,
    ) -> Option<usize> {
        if self.srtt == 0.0 && !dropped {
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
        if inflight <= self.reported {
            // A drop's duration is not the downstream's round trip: a 503 comes back at
            // once, and a round of them would teach the controller a round trip (or, in a
            // probe, a baseline) of almost nothing. It counts as a drop only.
            if dropped {
                self.drops += 1;
            } else {
                self.sum += rtt;
                self.count += 1;
            }
            self.peak = self.peak.max(inflight);
        }
        // A round lasts about one smoothed RTT (ROUND) and sees at least half a limit of
        // calls back; in slow start a whole limit, and in a probe a whole dip over one and a
        // half RTTs (with one call in N fed, N times fewer). After a jump of the limit the
        // first calls back are the fastest of those it let in, and a round cut short would
        // take their mean for the RTT (on a jittery link, a baseline that is too low).
        let (rounds, calls) = match self.phase {
            Phase::Probe { .. } => (1.5, self.reported),
            Phase::SlowStart => (ROUND, self.reported),
            Phase::Gradient => (ROUND, self.reported.div_ceil(2)),
        };
        let mut calls = calls.div_ceil(SAMPLE_ONE_IN.max(1));
        if self.baseline == 0.0 {
            // The first baseline is one round's mean: not one call's, on a jittery link.
            calls = calls.max(FIRST_ROUND);
        }
        let length = (rounds * self.srtt).max(MIN_ROUND.as_secs_f64());
        let back = (self.count + self.drops) as usize;
        if back < calls.max(1) || now_s - self.round_start < length {
            return None;
        }
        if self.drops > 0 {
            // A downstream that says "overloaded" is believed at once (AIMD's backoff),
            // whatever the round's durations, in a probe too (the probe is called off, and
            // the baseline stays).
            self.phase = Phase::Gradient;
            let limit = self.limit * BACKOFF;
            return self.set(now_s, limit, Reason::Overloaded);
        }
        let mean = self.sum / f64::from(self.count);
        if mean <= 0.0 {
            // Calls that took no time at all (a paused clock, a body that never waits) say
            // nothing of a queue, and a baseline of 0 would make every ratio infinite.
            self.new_round(now_s);
            return None;
        }
        self.srtt = mean;
        self.decide(now_s, mean)
    }

    /// Sets the limit (clamped to the bounds) and starts a new round. Every change of the
    /// limit but a manual one goes through here: the bounds' invariant lives in this clamp.
    fn set(&mut self, now: f64, limit: f64, reason: Reason) -> Option<usize> {
        let (min, max) = (float(self.bounds.min), float(self.bounds.max));
        self.limit = limit.clamp(min, max);
        self.new_round(now);
        let rounded = rounded(self.limit, self.bounds);
        if rounded == self.reported {
            return None;
        }
        self.reported = rounded;
        self.reason = reason;
        Some(rounded)
    }

    fn new_round(&mut self, now: f64) {
        self.rounds += 1;
        self.round_start = now;
        self.sum = 0.0;
        self.count = 0;
        self.drops = 0;
        self.peak = 0;
    }

    /// Closes a round whose mean RTT is `mean`: the decision.
    fn decide(&mut self, now: f64, mean: f64) -> Option<usize> {
        let interval = PROBE_INTERVAL.as_secs_f64();
        if let Phase::Probe { restore } = self.phase {
            self.probed = now;
            self.phase = Phase::Gradient;
            if mean <= PROBE_RISE * self.baseline {
                // The round was admitted under the dip: its mean is the unloaded RTT.
                self.baseline = mean;
                return self.set(now, restore, Reason::ProbeEnd);
            }
            // Higher than a drift explains: the downstream got slower or lost servers just
            // now, and the dip did not drain it. The baseline rises by PROBE_RISE at most, so
            // that a queue never teaches it much; the limit stays at the dip for the gradient
            // to go on from; and another probe comes ten rounds on, once a passing queue has
            // drained.
            self.baseline *= PROBE_RISE;
            self.probed = now - interval + 10.0 * self.srtt;
            self.new_round(now);
            return None;
        }
        if self.baseline == 0.0 {
            self.baseline = mean;
        }
        let ratio = mean / self.baseline;
        let slow_start = self.phase == Phase::SlowStart;
        if ratio < 1.0 || (slow_start && ratio < SLOW_START_EXIT) {
            // A faster round lowers the baseline, weighted by its calls, so that one fast
            // call on a jittery link does not become the baseline (a minimum would: Vegas'
            // failure there). Only slow start's unqueued rounds, and the probes, raise it: a
            // queued round that raised it would be Gradient2's creep.
            let weight = 0.5 * (f64::from(self.count) / 32.0).min(1.0);
            self.baseline += weight * (mean - self.baseline);
        }
        // The limit is in use: a round whose calls never reached it says nothing about a
        // higher one (RFC 7661's rule for an application-limited sender).
        let in_use = float(self.peak) >= 0.9 * self.limit - 1.0;
        if now - self.probed >= interval {
            // Half the limit, and at most three quarters of what the last round says the
            // downstream serves (its calls over its ratio, by Little's law), so that a dip
            // from far above the capacity (a limit that started there) drains it too. After
            // it, back to the limit, or to what the gradient would settle at if that is lower.
            let serves = self.limit / ratio.max(1.0);
            self.phase = Phase::Probe {
                restore: self.limit.min(TOLERANCE * serves),
            };
            let dip = (self.limit * PROBE_FACTOR).min(0.75 * serves).floor();
            return self.set(now, dip, Reason::Probe);
        }
        if slow_start {
            if ratio < SLOW_START_EXIT {
                self.high = false;
                if !in_use {
                    self.new_round(now);
                    return None;
                }
                let limit = 2.0 * self.limit;
                return self.set(now, limit, Reason::SlowStart);
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
            self.probed = now - interval + 2.0 * self.srtt;
        }
        if ratio < 1.0 && in_use {
            // Two rounds in a row faster than the baseline, at a limit in use: the capacity
            // is well above the limit (it came back, or slow start ended on a noisy round).
            // Slow start again, rather than the gradient's 15% a round (TCP restarts slow
            // start for less).
            self.low = self.low.saturating_add(1);
            if self.low >= 2 {
                self.low = 0;
                self.high = false;
                self.phase = Phase::SlowStart;
                let limit = 2.0 * self.limit;
                return self.set(now, limit, Reason::SlowStart);
            }
        } else {
            self.low = 0;
        }
        let target = self.limit * TOLERANCE / ratio;
        if target > self.limit && !in_use {
            self.new_round(now);
            return None;
        }
        if ratio >= SEVERE {
            // A round whose mean is twice the baseline is no jitter: the capacity fell.
            // Straight to the gradient's target (Little's law: what the downstream serves,
            // times the tolerance), or the queue the old limit built keeps every call slow
            // for as many rounds as halving steps take.
            return self.set(now, target, Reason::Collapse);
        }
        // Up by at most half, down by at most half per round: one odd round cannot throw the
        // limit far; and half-way to that, which damps the jitter of the RTT.
        let target = target.clamp(0.5 * self.limit, 1.5 * self.limit);
        let limit = self.limit + SMOOTHING * (target - self.limit);
        self.set(now, limit, Reason::Gradient)
    }
}

/// Each signal's step, with hand-computed values (they were first checked on the simulator's
/// prototype, whose decisions this controller took over one for one). Time is an `Instant`
/// at `t0` plus `Duration`s, as the simulator's adapter passes it.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Controller, PROBE_RISE};
    use crate::adaptive::{Adaptive, Bounds};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A controller with the default bounds whose clock starts at the returned instant (the
    /// simulator's time 0).
    fn started(bounds: Bounds) -> (Controller, Instant) {
        let t0 = Instant::now();
        let mut c = Controller::new(bounds);
        c.on_admit(t0, 1);
        (c, t0)
    }

    fn default_bounds() -> Bounds {
        Adaptive::new().resolve()
    }

    /// Feeds `n` calls that end at `at` after `rtt`, each admitted with `inflight` in flight;
    /// returns what the last one answered (a round closes on its last call) and checks that
    /// the others answered nothing.
    fn calls(
        c: &mut Controller,
        at: Instant,
        rtt: Duration,
        inflight: usize,
        n: usize,
        dropped: bool,
    ) -> Option<usize> {
        for _ in 1..n {
            assert_eq!(
                c.on_sample(at, rtt, inflight, dropped),
                None,
                "a round closed early"
            );
        }
        c.on_sample(at, rtt, inflight, dropped)
    }

    fn round(
        c: &mut Controller,
        at: Instant,
        rtt: Duration,
        inflight: usize,
        n: usize,
    ) -> Option<usize> {
        calls(c, at, rtt, inflight, n, false)
    }

    #[test]
    fn starts_at_initial_in_slow_start() {
        let c = Controller::new(Adaptive::new().max(2).resolve());
        assert_eq!(c.limit(), 2);
        assert!(c.in_slow_start());
        assert_eq!(c.baseline(), None);
    }

    /// `slow_start_doubles_each_unqueued_round`.
    #[test]
    fn slow_start_doubles_each_unqueued_round() {
        let (mut c, t0) = started(default_bounds());
        // The first call sets the round's length (100 ms); 4 calls by 100 ms close the first
        // round: mean 100 ms is the baseline, ratio 1 < 1.1, in use: 4 × 2 = 8.
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        assert_eq!(c.baseline(), Some(ms(100)));
        assert_eq!(round(&mut c, t0 + ms(200), ms(100), 8, 8), Some(16));
        // Not in use (10 < 0.9 × 16 − 1 = 13.4): nothing is learnt about a higher limit.
        assert_eq!(round(&mut c, t0 + ms(300), ms(100), 10, 16), None);
        assert_eq!(c.limit(), 16);
        assert!(c.in_slow_start());
    }

    /// `a_queue_ends_slow_start_and_the_gradient_takes_over`: the hold, the gradient, the
    /// first probe after slow start, its return, and a collapse.
    #[test]
    fn a_queue_ends_slow_start_and_the_gradient_takes_over() {
        let (mut c, t0) = started(default_bounds());
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        assert_eq!(round(&mut c, t0 + ms(200), ms(100), 8, 8), Some(16));
        // Ratio 1.5 once: held.
        assert_eq!(round(&mut c, t0 + ms(300), ms(150), 16, 16), None);
        assert!(c.in_slow_start());
        // Twice: 16 × 1.3 / 1.5 = 13.87, half-way from 16: 14.93, reported 15.
        assert_eq!(round(&mut c, t0 + ms(450), ms(150), 16, 16), Some(15));
        assert!(!c.in_slow_start());
        assert_eq!(c.baseline(), Some(ms(100)));
        // Ratio 1.3, the tolerance: no move.
        assert_eq!(round(&mut c, t0 + ms(600), ms(130), 15, 8), None);
        assert_eq!(c.limit(), 15);
        // Ratio 1.8: 14.93 × 1.3 / 1.8 = 10.79, half-way: 12.86, reported 13.
        assert_eq!(round(&mut c, t0 + ms(730), ms(180), 15, 8), Some(13));
        // The drain probe, two rounds after slow start: the faster round first lowers the
        // baseline to 98.90625 ms, then the dip is floor(12.86 / 2) = 6.
        assert_eq!(round(&mut c, t0 + ms(930), ms(90), 13, 7), Some(6));
        assert!(c.probing());
        let baseline = c.baseline().expect("a baseline").as_secs_f64();
        assert!((baseline - 0.098_906_25).abs() < 1e-9, "{baseline}");
        // The probe round: its 100 ms is the baseline; back to 12.86, reported 13.
        assert_eq!(round(&mut c, t0 + ms(1070), ms(100), 6, 6), Some(13));
        assert_eq!(c.baseline(), Some(ms(100)));
        // A collapse at 4 baselines: undamped, 12.86 × 1.3 / 4 = 4.18, reported 4.
        assert_eq!(round(&mut c, t0 + ms(1200), ms(400), 13, 7), Some(4));
    }

    /// `a_drop_backs_off_and_calls_above_the_limit_are_ignored`.
    #[test]
    fn a_drop_backs_off_and_calls_above_the_limit_are_ignored() {
        let (mut c, t0) = started(default_bounds());
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        // Admitted with 20 in flight, above the limit of 8: never judged.
        assert_eq!(round(&mut c, t0 + ms(300), ms(100), 20, 50), None);
        // One drop among 8 fresh calls: 8 × 0.8 = 6.4, reported 6; slow start is over.
        assert_eq!(round(&mut c, t0 + ms(300), ms(100), 8, 7), None);
        assert_eq!(calls(&mut c, t0 + ms(300), ms(10), 8, 1, true), Some(6));
        assert!(!c.in_slow_start());
        // Two rounds faster than the baseline restart slow start: 7.80 (reported 8), then
        // 2 × 7.80 = 15.6, reported 16.
        assert_eq!(round(&mut c, t0 + ms(400), ms(90), 6, 3), Some(8));
        assert!(!c.in_slow_start());
        assert_eq!(round(&mut c, t0 + ms(500), ms(90), 8, 4), Some(16));
        assert!(c.in_slow_start());
    }

    /// Only in the runtime (the simulator's downstream never refuses): a 503 comes back at
    /// once, and its duration is no round trip.
    #[test]
    fn a_round_of_fast_drops_backs_off_and_teaches_no_round_trip() {
        let (mut c, t0) = started(default_bounds());
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        assert_eq!(calls(&mut c, t0 + ms(200), ms(1), 8, 8, true), Some(6));
        assert_eq!(c.baseline(), Some(ms(100)));
        assert_eq!(c.rtt(), Some(ms(100)));
        assert!(!c.in_slow_start());
    }

    /// `the_probe_measures_the_baseline_under_a_dip`.
    #[test]
    fn the_probe_measures_the_baseline_under_a_dip() {
        let (mut c, t0) = started(default_bounds());
        let mut now = t0 + ms(100);
        let mut limit = 4;
        while limit < 64 {
            limit = round(&mut c, now, ms(100), limit, limit).expect("doubles");
            now += ms(100);
        }
        assert_eq!(round(&mut c, now, ms(130), 64, 64), None);
        now += ms(130);
        assert_eq!(round(&mut c, now, ms(130), 64, 64), None);
        assert!(!c.in_slow_start());
        // The dip: min(32, 0.75 × 64 / 1.3 = 36.9) = 32.
        now += ms(130);
        assert_eq!(round(&mut c, now, ms(130), 64, 32), None);
        now += ms(130);
        assert_eq!(round(&mut c, now, ms(130), 64, 32), Some(32));
        assert!(c.probing());
        // 110 ms under the dip is the new baseline; back to 64.
        now += ms(195);
        assert_eq!(round(&mut c, now, ms(110), 32, 32), Some(64));
        assert_eq!(c.baseline(), Some(ms(110)));
        assert!(!c.probing());
        // Ten seconds on, a probe that finds 300 ms: the baseline rises by PROBE_RISE only,
        // and the limit stays at the dip.
        now += Duration::from_secs(10);
        assert_eq!(round(&mut c, now, ms(143), 64, 32), Some(32));
        assert!(c.probing());
        now += ms(300);
        assert_eq!(round(&mut c, now, ms(300), 32, 32), None);
        let baseline = c.baseline().expect("a baseline").as_secs_f64();
        assert!((baseline - 0.110 * PROBE_RISE).abs() < 1e-9, "{baseline}");
        assert_eq!(c.limit(), 32);
    }

    /// `a_limit_set_by_hand_is_kept`.
    #[test]
    fn a_limit_set_by_hand_is_kept() {
        let (mut c, t0) = started(default_bounds());
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        c.set_limit(t0 + ms(150), 50);
        assert_eq!(c.limit(), 50);
        assert!(!c.in_slow_start());
        // Ratio 1.3 on half a limit of calls: the limit set by hand is the gradient's
        // equilibrium, no change.
        assert_eq!(round(&mut c, t0 + ms(300), ms(130), 50, 25), None);
        assert_eq!(c.limit(), 50);
        // Outside the bounds it is clamped.
        c.set_limit(t0 + ms(300), 5000);
        assert_eq!(c.limit(), 1000);
        c.set_limit(t0 + ms(300), 0);
        assert_eq!(c.limit(), 1);
    }

    /// Without an `on_admit`, the first sample's admission is the epoch: the same steps as
    /// when the admission was reported.
    #[test]
    fn the_clock_starts_at_the_first_admission_either_way() {
        let t0 = Instant::now();
        let mut c = Controller::new(default_bounds());
        assert_eq!(round(&mut c, t0 + ms(100), ms(100), 4, 4), Some(8));
        assert_eq!(round(&mut c, t0 + ms(200), ms(100), 8, 8), Some(16));
    }

    /// xorshift64*: a seeded generator, so the loop below is the same on every run (no
    /// dependency for it).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The invariant: whatever the samples (random RTTs from 0, in-flight counts, drops,
    /// gaps of 0, manual sets out of range), every limit it answers, and the one it holds,
    /// is within `[min, max]` (the simulator's proptest, without proptest).
    #[test]
    fn the_limit_stays_within_its_bounds() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..200 {
            let min = 1 + usize::try_from(rng.below(10)).expect("small");
            let max = min + usize::try_from(rng.below(200)).expect("small");
            let initial = min + usize::try_from(rng.below(1 + (max - min) as u64)).expect("small");
            let bounds = Adaptive::new().initial(initial).min(min).max(max).resolve();
            let (mut c, mut now) = started(bounds);
            assert!((min..=max).contains(&c.limit()));
            for _ in 0..2000 {
                now += ms(rng.below(50));
                let rtt = ms(rng.below(2000));
                let inflight = usize::try_from(rng.below(400)).expect("small");
                let dropped = rng.below(8) == 0;
                if let Some(limit) = c.on_sample(now, rtt, inflight, dropped) {
                    assert!(
                        (min..=max).contains(&limit),
                        "case {case}: {limit} outside [{min}, {max}]"
                    );
                }
                if rng.below(500) == 0 {
                    c.set_limit(now, usize::try_from(rng.below(400)).expect("small"));
                }
                assert!((min..=max).contains(&c.limit()), "case {case}");
            }
        }
    }
}
