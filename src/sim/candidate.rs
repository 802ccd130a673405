//! This crate's adaptive limit as a simulator contender (`"limit-runtime-adaptive"` in the
//! table): a thin adapter over the runtime's own controller,
//! [`limit_runtime::__private::AdaptiveController`], the one that `Limiter::adaptive` and
//! `#[concurrency_limit(adaptive)]` run. There is one copy of the controller, in
//! `limit-runtime/src/adaptive/controller.rs` (its algorithm, parameters and hand-computed
//! unit tests are there); the table scores that copy, so what it measures is what users run.
//! `design/adaptive/controller.md` explains the design and its scores.
//!
//! The adapter only translates:
//!
//! - **time**: the simulator's [`Duration`] since the run began becomes a
//!   [`tokio::time::Instant`], a base taken once when the adapter is made plus that
//!   `Duration`. The controller reads only differences of its instants (seconds since the
//!   first one it sees), so the base itself never matters and a run stays deterministic;
//! - **signals**: a [`Sample`] becomes `on_sample`'s RTT, in-flight count and drop flag, and
//!   the simulator's `on_admit` is forwarded (the first admission starts the controller's
//!   clock);
//! - **bounds**: a [`limit_runtime::Adaptive`], the runtime's own configuration. The
//!   controller's other parameters are the runtime's constants: to try another value, change
//!   the constant there and run the bench.

use std::time::Duration;

use limit_runtime::__private::AdaptiveController;
use limit_runtime::Adaptive;
use tokio::time::Instant;

use super::{Controller, Sample};

/// The runtime's adaptive controller, driven by the simulator (see the module's
/// documentation).
#[derive(Clone, Debug)]
pub struct Candidate {
    inner: AdaptiveController,
    /// The instant of the simulator's time 0.
    base: Instant,
    /// The limit it starts from.
    initial: usize,
}

impl Candidate {
    /// The runtime's controller within `adaptive`'s bounds (whose defaults follow from the
    /// bounds given, as for `Limiter::adaptive`).
    ///
    /// # Panics
    ///
    /// On bounds that `Limiter::adaptive` refuses (`min = 0`, `min > max`, an `initial`
    /// outside `[min, max]`).
    #[must_use]
    pub fn new(adaptive: Adaptive) -> Self {
        let inner = AdaptiveController::from_config(adaptive);
        Self {
            initial: inner.limit(),
            inner,
            base: Instant::now(),
        }
    }

    /// The simulator's time `now`, on the controller's clock.
    fn at(&self, now: Duration) -> Instant {
        self.base + now
    }

    /// The limit now.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.inner.limit()
    }

    /// A limit set by hand (the runtime's `Limiter::set_limit` on an adaptive limiter) at
    /// `now`: the controller goes on from it.
    pub fn set_limit(&mut self, now: Duration, limit: usize) {
        let now = self.at(now);
        self.inner.set_limit(now, limit);
    }

    /// The baseline (unloaded RTT) the controller estimates, once it has one: for the tests
    /// of the baseline's drift.
    #[must_use]
    pub fn baseline(&self) -> Option<Duration> {
        self.inner.baseline()
    }
}

impl Default for Candidate {
    /// The documented defaults: from 4, within `[1, 1000]`.
    fn default() -> Self {
        Self::new(Adaptive::new())
    }
}

impl Controller for Candidate {
    fn name(&self) -> String {
        "limit-runtime-adaptive".to_owned()
    }

    fn initial_limit(&self) -> usize {
        self.initial
    }

    fn on_admit(&mut self, now: Duration, inflight: usize) {
        let now = self.at(now);
        self.inner.on_admit(now, inflight);
    }

    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        let now = self.at(now);
        self.inner
            .on_sample(now, sample.rtt, sample.inflight, sample.dropped)
    }
}
