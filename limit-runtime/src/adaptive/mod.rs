//! Adaptive limits: the configuration ([`Adaptive`], a `const` builder, and its resolution
//! into [`Bounds`]), the controller that moves the limit ([`controller::Controller`]), and
//! the state in a limiter's core that feeds it the calls' samples ([`state::State`]).
//!
//! The controller was designed on the simulator (`design/adaptive/controller.md`), which
//! scores this very controller through `src/sim/candidate.rs`; the README's "Adaptive
//! limits" says what users see.
//!
//! # The configuration
//!
//! Three bounds, each optional: `initial`, `min`, `max`. The defaults follow from what is
//! given, by definition rather than by clamping the user's input ([`Adaptive::resolve`]):
//!
//! | given | `min` | `max` | `initial` |
//! |---|---|---|---|
//! | nothing | 1 | 1000 | 4 |
//! | `max = 4` | 1 | 4 | 4 (the default 4, within the bounds) |
//! | `max = 2` | 1 | 2 | 2 (the default is at most `max`) |
//! | `min = 8` | 8 | 1000 | 8 (the default is at least `min`) |
//! | `min = 2000` | 2000 | 2000 (the default is at least `min`) | 2000 |
//! | `initial = 50` | 1 | 1000 | 50 |
//!
//! A given bound is never moved: `min = 0`, `min > max`, `max` above
//! [`MAX_LIMIT`], and an `initial` outside the resolved `[min, max]`
//! (`initial = 5000` with no `max`: the default `max` is 1000) panic, and in a `static` or
//! `const` that panic is a compile-time error. The attribute checks its literals itself
//! first, for a spanned error.

pub(crate) mod controller;
pub(crate) mod state;

use crate::gate::MAX_LIMIT;

/// The lowest limit when `min` is not given.
pub(crate) const DEFAULT_MIN: usize = 1;
/// The highest limit when `max` is not given (or `min`, if that is higher).
pub(crate) const DEFAULT_MAX: usize = 1000;
/// The limit it starts from when `initial` is not given, moved into `[min, max]`. Slow
/// start makes a low start cheap (4 reaches 128 in 5 rounds), and a start above the
/// capacity queues its first rounds, whose mean would become a baseline too high
/// (`design/adaptive/controller.md`, the parameters' table).
pub(crate) const DEFAULT_INITIAL: usize = 4;

/// An adaptive limit's configuration, for [`Limiter::adaptive`](crate::Limiter::adaptive):
/// the bounds the limit moves within and where it starts, each optional. A `const` builder,
/// so that a `static` limiter can be adaptive. The attribute's
/// `#[concurrency_limit(adaptive(initial = …, min = …, max = …))]` is the same
/// configuration.
///
/// The defaults follow from what is given: from 4, within `[1, 1000]`; with `max(2)` it
/// starts at 2, with `min(8)` at 8, and `min(2000)` alone raises the default `max` to 2000.
/// A bound you give is never moved: `min(0)`, a `min` above the `max`, a `max` above
/// [`Limiter::MAX_LIMIT`](crate::Limiter::MAX_LIMIT) and an `initial` outside `[min, max]`
/// panic when the limiter is made (at compile time, in a `static`).
///
/// ```
/// use limit_runtime::{Adaptive, Limiter};
///
/// static SEARCH: Limiter = Limiter::adaptive(Adaptive::new().max(64)).with_name("search-api");
///
/// assert_eq!(SEARCH.limit(), 4); // the default start, within [1, 64]
/// let stats = SEARCH.stats().adaptive.unwrap();
/// assert_eq!((stats.min, stats.max), (1, 64));
///
/// let small = Limiter::adaptive(Adaptive::new().max(2));
/// assert_eq!(small.limit(), 2); // it starts at most at its `max`
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adaptive {
    // `Option`s, not resolved values: a default depends on the other bounds given, so it can
    // only be chosen once all three are known, in `resolve`.
    initial: Option<usize>,
    min: Option<usize>,
    max: Option<usize>,
}

/// An [`Adaptive`] with its defaults resolved: `min <= initial <= max`, `min >= 1`,
/// `max <= MAX_LIMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The limit it starts from.
    pub(crate) initial: usize,
    /// The lowest limit.
    pub(crate) min: usize,
    /// The highest limit.
    pub(crate) max: usize,
}

impl Adaptive {
    /// The documented defaults: from 4, within `[1, 1000]`.
    ///
    /// ```
    /// use limit_runtime::{Adaptive, Limiter};
    ///
    /// let limiter = Limiter::adaptive(Adaptive::new());
    /// assert_eq!(limiter.limit(), 4);
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self {
            initial: None,
            min: None,
            max: None,
        }
    }

    /// The limit it starts from (by default 4, moved into `[min, max]`).
    ///
    /// ```
    /// use limit_runtime::{Adaptive, Limiter};
    ///
    /// let limiter = Limiter::adaptive(Adaptive::new().initial(1));
    /// assert_eq!(limiter.limit(), 1);
    /// ```
    #[must_use]
    pub const fn initial(self, initial: usize) -> Self {
        Self {
            initial: Some(initial),
            ..self
        }
    }

    /// The lowest limit it goes down to (by default 1; it must be at least 1).
    ///
    /// ```
    /// use limit_runtime::{Adaptive, Limiter};
    ///
    /// let limiter = Limiter::adaptive(Adaptive::new().min(8));
    /// assert_eq!(limiter.limit(), 8); // the default start is at least `min`
    /// ```
    #[must_use]
    pub const fn min(self, min: usize) -> Self {
        Self {
            min: Some(min),
            ..self
        }
    }

    /// The highest limit it goes up to (by default 1000, or `min` if that is higher).
    ///
    /// ```
    /// use limit_runtime::{Adaptive, Limiter};
    ///
    /// let limiter = Limiter::adaptive(Adaptive::new().max(64));
    /// assert_eq!(limiter.stats().adaptive.unwrap().max, 64);
    /// ```
    #[must_use]
    pub const fn max(self, max: usize) -> Self {
        Self {
            max: Some(max),
            ..self
        }
    }

    /// The bounds, with the defaults that follow from those given (the table in the module
    /// docs). The one place the defaults are defined: the attribute and the constructors
    /// resolve through it.
    ///
    /// # Panics
    ///
    /// On `min = 0`, `max` above `MAX_LIMIT`, `min > max`, or an `initial` outside the
    /// resolved `[min, max]`: a given bound is the user's, and is never clamped. In a
    /// `const` or `static` the panic is a compile-time error.
    #[must_use]
    pub(crate) const fn resolve(self) -> Bounds {
        // Each check before the defaults that depend on it, so that the message names the
        // bound the user gave rather than a default it pushed out of range.
        let min = match self.min {
            Some(0) => {
                panic!("adaptive limit: `min` must be at least 1 (a limit of 0 admits no call)")
            }
            Some(min) => min,
            None => DEFAULT_MIN,
        };
        let max = match self.max {
            Some(max) if max > MAX_LIMIT => {
                panic!("adaptive limit: `max` must be at most `Limiter::MAX_LIMIT` (2^31 - 1)")
            }
            Some(max) if max < min => panic!("adaptive limit: `min` is above `max`"),
            Some(max) => max,
            // A `min` above the default `max` is honoured: the default gives way to what was
            // given. (`min` above `MAX_LIMIT` then lands on the check below.)
            None if min > DEFAULT_MAX => min,
            None => DEFAULT_MAX,
        };
        assert!(
            max <= MAX_LIMIT,
            "adaptive limit: `min` must be at most `Limiter::MAX_LIMIT` (2^31 - 1)"
        );
        let initial = match self.initial {
            Some(initial) if initial < min || initial > max => panic!(
                "adaptive limit: `initial` is outside [min, max] (when not given, `min` is 1 \
                 and `max` is 1000, or `min` if that is higher)"
            ),
            Some(initial) => initial,
            // `usize::clamp` is not a `const fn`.
            None if DEFAULT_INITIAL < min => min,
            None if DEFAULT_INITIAL > max => max,
            None => DEFAULT_INITIAL,
        };
        Bounds { initial, min, max }
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{Adaptive, Bounds};
    use crate::gate::MAX_LIMIT;

    fn bounds(initial: usize, min: usize, max: usize) -> Bounds {
        Bounds { initial, min, max }
    }

    #[test]
    fn defaults() {
        let b = Adaptive::new().resolve();
        assert_eq!((b.initial, b.min, b.max), (4, 1, 1000));
        assert_eq!(Adaptive::default(), Adaptive::new());
    }

    /// The module docs' table, row by row, and a few more.
    #[test]
    fn the_resolution_table() {
        let a = Adaptive::new;
        for (given, expected) in [
            (a(), bounds(4, 1, 1000)),
            (a().max(4), bounds(4, 1, 4)),
            (a().max(2), bounds(2, 1, 2)),
            (a().max(1), bounds(1, 1, 1)),
            (a().min(8), bounds(8, 8, 1000)),
            (a().min(2000), bounds(2000, 2000, 2000)),
            (a().initial(50), bounds(50, 1, 1000)),
            (a().initial(1000), bounds(1000, 1, 1000)),
            (a().min(3).max(3), bounds(3, 3, 3)),
            (a().initial(7).min(5).max(9), bounds(7, 5, 9)),
            (a().min(2).max(3), bounds(3, 2, 3)),
            (a().max(MAX_LIMIT), bounds(4, 1, MAX_LIMIT)),
            // The order of the builder's calls does not matter.
            (a().max(9).initial(7).min(5), bounds(7, 5, 9)),
        ] {
            assert_eq!(given.resolve(), expected, "{given:?}");
        }
    }

    /// `resolve` runs at compile time: a `const` (and so a `static`) is checked by the
    /// compiler, and bad bounds there fail the build.
    #[test]
    fn the_builder_in_a_const() {
        const SEARCH: Bounds = Adaptive::new().max(64).resolve();
        assert_eq!(SEARCH, bounds(4, 1, 64));
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `min` must be at least 1")]
    fn min_of_zero() {
        let _ = Adaptive::new().min(0).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `min` is above `max`")]
    fn min_above_max() {
        let _ = Adaptive::new().min(10).max(5).resolve();
    }

    /// `max = 0` with the default `min` is the same error: 1 is above 0.
    #[test]
    #[should_panic(expected = "adaptive limit: `min` is above `max`")]
    fn max_of_zero() {
        let _ = Adaptive::new().max(0).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `max` must be at most `Limiter::MAX_LIMIT`")]
    fn max_above_the_largest_limit() {
        let _ = Adaptive::new().max(MAX_LIMIT + 1).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `min` must be at most `Limiter::MAX_LIMIT`")]
    fn min_above_the_largest_limit() {
        let _ = Adaptive::new().min(MAX_LIMIT + 1).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `initial` is outside [min, max]")]
    fn initial_above_max() {
        let _ = Adaptive::new().initial(11).min(2).max(10).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `initial` is outside [min, max]")]
    fn initial_below_min() {
        let _ = Adaptive::new().initial(1).min(2).resolve();
    }

    /// The default `max` is a bound too: an `initial` above it is an error, not a reason to
    /// raise it.
    #[test]
    #[should_panic(expected = "adaptive limit: `initial` is outside [min, max]")]
    fn initial_above_the_default_max() {
        let _ = Adaptive::new().initial(5000).resolve();
    }

    #[test]
    #[should_panic(expected = "adaptive limit: `initial` is outside [min, max]")]
    fn initial_of_zero() {
        let _ = Adaptive::new().initial(0).resolve();
    }
}
