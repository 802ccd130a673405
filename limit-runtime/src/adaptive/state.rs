//! [`State`]: an adaptive limit's controller in a limiter's core (or a key's slot), with the
//! clock its calls are stamped against, and [`Stamp`], what an adaptive call carries from its
//! body's start to its end.
//!
//! The split of the work: a call is stamped as its body starts, in the poll that admits it
//! (`Admitted::start`, through a `Sampled` claim in `call.rs`: one clock read, no lock), and
//! when its body returns it gives its sample here (`Admitted::complete`: a second clock read
//! and the controller's lock). A call that is cancelled, panics or is refused never reaches
//! `complete`, so it is no sample.
//! The controller's answer, a new limit, is applied by the caller through the gate's own
//! resizing (`Gate::set_limit`), so a shrink never revokes a running call.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::time::Instant;

use super::Bounds;
use super::controller::{Controller, Reason};

/// What an adaptive call carries from its body's start to its end: when it started, in
/// nanoseconds since its limiter's first stamp, plus one (0 is [`Stamp::NONE`], a call not
/// stamped), and the permits its gate held right after (the controller's in-flight count),
/// plus one.
///
/// 16 bytes, and no more in a call's future: the stamp is not an `Option` (whose niche would
/// be `at`'s), so the niche of `held` (never 0) is left for the `Option` around the call's
/// parts (`call.rs`), which would otherwise need a tag and 8 bytes more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    at: u64,
    held: NonZeroU32,
}

impl Stamp {
    /// A call not stamped: its limiter is not adaptive, or its body has not started yet.
    pub(crate) const NONE: Self = Self {
        at: 0,
        held: NonZeroU32::MIN,
    };

    /// The stamp, unless it is [`NONE`](Self::NONE); `self` is left `NONE`.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Self> {
        if self.at == 0 {
            return None;
        }
        Some(std::mem::replace(self, Self::NONE))
    }
}

/// A change of the limit that a sample caused: for the `DEBUG` event and the gauge.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(feature = "tracing"),
    allow(
        dead_code,
        reason = "all read by the `tracing` event; `to` also by the gauge"
    )
)]
pub(crate) struct Change {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) reason: Reason,
}

/// One adaptive limit's controller and clock.
#[derive(Debug)]
pub(crate) struct State {
    bounds: Bounds,
    /// The instant that stamps count from: the first stamp's. On tokio's clock, so that a
    /// paused runtime's calls see its simulated time.
    epoch: OnceLock<Instant>,
    /// Taken once per sample (and by a manual `set_limit`): the controller's decisions, and
    /// the gate changes they cause, happen in the order of the samples.
    controller: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    controller: Controller,
    samples: u64,
    overloaded: u64,
    /// A limit set by hand outside the bounds, in force at the gate until the controller's
    /// next decision, and the controller's round count when it was set.
    outside: Option<u64>,
    /// Paused by hand (`set_limit(0)`): the controller's changes wait until a limit is set
    /// again.
    paused: bool,
}

impl State {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            epoch: OnceLock::new(),
            controller: Mutex::new(Inner {
                controller: Controller::new(bounds),
                samples: 0,
                overloaded: 0,
                outside: None,
                paused: false,
            }),
        }
    }

    /// A new key's controller: the same bounds, starting from `limit` (the limiter's limit
    /// now, within the bounds), with a clock of its own.
    pub(crate) fn for_key(&self, limit: usize) -> Self {
        let bounds = self.bounds;
        Self::new(super::Bounds {
            initial: limit.clamp(bounds.min, bounds.max),
            ..bounds
        })
    }

    pub(crate) fn bounds(&self) -> Bounds {
        self.bounds
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The controller's arithmetic does not panic; if a panic ever left it half-updated,
        // its next round starts it over.
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stamps a call whose body starts now, with `held` permits held by its gate.
    #[inline]
    pub(crate) fn stamp(&self, held: usize) -> Stamp {
        Stamp {
            at: self.since_epoch(Instant::now()) + 1,
            // Permits held are at most `MAX_LIMIT` (2^31 - 1), so one more fits.
            held: NonZeroU32::MIN.saturating_add(u32::try_from(held).unwrap_or(u32::MAX - 1)),
        }
    }

    /// The sample of a call stamped with `stamp` that ends now, `overloaded` if its output
    /// says the downstream is overloaded. `apply` is called with the new limit, if the
    /// controller moves it, while the controller's lock is held (so that two changes reach
    /// the gate in the order they were decided).
    pub(crate) fn sample(
        &self,
        stamp: Stamp,
        overloaded: bool,
        apply: impl FnOnce(usize),
    ) -> Option<Change> {
        // The clock is read once, and its one subtraction gives both times the controller
        // needs (a stamp's `at` is nanoseconds since the epoch, plus one).
        let since_epoch = self.since_epoch(Instant::now());
        #[expect(
            clippy::cast_precision_loss,
            reason = "nanoseconds as seconds: an f64 keeps 52 bits, a microsecond after 100 days"
        )]
        let (now_s, rtt) = (
            since_epoch as f64 * 1e-9,
            (since_epoch + 1).saturating_sub(stamp.at) as f64 * 1e-9,
        );
        let mut inner = self.lock();
        inner.samples += 1;
        inner.overloaded += u64::from(overloaded);
        let from = inner.controller.limit();
        let changed =
            inner
                .controller
                .on_sample_secs(now_s, rtt, stamp.held.get() as usize - 1, overloaded);
        let to = match (changed, inner.outside) {
            (Some(to), _) => to,
            // A limit set by hand outside the bounds holds until the controller decides
            // again; then the gate comes back within them, change or not.
            (None, Some(rounds)) if inner.controller.rounds() != rounds => inner.controller.limit(),
            (None, _) => return None,
        };
        inner.outside = None;
        if inner.paused {
            return None;
        }
        apply(to);
        Some(Change {
            from,
            to,
            reason: inner.controller.reason(),
        })
    }

    /// A limit set by hand: the controller goes on from it (within its bounds), and the gate
    /// takes it as given: 0 pauses, as for any limiter, until a limit is set again; a limit
    /// outside the bounds lasts until the controller's next decision.
    /// `apply` sets the gate, under the controller's lock (see [`sample`](Self::sample)).
    pub(crate) fn set_limit(&self, limit: usize, apply: impl FnOnce(usize)) {
        let now = self.seconds(Instant::now());
        let mut inner = self.lock();
        inner.controller.set_limit_secs(now, limit);
        // 0 pauses until a limit is set again; any other limit outside the bounds lasts
        // until the controller's next decision (`sample`).
        let within = limit == 0 || limit == inner.controller.limit();
        inner.outside = (!within).then(|| inner.controller.rounds());
        inner.paused = limit == 0;
        apply(limit);
    }

    /// Seconds from the epoch (the first stamp; set now, if there is none yet) to `now`,
    /// with the nanosecond count that stamps use.
    fn since_epoch(&self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_init(|| now);
        // Saturating, one short of the maximum so that a stamp's `+ 1` fits (584 years).
        u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "nanoseconds as seconds: an f64 keeps 52 bits, a microsecond after 100 days"
    )]
    fn seconds(&self, now: Instant) -> f64 {
        self.since_epoch(now) as f64 * 1e-9
    }

    /// What `stats().adaptive` shows.
    pub(crate) fn stats(&self) -> crate::stats::AdaptiveStats {
        let inner = self.lock();
        crate::stats::AdaptiveStats {
            min: self.bounds.min,
            max: self.bounds.max,
            baseline: inner.controller.baseline(),
            rtt: inner.controller.rtt(),
            samples: inner.samples,
            overloaded: inner.overloaded,
            probing: inner.controller.probing(),
            slow_start: inner.controller.in_slow_start(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::State;
    use crate::adaptive::Adaptive;

    /// Feeds `n` calls of 100 ms, one after another (on paused time), each admitted with
    /// `held` in flight; `gate` takes the limits the state applies.
    async fn calls(state: &State, gate: &Cell<usize>, n: usize, held: usize) {
        for _ in 0..n {
            let stamp = state.stamp(held);
            tokio::time::advance(Duration::from_millis(100)).await;
            state.sample(stamp, false, |limit| gate.set(limit));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_set_outside_the_bounds_lasts_until_the_next_decision() {
        let state = State::new(Adaptive::new().max(16).resolve());
        let gate = Cell::new(4);
        state.set_limit(100, |limit| gate.set(limit));
        assert_eq!(gate.get(), 100, "taken as given");
        calls(&state, &gate, 40, 1).await;
        assert!(gate.get() <= 16, "back within the bounds: {}", gate.get());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_lasts_until_a_limit_is_set_again() {
        let state = State::new(Adaptive::new().max(16).resolve());
        let gate = Cell::new(4);
        state.set_limit(0, |limit| gate.set(limit));
        calls(&state, &gate, 40, 1).await;
        assert_eq!(gate.get(), 0, "still paused");
        state.set_limit(3, |limit| gate.set(limit));
        assert_eq!(gate.get(), 3);
    }
}
