//! Vector's adaptive request concurrency (ARC), written from its published description and
//! defaults.
//!
//! Sources (vectordotdev/vector, commit `c3445d42`, 2026-08-21): the controller
//! `src/sinks/util/adaptive_concurrency/controller.rs`, its settings and defaults in
//! `src/sinks/util/adaptive_concurrency/mod.rs`, the EWMA-with-variance and mean in
//! `lib/vector-common/src/stats/mod.rs`, and its simulator's expectations in
//! `tests/data/adaptive-concurrency/*.yaml`; the docs page
//! <https://vector.dev/docs/architecture/arc> for the overview.
//!
//! The algorithm: the RTTs of the successful responses of one "RTT window" are averaged;
//! the window ends with the first response at or after `window start + past RTT mean`. Then,
//! if the limit was reached during the window, no response was back-pressure and the window's
//! RTT is at most the past mean, the limit grows by 1; otherwise, if there was back-pressure
//! or the window's RTT is at least `past mean + rtt_deviation_scale · past deviation`, it is
//! multiplied by `decrease_ratio` (rounded down, at least 1). The window's RTT then updates
//! the past mean and variance, an EWMA with weight `ewma_alpha`.
//!
//! "Reached the limit" is a flag that Vector raises when a request is *started* with the
//! in-flight count at the limit: here at [`Controller::on_admit`], which the harness calls at
//! each admission.

use std::time::Duration;

use crate::sim::{Controller, Sample};

/// ARC's parameters; [`Default`] gives Vector's defaults.
#[derive(Clone, Debug)]
pub struct VectorConfig {
    /// The starting limit (default 1).
    pub initial_concurrency: usize,
    /// The factor of a decrease (default 0.9).
    pub decrease_ratio: f64,
    /// The weight of a window's RTT in the past RTT's average (default 0.4).
    pub ewma_alpha: f64,
    /// How many past deviations above the past mean an RTT may be before it counts as
    /// back-pressure (default 2.5).
    pub rtt_deviation_scale: f64,
    /// The highest limit (default 200).
    pub max_concurrency_limit: usize,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            initial_concurrency: 1,
            decrease_ratio: 0.9,
            ewma_alpha: 0.4,
            rtt_deviation_scale: 2.5,
            max_concurrency_limit: 200,
        }
    }
}

/// An exponentially weighted mean and variance of RTTs, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MeanVariance {
    mean: f64,
    variance: f64,
}

/// Vector's ARC controller.
#[derive(Clone, Debug)]
pub struct VectorArc {
    config: VectorConfig,
    limit: usize,
    /// The past RTT's EWMA; `None` until the first successful response.
    past: Option<MeanVariance>,
    /// The current window ends with the first response at or after this.
    next_update: Duration,
    /// The plain mean of this window's successful RTTs (seconds), and their count.
    current_mean: f64,
    current_count: usize,
    had_back_pressure: bool,
    reached_limit: bool,
}

impl VectorArc {
    /// An ARC controller with `config`.
    #[must_use]
    pub fn new(config: VectorConfig) -> Self {
        Self {
            limit: config.initial_concurrency,
            past: None,
            next_update: Duration::ZERO,
            current_mean: 0.0,
            current_count: 0,
            had_back_pressure: false,
            reached_limit: false,
            config,
        }
    }

    /// The past RTT's mean and standard deviation, once it has one.
    #[must_use]
    pub fn past_rtt(&self) -> Option<(Duration, Duration)> {
        self.past.map(|p| {
            (
                Duration::from_secs_f64(p.mean),
                Duration::from_secs_f64(p.variance.sqrt()),
            )
        })
    }

    /// The EWMA's next state with the point `rtt` (the first point is the mean, with no
    /// variance).
    fn ewma(&self, rtt: f64) -> MeanVariance {
        let alpha = self.config.ewma_alpha;
        match self.past {
            None => MeanVariance {
                mean: rtt,
                variance: 0.0,
            },
            Some(past) => {
                let difference = rtt - past.mean;
                let increment = alpha * difference;
                MeanVariance {
                    mean: past.mean + increment,
                    variance: (1.0 - alpha) * difference.mul_add(increment, past.variance),
                }
            }
        }
    }

    /// The additive increase or multiplicative decrease at the end of a window.
    fn manage_limit(&mut self, past: MeanVariance, current: Option<f64>) {
        let config = &self.config;
        let threshold = past.variance.sqrt() * config.rtt_deviation_scale;
        let fast = current.is_some_and(|c| c <= past.mean);
        if self.limit < config.max_concurrency_limit
            && self.reached_limit
            && !self.had_back_pressure
            && fast
        {
            self.limit += 1;
        } else if self.limit > 1
            && (self.had_back_pressure || current.unwrap_or(0.0) >= past.mean + threshold)
        {
            // Note `>=`: with no variance (a constant RTT) a window at the mean that did not
            // reach the limit decreases.
            self.limit = ((self.limit as f64 * config.decrease_ratio) as usize).max(1);
        }
    }
}

impl Controller for VectorArc {
    fn name(&self) -> String {
        "vector-arc".into()
    }

    fn initial_limit(&self) -> usize {
        self.config.initial_concurrency
    }

    fn on_admit(&mut self, _now: Duration, inflight: usize) {
        if inflight >= self.limit {
            self.reached_limit = true;
        }
    }

    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        if sample.dropped {
            // Back-pressure; its RTT is not a measurement of the service.
            self.had_back_pressure = true;
        } else {
            self.current_count += 1;
            self.current_mean +=
                (sample.rtt.as_secs_f64() - self.current_mean) / self.current_count as f64;
        }
        let current = (self.current_count > 0).then_some(self.current_mean);
        let Some(mut past) = self.past else {
            // The first successful response seeds the past RTT; nothing is reset.
            if let Some(current) = current {
                self.past = Some(self.ewma(current));
                self.next_update = now + Duration::from_secs_f64(current);
            }
            return None;
        };
        if now < self.next_update {
            return None;
        }
        let old = self.limit;
        self.manage_limit(past, current);
        if let Some(current) = current {
            past = self.ewma(current);
            self.past = Some(past);
        }
        self.next_update = now + Duration::from_secs_f64(past.mean);
        self.current_mean = 0.0;
        self.current_count = 0;
        self.had_back_pressure = false;
        self.reached_limit = false;
        (self.limit != old).then_some(self.limit)
    }
}
