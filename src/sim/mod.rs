//! The adaptive-limit simulator: a simulated downstream, a client load, and controllers that
//! move a real [`Limiter`](limit_runtime::Limiter)'s limit through `set_limit` while the calls
//! go through the real limiter, all on tokio's paused clock with a seeded RNG, so that every
//! run gives the same numbers. `benches/adaptive.rs` prints the table and draws the plots;
//! `tests/adaptive_*.rs` check the anchors and run a short scenario.
//!
//! The seam is [`Controller`]: the anchors (`anchors/`, each written from its published
//! description), every fixed limit, and this crate's adaptive limit (`candidate.rs`, an
//! adapter over the runtime's own controller) implement it, and the harness knows nothing
//! else of them.

use std::time::Duration;

pub mod anchors;
pub mod candidate;
pub mod downstream;
pub mod harness;
pub mod load;
pub mod metrics;
pub mod rng;
pub mod scenarios;
pub mod table;

/// One call that ended, as a controller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The call's round trip: from its admission (not its wait) to its end.
    pub rtt: Duration,
    /// Calls in flight (admitted, not yet ended) when this call was admitted, itself included.
    pub inflight: usize,
    /// Whether the downstream refused it as overloaded (a 429 or 503: a *drop*).
    pub dropped: bool,
}

/// A concurrency-limit controller. Time is the simulation's: a [`Duration`] since the run
/// began, so a controller holds no clock and the same inputs give the same limits.
pub trait Controller {
    /// The name the table shows (`"netflix-vegas"`, `"fixed-12"`, …).
    fn name(&self) -> String;
    /// The limit it starts from.
    fn initial_limit(&self) -> usize;
    /// A call was admitted at `now`, with `inflight` calls in flight, itself included. For
    /// controllers that note the moment the limit is reached (Vector's), not only the calls
    /// that have ended; the others ignore it.
    fn on_admit(&mut self, now: Duration, inflight: usize) {
        let _ = (now, inflight);
    }
    /// A call ended at `now`. Returns the new limit if it changes.
    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize>;
    /// Called at every `tick` of the harness (see [`Controller::tick`]), for controllers
    /// that act on time rather than on samples (a window that closes, a periodic
    /// re-measurement). Returns the new limit if it changes.
    fn on_tick(&mut self, now: Duration) -> Option<usize> {
        let _ = now;
        None
    }
    /// How often the harness calls [`on_tick`](Self::on_tick); `None` for never.
    fn tick(&self) -> Option<Duration> {
        None
    }
}
