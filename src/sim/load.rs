//! The client load: open-loop arrivals (they come at their rate whatever the limiter does,
//! as users of a service do) at a rate that may change for a while (a burst), and how long a
//! caller waits in the limiter before it gives up.
//!
//! No scenario needs a closed loop (a fixed number of callers that each wait for their last
//! call): a closed loop never overloads anything, it slows down, so it cannot show a limit
//! that is too high.

use std::time::Duration;

use super::rng::SplitMix64;

/// How arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly, one every `1 / rate`.
    Deterministic,
    /// A Poisson process: exponential gaps of mean `1 / rate`, from the seeded generator.
    Poisson,
}

/// A change of the arrival rate for a while: `factor` times the base rate in `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Burst {
    /// When it starts, since the run began.
    pub from: Duration,
    /// When it ends.
    pub to: Duration,
    /// The rate during it, as a multiple of the base rate.
    pub factor: f64,
}

/// The load of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    /// Arrivals per second, outside bursts.
    pub rate: f64,
    /// How they are spaced.
    pub arrivals: Arrivals,
    /// Changes of the rate, in time order, not overlapping.
    pub bursts: Vec<Burst>,
    /// How long a call waits for the limiter before its caller gives up (the call is
    /// *refused*). It bounds the line in the limiter, so a burst cannot grow memory without
    /// bound, and it is the only way a limiter sheds load: a call that waits for ever feels
    /// every queue, in the limiter or in the downstream, the same.
    pub max_wait: Duration,
}

impl LoadSpec {
    /// Poisson arrivals at `rate` per second, callers that wait at most `max_wait`.
    #[must_use]
    pub fn poisson(rate: f64, max_wait: Duration) -> Self {
        Self {
            rate,
            arrivals: Arrivals::Poisson,
            bursts: Vec::new(),
            max_wait,
        }
    }

    /// The same, with `factor` times the rate in `[from, to)`.
    #[must_use]
    pub fn burst(mut self, from: Duration, to: Duration, factor: f64) -> Self {
        self.bursts.push(Burst { from, to, factor });
        self
    }

    /// The arrival rate at `t`.
    #[must_use]
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.bursts
            .iter()
            .find(|b| b.from <= t && t < b.to)
            .map_or(self.rate, |b| self.rate * b.factor)
    }

    /// The time of the arrival after one at `t`. A gap that would cross a change of rate
    /// is cut there and drawn again at the new rate (exact for Poisson arrivals, which
    /// have no memory; a deterministic load arrives at the change).
    pub fn next_arrival(&self, mut t: Duration, rng: &mut SplitMix64) -> Duration {
        loop {
            let mean = Duration::from_secs_f64(1.0 / self.rate_at(t));
            let gap = match self.arrivals {
                Arrivals::Deterministic => mean,
                Arrivals::Poisson => rng.exponential(mean),
            };
            let next = t + gap;
            let change = self
                .bursts
                .iter()
                .flat_map(|b| [b.from, b.to])
                .find(|&at| t < at && at < next);
            match (change, self.arrivals) {
                (None, _) => return next,
                (Some(at), Arrivals::Deterministic) => return at,
                (Some(at), Arrivals::Poisson) => t = at,
            }
        }
    }
}
