//! The simulation's only source of randomness: SplitMix64 (Steele, Lea and Flood, 2014), a
//! few lines with good enough statistics for arrival gaps and service times. A seed fixes
//! every draw, so a run is a function of its seed; no `rand` crate is needed.

use std::time::Duration;

/// A seeded SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed` (any value, zero included).
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw from `[0, 1)`: the top 53 bits, which an `f64`'s mantissa holds exactly.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An exponential draw with the given mean (the gap between two Poisson arrivals).
    pub fn exponential(&mut self, mean: Duration) -> Duration {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u = 1.0 - self.next_f64();
        mean.mul_f64(-u.ln())
    }

    /// A new generator for a sub-stream (a downstream, the load), so that adding draws to
    /// one part of a run does not shift the draws of another.
    #[must_use]
    pub fn fork(&mut self) -> Self {
        Self::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_in_range() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..1000 {
            let x = a.next_f64();
            assert_eq!(x.to_bits(), b.next_f64().to_bits());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn exponential_mean_is_about_right() {
        let mut rng = SplitMix64::new(1);
        let mean = Duration::from_millis(10);
        let total: Duration = (0..20_000).map(|_| rng.exponential(mean)).sum();
        let average = total.as_secs_f64() / 20_000.0;
        assert!((0.0095..0.0105).contains(&average), "{average}");
    }
}
