//! The anchors: the published adaptive controllers that a new one must beat, each written
//! from its description and defaults (cited in its file), not from its code.
//!
//! - [`netflix`]: Netflix `concurrency-limits`' `VegasLimit`, `Gradient2Limit` and
//!   `AIMDLimit`, and the `WindowedLimit` sampler that feeds one of them a window's average.
//! - [`envoy`]: Envoy's adaptive concurrency filter, gradient controller.
//! - [`vector`]: Vector's adaptive request concurrency (ARC).
//!
//! [`all`] gives one fresh instance of each, at its published defaults.

use super::Controller;

pub mod envoy;
pub mod netflix;
pub mod vector;

pub use envoy::{EnvoyConfig, EnvoyGradient};
pub use netflix::{
    Aimd, AimdConfig, Gradient2, Gradient2Config, Vegas, VegasConfig, Windowed, WindowedConfig,
};
pub use vector::{VectorArc, VectorConfig};

/// The seed of the anchors that draw random numbers (Vegas' probe jitter, Envoy's minRTT
/// jitter) in [`all`]: fixed, so that every run of a scenario gives the same numbers.
pub const SEED: u64 = 0x5EED_0016;

/// One fresh instance of each anchor at its published defaults, in the table's order. The
/// harness calls it once per scenario run, so no state leaks from one run into the next.
///
/// The Netflix limits come as the library wires them: Vegas and AIMD fed every call (the
/// library's `AbstractLimiter` defaults to an unwindowed `VegasLimit`, and its
/// `BlockingAdaptiveExecutor` to an unwindowed `AIMDLimit`), Gradient2 both unwindowed and
/// behind `WindowedLimit` (the README's server example).
#[must_use]
pub fn all() -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(Vegas::new(VegasConfig::default())),
        Box::new(Gradient2::new(Gradient2Config::default())),
        Box::new(Windowed::new(
            WindowedConfig::default(),
            Gradient2::new(Gradient2Config::default()),
        )),
        Box::new(Aimd::new(AimdConfig::default())),
        Box::new(EnvoyGradient::new(EnvoyConfig::default())),
        Box::new(VectorArc::new(VectorConfig::default())),
    ]
}

/// A seeded xorshift64 generator (Marsaglia, 2003: shifts 13, 7, 17): the anchors' only
/// source of randomness, so that a seed fixes every draw.
#[derive(Clone, Debug)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed`; a zero seed (the one state xorshift never leaves) is
    /// replaced by a fixed non-zero one.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A uniform draw from `[0, 1)`, from the top 53 bits (an `f64`'s mantissa).
    pub fn next_f64(&mut self) -> f64 {
        // 53 bits fit an f64's mantissa exactly: every draw is a multiple of 2^-53.
        let top = (self.next_u64() >> 11) as f64;
        top / (1u64 << 53) as f64
    }
}
