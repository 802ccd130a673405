//! What the table shows of one run, before it is compared with the oracle: throughput,
//! client-side latency percentiles, the limit's steadiness and its convergence, and the
//! series the plots draw. The definitions are in [`super::table`], next to the table.

use std::time::Duration;

use super::harness::{Fate, Run};
use super::scenarios::Scenario;

/// Points of the limit series a plot draws.
const LIMIT_POINTS: usize = 600;
/// Time buckets of the p99 series a plot draws.
const LATENCY_BUCKETS: usize = 60;

/// One run, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The contender's name.
    pub contender: String,
    /// Calls served per second of the run.
    pub throughput: f64,
    /// The median client-side latency of the served calls, in unloaded service times.
    pub p50: f64,
    /// The 99th percentile of the same.
    pub p99: f64,
    /// The largest coefficient of variation of the limit over the steady-state windows.
    pub cv: f64,
    /// For each convergence phase, the RTTs the limit took to settle, or `None` (never).
    pub converge: Vec<Option<f64>>,
    /// The fraction of arrivals whose callers gave up waiting in the limiter.
    pub refused: f64,
    /// The fraction of arrivals the downstream refused as overloaded.
    pub dropped: f64,
    /// The limit at evenly spaced times, `(seconds, limit)`, for the plot.
    pub limit_series: Vec<(f64, usize)>,
    /// The p99 latency of the calls that ended in each time bucket, `(bucket start in
    /// seconds, p99 in unloaded service times)`, for the plot; empty buckets are left out.
    pub p99_series: Vec<(f64, f64)>,
}

/// The `q` quantile (nearest rank) of sorted values; 0 for none.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The limit in force at `t` of a step function.
fn limit_at(limits: &[(Duration, usize)], t: Duration) -> usize {
    let after = limits.partition_point(|&(at, _)| at <= t);
    limits[after.saturating_sub(1)].1
}

/// The steps of the limit within `[from, to)`: `(start, end, limit)`.
fn segments(
    limits: &[(Duration, usize)],
    from: Duration,
    to: Duration,
) -> Vec<(Duration, Duration, usize)> {
    let mut out = Vec::new();
    let mut start = from;
    let mut value = limit_at(limits, from);
    for &(at, limit) in limits.iter().filter(|&&(at, _)| from < at && at < to) {
        out.push((start, at, value));
        start = at;
        value = limit;
    }
    out.push((start, to, value));
    out
}

/// The time-weighted coefficient of variation (standard deviation over mean) of the limit
/// within `[from, to)`.
fn coefficient_of_variation(limits: &[(Duration, usize)], from: Duration, to: Duration) -> f64 {
    let steps = segments(limits, from, to);
    let total = (to - from).as_secs_f64();
    let weight = |s: &(Duration, Duration, usize)| (s.1 - s.0).as_secs_f64() / total;
    let mean: f64 = steps.iter().map(|s| weight(s) * s.2 as f64).sum();
    let variance: f64 = steps
        .iter()
        .map(|s| weight(s) * (s.2 as f64 - mean).powi(2))
        .sum();
    if mean > 0.0 {
        variance.sqrt() / mean
    } else {
        0.0
    }
}

/// The time from `from` after which the limit stays in `ideal`'s band until `to`, or
/// `None`. The band is ±10% of the ideal, and at least ±1 (so that a small ideal, 5, has
/// a band at all).
fn convergence(
    limits: &[(Duration, usize)],
    from: Duration,
    to: Duration,
    ideal: usize,
) -> Option<Duration> {
    let ideal = ideal as f64;
    let slack = (0.1 * ideal).max(1.0);
    let in_band = |limit: usize| (limit as f64 - ideal).abs() <= slack;
    let mut settled = None;
    for (start, _, limit) in segments(limits, from, to) {
        match (in_band(limit), settled) {
            (true, None) => settled = Some(start - from),
            (false, _) => settled = None,
            (true, Some(_)) => {}
        }
    }
    settled
}

/// Measures a run of `scenario`.
#[must_use]
pub fn measure(scenario: &Scenario, run: &Run) -> Measured {
    let unit = scenario.unloaded().as_secs_f64();
    let duration = scenario.duration;
    let arrivals = run.calls.len().max(1) as f64;
    let count = |fate| run.calls.iter().filter(|c| c.fate == fate).count();

    // Unfinished calls count with their age: a queue that never drains must show.
    let mut latencies: Vec<Duration> = run
        .calls
        .iter()
        .filter(|c| matches!(c.fate, Fate::Served | Fate::Unfinished))
        .map(|c| c.latency())
        .collect();
    latencies.sort_unstable();

    let cv = scenario
        .steady
        .iter()
        .map(|&(from, to)| coefficient_of_variation(&run.limits, from, to))
        .fold(0.0, f64::max);
    let converge = scenario
        .converge
        .iter()
        .map(|&(from, to)| {
            convergence(&run.limits, from, to, scenario.capacity(from))
                .map(|d| d.as_secs_f64() / unit)
        })
        .collect();

    let limit_series = (0..=LIMIT_POINTS)
        .map(|i| {
            let t = duration.mul_f64(i as f64 / LIMIT_POINTS as f64);
            (t.as_secs_f64(), limit_at(&run.limits, t))
        })
        .collect();
    let bucket = duration / LATENCY_BUCKETS as u32;
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); LATENCY_BUCKETS];
    for c in run.calls.iter().filter(|c| c.fate == Fate::Served) {
        let index = (c.end.as_nanos() / bucket.as_nanos()) as usize;
        buckets[index.min(LATENCY_BUCKETS - 1)].push(c.latency());
    }
    let p99_series = buckets
        .iter_mut()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(i, b)| {
            b.sort_unstable();
            let start = (bucket * i as u32).as_secs_f64();
            (start, quantile(b, 0.99).as_secs_f64() / unit)
        })
        .collect();

    Measured {
        contender: run.contender.clone(),
        throughput: count(Fate::Served) as f64 / duration.as_secs_f64(),
        p50: quantile(&latencies, 0.50).as_secs_f64() / unit,
        p99: quantile(&latencies, 0.99).as_secs_f64() / unit,
        cv,
        converge,
        refused: count(Fate::Refused) as f64 / arrivals,
        dropped: count(Fate::Dropped) as f64 / arrivals,
        limit_series,
        p99_series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn convergence_is_the_start_of_the_last_stay_in_band() {
        let limits = [
            (s(0), 50),
            (s(2), 20),
            (s(3), 11),
            (s(4), 30),
            (s(6), 10),
            (s(8), 9),
        ];
        assert_eq!(convergence(&limits, s(1), s(10), 10), Some(s(5)));
        assert_eq!(convergence(&limits, s(1), s(5), 10), None);
        assert_eq!(convergence(&limits, s(0), s(2), 50), Some(s(0)));
    }

    #[test]
    fn cv_of_a_square_wave() {
        // 10 for half the window, 30 for the other half: mean 20, deviation 10.
        let limits = [(s(0), 10), (s(5), 30)];
        let cv = coefficient_of_variation(&limits, s(0), s(10));
        assert!((cv - 0.5).abs() < 1e-12, "{cv}");
        assert!(coefficient_of_variation(&limits, s(6), s(10)).abs() < 1e-12);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.99), Duration::ZERO);
    }
}
