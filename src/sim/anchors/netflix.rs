//! Netflix `concurrency-limits`' limits, written from their published description and
//! defaults.
//!
//! Source: <https://github.com/Netflix/concurrency-limits>, read at commit `78a74b98`
//! (2026-01-12, `v0.5.4` and 4 commits), files under
//! `concurrency-limits-core/src/main/java/com/netflix/concurrency/limits/limit/`:
//! `VegasLimit.java`, `Gradient2Limit.java`, `AIMDLimit.java`, `WindowedLimit.java`,
//! `window/ImmutableAverageSampleWindow.java`, `measurement/ExpAvgMeasurement.java`,
//! `functions/Log10RootIntFunction.java`; and `limiter/AbstractLimiter.java` for what a
//! sample is (the in-flight count taken at admission, itself included, as [`Sample`] has
//! it; a drop is a sample with `didDrop`).
//!
//! The Java limits keep the estimate as a `double` and report its integer part; so do these.
//! A sample whose RTT is zero is ignored: Vegas throws on it and Gradient2 would divide by
//! it; behind [`Windowed`] none arrives (its 100 µs threshold drops it).

use std::time::Duration;

use super::XorShift64;
use crate::sim::{Controller, Sample};

/// `max(1, ⌊log10(n)⌋)`: the library's `Log10RootIntFunction` (its default baseline 0),
/// from which Vegas draws its thresholds and steps: 1 up to a limit of 99, 2 up to 999.
fn log10_root(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |l| (l as usize).max(1))
}

/// An RTT in nanoseconds, as the Java code counts it (`long` nanos).
fn nanos(rtt: Duration) -> u64 {
    u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX)
}

/// The integer part of a `double` estimate, as Java's `(int)` cast takes it (the estimates
/// here are clamped to at least 1, so there is no negative or NaN to worry about).
fn int(estimate: f64) -> usize {
    estimate as usize
}

/// `VegasLimit`'s parameters; [`Default`] gives the builder's defaults.
///
/// The alpha, beta, threshold, increase and decrease functions are the defaults and not
/// parameters here: alpha = 3·log10(limit), beta = 6·log10(limit), threshold = log10(limit),
/// increase = limit + log10(limit), decrease = limit − log10(limit), with
/// log10 = `Log10RootIntFunction` (`max(1, ⌊log10(limit)⌋)`).
#[derive(Clone, Debug)]
pub struct VegasConfig {
    /// The starting limit (default 20).
    pub initial_limit: usize,
    /// The upper bound of the estimate (`maxConcurrency`, default 1000); the lower is 1.
    pub max_concurrency: usize,
    /// The weight of a new estimate against the old (default 1.0: no smoothing).
    pub smoothing: f64,
    /// A new no-load RTT is probed every `jitter · probe_multiplier · limit` samples, with
    /// the jitter drawn uniformly from [0.5, 1) (default 30).
    pub probe_multiplier: usize,
    /// The seed of the probe jitter (the Java code draws it from `ThreadLocalRandom`).
    pub seed: u64,
}

impl Default for VegasConfig {
    fn default() -> Self {
        Self {
            initial_limit: 20,
            max_concurrency: 1000,
            smoothing: 1.0,
            probe_multiplier: 30,
            seed: super::SEED,
        }
    }
}

/// `VegasLimit`: TCP Vegas' queue estimate `limit · (1 − rtt_noload / rtt)` against
/// thresholds that grow with log10 of the limit, updated on every sample it is fed.
#[derive(Clone, Debug)]
pub struct Vegas {
    config: VegasConfig,
    /// The estimate, fractional when smoothing is below 1.
    estimate: f64,
    /// The limit last reported: the estimate's integer part.
    limit: usize,
    /// The lowest RTT seen since the last probe (nanos); `None` before the first sample.
    rtt_noload: Option<u64>,
    /// Samples since the last probe.
    probe_count: usize,
    /// This probe period's jitter, in [0.5, 1).
    probe_jitter: f64,
    rng: XorShift64,
}

impl Vegas {
    /// A Vegas limit with `config`.
    #[must_use]
    pub fn new(config: VegasConfig) -> Self {
        let mut rng = XorShift64::new(config.seed);
        let probe_jitter = 0.5 + 0.5 * rng.next_f64();
        Self {
            estimate: config.initial_limit as f64,
            limit: config.initial_limit,
            rtt_noload: None,
            probe_count: 0,
            probe_jitter,
            rng,
            config,
        }
    }

    /// The no-load RTT it compares samples with, if it has one yet.
    #[must_use]
    pub fn rtt_noload(&self) -> Option<Duration> {
        self.rtt_noload.map(Duration::from_nanos)
    }

    /// The new estimate for a sample of `rtt` against `rtt_noload`, or `None` to keep it.
    fn estimate_for(&self, rtt: u64, rtt_noload: u64, sample: Sample) -> Option<f64> {
        let estimate = self.estimate;
        let log10 = log10_root(int(estimate));
        if sample.dropped {
            // A drop (a timeout or a refusal) always backs off.
            return Some(estimate - log10 as f64);
        }
        if ((sample.inflight * 2) as f64) < estimate {
            // Too few in flight to say anything about the limit: no upward drift.
            return None;
        }
        let queue = (estimate * (1.0 - rtt_noload as f64 / rtt as f64)).ceil();
        let (alpha, beta, threshold) = (3 * log10, 6 * log10, log10);
        if queue <= threshold as f64 {
            // No queueing: grow fast.
            Some(estimate + beta as f64)
        } else if queue < alpha as f64 {
            Some(estimate + log10 as f64)
        } else if queue > beta as f64 {
            Some(estimate - log10 as f64)
        } else {
            // Between alpha and beta: the sweet spot.
            None
        }
    }
}

impl Controller for Vegas {
    fn name(&self) -> String {
        "netflix-vegas".into()
    }

    fn initial_limit(&self) -> usize {
        self.config.initial_limit
    }

    fn on_sample(&mut self, _now: Duration, sample: Sample) -> Option<usize> {
        let rtt = nanos(sample.rtt);
        if rtt == 0 {
            return None;
        }
        self.probe_count += 1;
        let probe_at = self.probe_jitter * self.config.probe_multiplier as f64 * self.estimate;
        if probe_at <= self.probe_count as f64 {
            // Forget the no-load RTT now and then, so that a lasting change of the
            // downstream's base latency is learnt: this sample becomes the new one.
            self.probe_jitter = 0.5 + 0.5 * self.rng.next_f64();
            self.probe_count = 0;
            self.rtt_noload = Some(rtt);
            return None;
        }
        let rtt_noload = match self.rtt_noload {
            Some(noload) if rtt >= noload => noload,
            _ => {
                // A new minimum is learnt, not judged.
                self.rtt_noload = Some(rtt);
                return None;
            }
        };
        let new = self.estimate_for(rtt, rtt_noload, sample)?;
        let new = new.min(self.config.max_concurrency as f64).max(1.0);
        let smoothing = self.config.smoothing;
        self.estimate = (1.0 - smoothing) * self.estimate + smoothing * new;
        report(&mut self.limit, int(self.estimate))
    }
}

/// `Gradient2Limit`'s parameters; [`Default`] gives the builder's defaults.
#[derive(Clone, Debug)]
pub struct Gradient2Config {
    /// The starting limit (default 20).
    pub initial_limit: usize,
    /// The lowest limit (default 20).
    pub min_limit: usize,
    /// The highest limit (`maxConcurrency`, default 200).
    pub max_concurrency: usize,
    /// The weight of a new estimate against the old (default 0.2).
    pub smoothing: f64,
    /// What the limit may grow by per update while latency stays low (default a constant 4;
    /// the builder also takes a function of the limit, but its default is the constant).
    pub queue_size: usize,
    /// The long RTT's averaging window, in samples (default 600).
    pub long_window: usize,
    /// How far the short RTT may exceed the long one before the limit shrinks (default 1.5).
    pub rtt_tolerance: f64,
}

impl Default for Gradient2Config {
    fn default() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 20,
            max_concurrency: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            rtt_tolerance: 1.5,
        }
    }
}

/// `ExpAvgMeasurement`: the plain mean of the first `warmup` samples, then an exponential
/// average with factor `2 / (window + 1)`.
#[derive(Clone, Debug)]
struct ExpAvg {
    value: f64,
    sum: f64,
    count: usize,
    window: usize,
    warmup: usize,
}

impl ExpAvg {
    fn add(&mut self, sample: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.sum += sample;
            self.value = self.sum / self.count as f64;
        } else {
            let factor = 2.0 / (self.window as f64 + 1.0);
            self.value = self.value * (1.0 - factor) + sample * factor;
        }
        self.value
    }
}

/// `Gradient2Limit`: the gradient of a long-window average RTT over the current RTT, clamped
/// to [0.5, 1.0], scales the limit, plus a queue allowance, smoothed. Drops are not looked
/// at (the Java code ignores `didDrop`).
#[derive(Clone, Debug)]
pub struct Gradient2 {
    config: Gradient2Config,
    estimate: f64,
    limit: usize,
    /// The long RTT (nanos), averaged over `long_window` samples after a 10-sample warm-up.
    long_rtt: ExpAvg,
}

impl Gradient2 {
    /// A Gradient2 limit with `config`.
    #[must_use]
    pub fn new(config: Gradient2Config) -> Self {
        Self {
            estimate: config.initial_limit as f64,
            limit: config.initial_limit,
            long_rtt: ExpAvg {
                value: 0.0,
                sum: 0.0,
                count: 0,
                window: config.long_window,
                warmup: 10,
            },
            config,
        }
    }

    /// The long-window RTT it compares samples with (zero before the first sample).
    #[must_use]
    pub fn long_rtt(&self) -> Duration {
        Duration::from_nanos(self.long_rtt.value as u64)
    }
}

impl Controller for Gradient2 {
    fn name(&self) -> String {
        "netflix-gradient2".into()
    }

    fn initial_limit(&self) -> usize {
        self.config.initial_limit
    }

    fn on_sample(&mut self, _now: Duration, sample: Sample) -> Option<usize> {
        let short = nanos(sample.rtt) as f64;
        if short == 0.0 {
            return None;
        }
        let long = self.long_rtt.add(short);
        if long / short > 2.0 {
            // Latency is back to normal after a long overload: pull the long RTT down
            // faster than its averaging would. This sample is still judged by the old one.
            self.long_rtt.value *= 0.95;
        }
        if (sample.inflight as f64) < self.estimate / 2.0 {
            // App-limited: too few calls in flight to learn anything about the limit.
            return None;
        }
        let config = &self.config;
        let gradient = (config.rtt_tolerance * long / short).clamp(0.5, 1.0);
        let new = self.estimate * gradient + config.queue_size as f64;
        let new = self.estimate * (1.0 - config.smoothing) + new * config.smoothing;
        self.estimate = new
            .min(config.max_concurrency as f64)
            .max(config.min_limit as f64);
        report(&mut self.limit, int(self.estimate))
    }
}

/// `AIMDLimit`'s parameters; [`Default`] gives the builder's defaults.
#[derive(Clone, Debug)]
pub struct AimdConfig {
    /// The starting limit (default 20).
    pub initial_limit: usize,
    /// The lowest limit (default 20: at the defaults a backoff from 20 stays at 20).
    pub min_limit: usize,
    /// The highest limit (default 200).
    pub max_limit: usize,
    /// The factor of a backoff (default 0.9; the builder takes [0.5, 1)).
    pub backoff_ratio: f64,
    /// An RTT above it counts as a drop (default 5 s).
    pub timeout: Duration,
}

impl Default for AimdConfig {
    fn default() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            backoff_ratio: 0.9,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `AIMDLimit`: loss-based; +1 per sample that saw at least half the limit in flight, ×0.9
/// (rounded down) per drop or timeout.
#[derive(Clone, Debug)]
pub struct Aimd {
    config: AimdConfig,
    limit: usize,
}

impl Aimd {
    /// An AIMD limit with `config`.
    #[must_use]
    pub fn new(config: AimdConfig) -> Self {
        Self {
            limit: config.initial_limit,
            config,
        }
    }
}

impl Controller for Aimd {
    fn name(&self) -> String {
        "netflix-aimd".into()
    }

    fn initial_limit(&self) -> usize {
        self.config.initial_limit
    }

    fn on_sample(&mut self, _now: Duration, sample: Sample) -> Option<usize> {
        let config = &self.config;
        let mut new = self.limit;
        if sample.dropped || sample.rtt > config.timeout {
            new = int(new as f64 * config.backoff_ratio);
        } else if sample.inflight * 2 >= new {
            new += 1;
        }
        report(
            &mut self.limit,
            new.max(config.min_limit).min(config.max_limit),
        )
    }
}

/// `WindowedLimit`'s parameters; [`Default`] gives the builder's defaults.
#[derive(Clone, Debug)]
pub struct WindowedConfig {
    /// The shortest window (default 1 s).
    pub min_window_time: Duration,
    /// The longest window (default 1 s: with both at 1 s every window lasts 1 s).
    pub max_window_time: Duration,
    /// The fewest samples a window must hold to be passed on (default 10).
    pub window_size: usize,
    /// Samples with a shorter RTT are ignored (default 100 µs).
    pub min_rtt_threshold: Duration,
}

impl Default for WindowedConfig {
    fn default() -> Self {
        Self {
            min_window_time: Duration::from_secs(1),
            max_window_time: Duration::from_secs(1),
            window_size: 10,
            min_rtt_threshold: Duration::from_micros(100),
        }
    }
}

/// One window's aggregate: the default sampler's (`AverageSampleWindowFactory`).
#[derive(Clone, Debug, Default)]
struct Window {
    min_rtt: Option<Duration>,
    sum_nanos: u128,
    max_inflight: usize,
    count: usize,
    dropped: bool,
}

/// `WindowedLimit` around a limit: it gathers samples into a window and, when a sample ends
/// after the window's end, closes it and feeds the limit one sample, the window's average
/// RTT (in whole nanoseconds), its largest in-flight count and whether any call dropped.
///
/// A window lasts `clamp(2 · its min RTT, min_window_time, max_window_time)` from the sample
/// that opened it. A window that closes with fewer than `window_size` samples is thrown away,
/// not carried over; the first window holds only the first sample (the Java code starts with
/// its next update time at zero), so it is always thrown away.
#[derive(Clone, Debug)]
pub struct Windowed<L> {
    config: WindowedConfig,
    delegate: L,
    /// Samples that end after this close the window.
    next_update: Duration,
    window: Window,
}

impl<L: Controller> Windowed<L> {
    /// `delegate` fed by windows of `config`.
    #[must_use]
    pub fn new(config: WindowedConfig, delegate: L) -> Self {
        Self {
            config,
            delegate,
            next_update: Duration::ZERO,
            window: Window::default(),
        }
    }

    /// The limit it feeds.
    #[must_use]
    pub fn delegate(&self) -> &L {
        &self.delegate
    }
}

impl<L: Controller> Controller for Windowed<L> {
    fn name(&self) -> String {
        format!("{}-windowed", self.delegate.name())
    }

    fn initial_limit(&self) -> usize {
        self.delegate.initial_limit()
    }

    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        if sample.rtt < self.config.min_rtt_threshold {
            return None;
        }
        let window = &mut self.window;
        window.min_rtt = Some(window.min_rtt.map_or(sample.rtt, |m| m.min(sample.rtt)));
        window.sum_nanos += sample.rtt.as_nanos();
        window.max_inflight = window.max_inflight.max(sample.inflight);
        window.count += 1;
        window.dropped |= sample.dropped;
        // The sample ends now (the Java code's `startTime + rtt`).
        if now <= self.next_update {
            return None;
        }
        let closed = std::mem::take(&mut self.window);
        let min_rtt = closed.min_rtt.unwrap_or_default();
        let length = (min_rtt * 2)
            .max(self.config.min_window_time)
            .min(self.config.max_window_time);
        self.next_update = now + length;
        if closed.count < self.config.window_size {
            return None;
        }
        let average = closed.sum_nanos / closed.count as u128;
        let aggregate = Sample {
            rtt: Duration::from_nanos(u64::try_from(average).unwrap_or(u64::MAX)),
            inflight: closed.max_inflight,
            dropped: closed.dropped,
        };
        self.delegate.on_sample(now, aggregate)
    }
}

/// Records `new` as the reported limit, and returns it if it changed.
fn report(limit: &mut usize, new: usize) -> Option<usize> {
    (std::mem::replace(limit, new) != new).then_some(new)
}
