//! Envoy's adaptive concurrency filter, gradient controller, written from its published
//! description and defaults.
//!
//! Sources (envoyproxy/envoy, read through the stored index, 2026):
//! - the docs page `docs/root/configuration/http/http_filters/adaptive_concurrency_filter.rst`
//!   (commit `ab02e201`), published at
//!   <https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/adaptive_concurrency_filter>;
//! - the defaults in `api/envoy/extensions/filters/http/adaptive_concurrency/v3/adaptive_concurrency.proto`
//!   (commit `149521d8`) and in the config's constructor in
//!   `source/extensions/filters/http/adaptive_concurrency/controller/gradient_controller.cc`
//!   (commit `c35f67fb`), with `gradient_controller.h` (commit `6e06b0df`) for the design
//!   notes.
//!
//! Two settings have no default: `concurrency_update_interval` is required and the minRTT
//! `interval` unset turns the minRTT measurement off (then a fixed minRTT is required). For
//! them this takes the docs' example configuration, 100 ms and 60 s. The other defaults
//! are the proto's: p50, jitter 15 %, 50 requests, min concurrency 3, buffer 25 %, max 1000.
//!
//! What this simplifies, and why:
//! - Envoy summarises a window's latencies with a circllhist histogram's approximate
//!   quantile (two significant digits, interpolated within a bin); this takes the exact
//!   nearest-rank quantile of the window's latencies (in whole microseconds, as Envoy
//!   records them). They differ by at most a bin's width, a few percent.
//! - Envoy's two timers fire at their deadlines on its event loop; here a timer whose
//!   deadline has passed fires, at its deadline, at the next sample or tick, so the limit it
//!   sets shows at most one [`EnvoyConfig::tick`] late, and every sample falls in the window
//!   its time puts it in.
//! - The newer `min_concurrency_limit` (a lower bound apart from the minRTT-window pin) is
//!   left out: unset, it defaults to `min_concurrency`, which is what this does.
//!
//! Every response is a latency sample, a refused one (a 503) included: the filter records the
//! latency when encoding completes, whatever the status, so [`Sample::dropped`] is not read.

use std::time::Duration;

use super::XorShift64;
use crate::sim::{Controller, Sample};

/// The gradient controller's parameters; [`Default`] gives the published defaults.
#[derive(Clone, Debug)]
pub struct EnvoyConfig {
    /// How long latencies are gathered before the limit is recalculated
    /// (`concurrency_update_interval`; required, 100 ms in the docs' example).
    pub concurrency_update_interval: Duration,
    /// The quantile that summarises a window's latencies, in [0, 1]
    /// (`sample_aggregate_percentile`, default p50).
    pub sample_aggregate_percentile: f64,
    /// The time between minRTT measurements (`min_rtt_calc_params.interval`; 60 s in the
    /// docs' example).
    pub min_rtt_calc_interval: Duration,
    /// The random delay added to that interval, as a fraction of it (default 0.15).
    pub jitter: f64,
    /// The samples a minRTT measurement gathers (`request_count`, default 50).
    pub min_rtt_request_count: usize,
    /// The limit pinned while the minRTT is measured, and the lowest limit
    /// (`min_concurrency`, default 3).
    pub min_concurrency: usize,
    /// The fraction of the minRTT added to it before the gradient is taken (default 0.25).
    pub buffer: f64,
    /// The highest limit (`max_concurrency_limit`, default 1000).
    pub max_concurrency_limit: usize,
    /// The seed of the minRTT jitter.
    pub seed: u64,
    /// How often the harness should call `on_tick`, so that a timer that fires with no sample
    /// around still moves the limit (1 ms: well under the 100 ms update interval).
    pub tick: Duration,
}

impl Default for EnvoyConfig {
    fn default() -> Self {
        Self {
            concurrency_update_interval: Duration::from_millis(100),
            sample_aggregate_percentile: 0.5,
            min_rtt_calc_interval: Duration::from_secs(60),
            jitter: 0.15,
            min_rtt_request_count: 50,
            min_concurrency: 3,
            buffer: 0.25,
            max_concurrency_limit: 1000,
            seed: super::SEED,
            tick: Duration::from_millis(1),
        }
    }
}

/// Envoy's gradient controller: it starts by measuring the minRTT with the limit pinned at
/// `min_concurrency`, restores the limit once `min_rtt_request_count` samples are in, then
/// every `concurrency_update_interval` sets
/// `limit = ⌊limit·g + √(limit·g)⌋` with `g = clamp((minRTT + buffer) / sampleRTT, 0.5, 2)`,
/// and measures the minRTT again after `interval + jitter`, or at once when the limit has
/// been set to the minimum five windows in a row.
#[derive(Clone, Debug)]
pub struct EnvoyGradient {
    config: EnvoyConfig,
    /// The limit, as Envoy holds it.
    limit: usize,
    /// The limit last returned to the harness.
    reported: usize,
    /// The limit to restore after the minRTT measurement; `Some` while measuring.
    deferred: Option<usize>,
    /// The last minRTT measured (zero before the first).
    min_rtt: Duration,
    /// The current window's latencies, in whole microseconds.
    samples: Vec<u64>,
    /// Calls sent before this are not sampled (they predate the minRTT measurement).
    epoch: Duration,
    /// When the update timer fires next, if it is armed.
    update_timer: Option<Duration>,
    /// When the next minRTT measurement starts, if its timer is armed.
    min_rtt_timer: Option<Duration>,
    /// Consecutive updates outside a measurement that set the limit to the minimum again.
    at_minimum: u32,
    rng: XorShift64,
}

impl EnvoyGradient {
    /// A gradient controller with `config`, in its first minRTT measurement from time zero.
    #[must_use]
    pub fn new(config: EnvoyConfig) -> Self {
        let mut this = Self {
            limit: config.min_concurrency,
            reported: config.min_concurrency,
            deferred: None,
            min_rtt: Duration::ZERO,
            samples: Vec::new(),
            epoch: Duration::ZERO,
            update_timer: None,
            min_rtt_timer: None,
            at_minimum: 0,
            rng: XorShift64::new(config.seed),
            config,
        };
        this.enter_min_rtt_window(Duration::ZERO);
        this.update_timer = Some(this.config.concurrency_update_interval);
        this
    }

    /// Whether it is measuring the minRTT (the limit pinned at the minimum).
    #[must_use]
    pub fn measuring_min_rtt(&self) -> bool {
        self.deferred.is_some()
    }

    /// The last minRTT measured (zero before the first measurement ends).
    #[must_use]
    pub fn min_rtt(&self) -> Duration {
        self.min_rtt
    }

    /// When the next minRTT measurement is due, if one is scheduled.
    #[must_use]
    pub fn next_min_rtt_measurement(&self) -> Option<Duration> {
        self.min_rtt_timer
    }

    /// Fires, in order and each at its deadline, the timers due by `now`.
    fn run_timers(&mut self, now: Duration) {
        loop {
            let update = self.update_timer.filter(|&t| t <= now);
            let min_rtt = self.min_rtt_timer.filter(|&t| t <= now);
            // The earlier first; on a tie, the update timer (armed first).
            match (update, min_rtt) {
                (None, None) => return,
                (Some(u), Some(m)) if m < u => self.fire_min_rtt_timer(m),
                (None, Some(m)) => self.fire_min_rtt_timer(m),
                (Some(u), _) => {
                    self.update_timer = None;
                    self.on_update_timer(u);
                }
            }
        }
    }

    /// The minRTT timer: a measurement starts.
    fn fire_min_rtt_timer(&mut self, at: Duration) {
        self.min_rtt_timer = None;
        self.enter_min_rtt_window(at);
    }

    /// The update timer: a new limit from the window's latencies, unless the minRTT is being
    /// measured (then the timer stays off until the measurement ends and re-arms it).
    fn on_update_timer(&mut self, at: Duration) {
        if self.measuring_min_rtt() {
            return;
        }
        if !self.samples.is_empty() {
            let sample_rtt = self.take_quantile();
            let new = self.new_limit(sample_rtt);
            self.set_limit(at, new);
        }
        self.update_timer = Some(at + self.config.concurrency_update_interval);
    }

    /// Pins the limit at the minimum and starts gathering latencies for a new minRTT.
    fn enter_min_rtt_window(&mut self, at: Duration) {
        if self.measuring_min_rtt() {
            return;
        }
        self.deferred = Some(self.limit);
        self.set_limit(at, self.config.min_concurrency);
        self.samples.clear();
        self.epoch = at;
    }

    /// Ends the minRTT measurement once it has its samples: restores the limit, schedules
    /// the next measurement and restarts the update timer.
    fn finish_min_rtt_window(&mut self, at: Duration) {
        let Some(deferred) = self.deferred else {
            return;
        };
        if self.samples.len() < self.config.min_rtt_request_count {
            return;
        }
        self.min_rtt = self.take_quantile();
        self.set_limit(at, deferred);
        self.deferred = None;
        self.min_rtt_timer = Some(at + self.jittered_interval());
        self.update_timer = Some(at + self.config.concurrency_update_interval);
    }

    /// The minRTT interval plus a uniform whole number of milliseconds below
    /// `⌈interval · jitter⌉`, as Envoy draws it (`random() % range`).
    fn jittered_interval(&mut self) -> Duration {
        let interval = self.config.min_rtt_calc_interval;
        let interval_ms = interval.as_millis() as f64;
        let range_ms = (interval_ms * self.config.jitter).ceil() as u64;
        if range_ms == 0 {
            return interval;
        }
        interval + Duration::from_millis(self.rng.next_u64() % range_ms)
    }

    /// The window's latency quantile (nearest rank), and a fresh window.
    fn take_quantile(&mut self) -> Duration {
        let mut samples = std::mem::take(&mut self.samples);
        samples.sort_unstable();
        let n = samples.len();
        let q = self.config.sample_aggregate_percentile.clamp(0.0, 1.0);
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Duration::from_micros(samples[rank - 1])
    }

    /// `⌊limit·g + √(limit·g)⌋` with `g = clamp((minRTT·(1 + buffer)) / sampleRTT, 0.5, 2)`,
    /// clamped to [min_concurrency, max_concurrency_limit].
    fn new_limit(&self, sample_rtt: Duration) -> usize {
        let min_rtt = self.min_rtt.as_nanos() as f64;
        let buffered = min_rtt + min_rtt * self.config.buffer;
        let raw = buffered / sample_rtt.as_nanos() as f64;
        // A zero sample RTT gives an infinite or NaN ratio; Envoy's
        // `std::max(0.5, std::min(2.0, raw))` makes both 2.
        let gradient = if raw.is_nan() {
            2.0
        } else {
            raw.clamp(0.5, 2.0)
        };
        let limit = self.limit as f64 * gradient;
        let headroom = limit.sqrt();
        let new = (limit + headroom) as usize;
        new.min(self.config.max_concurrency_limit)
            .max(self.config.min_concurrency)
    }

    /// Sets the limit, and counts the updates that leave it at the minimum: five in a row
    /// outside a measurement suggest a wrong minRTT, so a measurement starts at once.
    fn set_limit(&mut self, at: Duration, new: usize) {
        let old = std::mem::replace(&mut self.limit, new);
        let min = self.config.min_concurrency;
        if !self.measuring_min_rtt() && old == min && new == min {
            self.at_minimum += 1;
        } else {
            self.at_minimum = 0;
        }
        if self.at_minimum >= 5 {
            self.min_rtt_timer = Some(at);
        }
    }

    /// The limit if it changed since last reported.
    fn report(&mut self) -> Option<usize> {
        (std::mem::replace(&mut self.reported, self.limit) != self.limit).then_some(self.limit)
    }
}

impl Controller for EnvoyGradient {
    fn name(&self) -> String {
        "envoy-gradient".into()
    }

    fn initial_limit(&self) -> usize {
        self.config.min_concurrency
    }

    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        self.run_timers(now);
        // Calls sent before the current minRTT measurement began are not sampled.
        if now.saturating_sub(sample.rtt) >= self.epoch {
            let micros = u64::try_from(sample.rtt.as_micros()).unwrap_or(u64::MAX);
            self.samples.push(micros);
            self.finish_min_rtt_window(now);
        }
        self.report()
    }

    fn on_tick(&mut self, now: Duration) -> Option<usize> {
        self.run_timers(now);
        self.report()
    }

    fn tick(&self) -> Option<Duration> {
        Some(self.config.tick)
    }
}
