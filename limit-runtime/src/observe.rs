//! What `tracing` and `metrics` see of the limiters (the `tracing` and `metrics` features; see
//! the crate documentation's Features section for the names and fields). Every call into
//! either crate is in this file, behind its feature; `call.rs` calls the hooks below at each
//! change of a call's state (and `limiter.rs` at a limiter's registration), one line each.
//!
//! With both features off, every hook is an empty `#[inline]` function over zero-sized
//! types, and `in_wait_span!` is its second argument unchanged, so the default build's calls
//! compile to what they would be without this file: no field in a call's future, no branch
//! on its hot path. The hooks that a waiting call runs (`waiting_started`, `left_queue`) take
//! a closure that finds the limiter rather than the limiter itself: the lookup (an atomic
//! load, which the compiler keeps even when nothing uses it) then happens only with a
//! feature on.
//!
//! Which hook runs where:
//!
//! | hook | called from | `tracing` | `metrics` |
//! |---|---|---|---|
//! | [`registered`] | `Limiter::core_cold`, once per limiter | — | builds its keys; every metric at 0 |
//! | [`waiting_started`] | `Queued::enter`, once the call is queued | opens the wait span; `DEBUG` event | `waiting` gauge |
//! | [`in_wait_span!`] | around `wait_in_line!` in `Call::admit` and `Call::admit_with` | span entered while the wait is polled | — |
//! | [`left_queue`] | `Queued::leave` and `Queued::drop` (admitted, timed out, cancelled) | — | `waiting` gauge |
//! | [`admitted`] | `Call::admitted`: every admission, at once or after a wait | `DEBUG` event in the wait span, then closes it (after a wait only) | `running` gauge, `admitted_total`, `wait_seconds` |
//! | [`rejected`] | `Call::refuse`: every refusal counted in `Stats::rejected` | `WARN` event | `rejected_total` |
//! | [`released`] | `Admitted::drop`: body done, cancelled, panicked, permit dropped | — | `running` gauge |
//!
//! The gauges are set from the limiter's own counters ([`Limiter::running`](crate::Limiter::running),
//! [`Limiter::waiting`](crate::Limiter::waiting)) after each change, not moved up and down by the hooks: a recorder
//! installed while calls are in flight then shows true values from the next change on, and no
//! error can build up over time the way it could with increments. Under concurrency, two
//! changes may set a gauge in the opposite order to the one they read it in, so it may show
//! the older value until the next change.

#[cfg(any(feature = "tracing", feature = "metrics"))]
use std::time::Instant;

use crate::core::Core;
use crate::error::LimitError;
use crate::gate::Gate;

/// The target of every event and span, and of every metric's metadata: stable, whatever the
/// module layout.
#[cfg(any(feature = "tracing", feature = "metrics"))]
const TARGET: &str = "limit_runtime";

/// What a limiter keeps for observation: its metric keys, with `metrics`; nothing otherwise.
pub(crate) struct Observed {
    #[cfg(feature = "metrics")]
    keys: std::sync::OnceLock<metrics_keys::Keys>,
}

impl Observed {
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            keys: std::sync::OnceLock::new(),
        }
    }
}

/// One call's wait for a permit, from [`waiting_started`] until [`admitted`] consumes it, or
/// until it is dropped (the call timed out, or was cancelled while it waited). Zero-sized
/// with both features off.
#[must_use]
pub(crate) struct WaitObservation {
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    started: Instant,
    /// `concurrency_limit.wait`; closed when the observation is dropped.
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

#[cfg(feature = "tracing")]
impl WaitObservation {
    /// A handle to the wait span, for `in_wait_span!` to enter while the wait is polled.
    pub(crate) fn span(&self) -> tracing::Span {
        self.span.clone()
    }
}

/// Polls the wait `$waiting` (an expression that awaits) inside the wait span of the
/// [`WaitObservation`] `$wait`: entered for each poll and exited before it returns, so no
/// entered guard is ever held across an await, and a trace tells time spent waiting from time
/// spent in the body. Without `tracing`, it is `$waiting` itself: an `async` block there would
/// nest a second future state in every waiting call's future.
#[cfg(feature = "tracing")]
macro_rules! in_wait_span {
    ($wait:expr, $waiting:expr) => {{
        let span = $wait.span();
        ::tracing::Instrument::instrument(async { $waiting }, span).await
    }};
}

#[cfg(not(feature = "tracing"))]
macro_rules! in_wait_span {
    ($wait:expr, $waiting:expr) => {
        $waiting
    };
}

pub(crate) use in_wait_span;

// ---------------------------------------------------------------------------------------
// Both features off: nothing at all.
// ---------------------------------------------------------------------------------------

#[cfg(not(any(feature = "tracing", feature = "metrics")))]
mod hooks {
    use super::{Core, Gate, LimitError, WaitObservation};

    #[inline]
    pub(crate) fn registered(_limiter: &Core) {}

    #[inline]
    pub(crate) fn waiting_started<'a>(
        _limiter: impl FnOnce() -> (&'a Core, &'a Gate),
    ) -> WaitObservation {
        WaitObservation {}
    }

    #[inline]
    pub(crate) fn left_queue<'a>(_limiter: impl FnOnce() -> &'a Core) {}

    #[inline]
    pub(crate) fn admitted(_limiter: &Core, _wait: Option<WaitObservation>) {}

    #[inline]
    pub(crate) fn rejected(_limiter: &Core, _error: &LimitError) {}

    #[inline]
    pub(crate) fn released(_limiter: &Core) {}
}

// ---------------------------------------------------------------------------------------
// Either feature on.
// ---------------------------------------------------------------------------------------

#[cfg(any(feature = "tracing", feature = "metrics"))]
mod hooks {
    use super::{Core, Gate, Instant, LimitError, WaitObservation};

    /// Once per limiter, when its limit is set and it is registered (its first call or
    /// permit). With `metrics`, it builds the limiter's keys, so that no later call
    /// allocates, and reports every metric at zero, so that each one exists from the first
    /// call on rather than from the first wait or refusal.
    #[cfg_attr(not(feature = "metrics"), expect(unused_variables))]
    pub(crate) fn registered(limiter: &Core) {
        #[cfg(feature = "metrics")]
        super::metrics_keys::registered(limiter);
    }

    /// A call found no free permit and has just queued at `gate` (`Gate::enqueue`
    /// succeeded). With `tracing`, it opens the wait span and emits the wait-start event in
    /// it.
    #[cfg_attr(not(feature = "tracing"), expect(unused_variables))]
    pub(crate) fn waiting_started<'a>(
        limiter: impl FnOnce() -> (&'a Core, &'a Gate),
    ) -> WaitObservation {
        let (limiter, gate) = limiter();
        #[cfg(feature = "metrics")]
        super::metrics_keys::set_waiting(limiter);
        #[cfg(feature = "tracing")]
        let span = {
            let name = limiter.name().as_str();
            let span = tracing::debug_span!(
                target: super::TARGET,
                "concurrency_limit.wait",
                limiter = name,
            );
            span.in_scope(|| {
                tracing::debug!(
                    target: super::TARGET,
                    limiter = name,
                    limit = gate.limit(),
                    "waiting for a permit"
                );
            });
            span
        };
        WaitObservation {
            started: Instant::now(),
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// A queued call has left the queue: admitted, timed out, or cancelled.
    #[cfg_attr(not(feature = "metrics"), expect(unused_variables))]
    pub(crate) fn left_queue<'a>(limiter: impl FnOnce() -> &'a Core) {
        #[cfg(feature = "metrics")]
        super::metrics_keys::set_waiting(limiter());
    }

    /// A call has just been admitted (and counted in `Stats`): at once if `wait` is `None`,
    /// else after the wait it describes. The histogram records every admission (0 for one at
    /// once), so its count is `concurrency_limit_admitted_total`. After a wait, the admitted
    /// event goes in the wait span, which then closes, before the body runs.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the observation is consumed: dropping it here closes the wait span"
    )]
    pub(crate) fn admitted(limiter: &Core, wait: Option<WaitObservation>) {
        let waited = wait.as_ref().map(|wait| wait.started.elapsed());
        #[cfg(feature = "metrics")]
        super::metrics_keys::admitted(limiter, waited.unwrap_or_default());
        #[cfg(feature = "tracing")]
        if let (Some(wait), Some(waited)) = (&wait, waited) {
            wait.span.in_scope(|| {
                tracing::debug!(
                    target: super::TARGET,
                    limiter = limiter.name().as_str(),
                    ?waited,
                    "admitted after waiting"
                );
            });
        }
        // `wait` is dropped here, which closes the wait span.
    }

    /// A call was refused: `max_wait` ran out, `queue` was full, or no permit was free and
    /// the call may not wait (`max_wait = Duration::ZERO`, `Limiter::try_acquire`).
    #[cfg_attr(not(feature = "tracing"), expect(unused_variables))]
    pub(crate) fn rejected(limiter: &Core, error: &LimitError) {
        #[cfg(feature = "metrics")]
        super::metrics_keys::rejected(limiter);
        #[cfg(feature = "tracing")]
        {
            let (limit, reason) = match *error {
                LimitError::Timeout { limit, .. } => (limit, "timeout"),
                LimitError::QueueFull { limit, .. } => (limit, "queue_full"),
                LimitError::NoPermit { limit, .. } => (limit, "no_permit"),
                LimitError::TooHeavy { limit, .. } => (limit, "too_heavy"),
            };
            tracing::warn!(
                target: super::TARGET,
                limiter = limiter.name().as_str(),
                limit,
                reason,
                "{error}"
            );
        }
    }

    /// An admitted call gave its permit back: its body ended, panicked or was cancelled, or
    /// a `Permit` was dropped.
    #[cfg_attr(not(feature = "metrics"), expect(unused_variables))]
    pub(crate) fn released(limiter: &Core) {
        #[cfg(feature = "metrics")]
        super::metrics_keys::set_running(limiter);
    }
}

pub(crate) use hooks::{admitted, left_queue, registered, rejected, released, waiting_started};

// ---------------------------------------------------------------------------------------
// An adaptive limit's changes: one per round of calls at most, so the macros serve.
// ---------------------------------------------------------------------------------------

/// An adaptive limiter's controller moved the limit (of a key, if `keyed`): `DEBUG` with the
/// reason, and the gauge `concurrency_limit_limit` (the limiter's own limit; a key's limit is
/// not a gauge, as keys are not labels).
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    expect(unused_variables)
)]
pub(crate) fn limit_changed(limiter: &Core, keyed: bool, change: crate::adaptive::state::Change) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: TARGET,
        limiter = limiter.name().as_str(),
        from = change.from,
        to = change.to,
        reason = change.reason.as_str(),
        keyed,
        "adaptive limit {} -> {} ({})",
        change.from,
        change.to,
        change.reason.as_str(),
    );
    #[cfg(feature = "metrics")]
    if !keyed {
        metrics_keys::set_limit(limiter, change.to);
    }
}

/// A limit set by hand (`set_limit`) on an adaptive limiter: the gauge.
#[cfg_attr(not(feature = "metrics"), expect(unused_variables))]
pub(crate) fn limit_set(limiter: &Core, limit: usize) {
    #[cfg(feature = "metrics")]
    metrics_keys::set_limit(limiter, limit);
}

/// An adaptive limiter forgot the learned limits of `count` keys idle longest (more than
/// `keyed::LEARNED_KEYS` were idle): `DEBUG`.
#[cfg_attr(not(feature = "tracing"), expect(unused_variables))]
pub(crate) fn keys_forgotten(count: usize) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: TARGET,
        count,
        "adaptive limit: forgot what {count} idle keys learned (more than {} keys were idle)",
        crate::keyed::LEARNED_KEYS,
    );
}

// ---------------------------------------------------------------------------------------
// A fleet's events (the `redis` feature): rare, so the macros serve.
// ---------------------------------------------------------------------------------------

/// A limiter was shared: `DEBUG`, and a `WARN` when the code's limit differs from the
/// fleet's (which wins).
#[cfg(feature = "redis")]
#[cfg_attr(not(feature = "tracing"), expect(unused_variables))]
pub(crate) fn fleet_shared(limiter: &Core, local_limit: usize, limit: usize) {
    #[cfg(feature = "tracing")]
    {
        let name = limiter.name().as_str();
        if local_limit == limit {
            tracing::debug!(target: TARGET, limiter = name, limit, "shared with the fleet");
        } else {
            tracing::warn!(
                target: TARGET,
                limiter = name,
                limit,
                local_limit,
                "shared with the fleet, whose limit of {limit} wins over this process's {local_limit}"
            );
        }
    }
}

/// A lease expired while its call still ran: the fleet may admit one call too many until
/// that call ends. `WARN`, and the counter `concurrency_limit_fleet_leases_lost_total`.
#[cfg(feature = "redis")]
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    expect(unused_variables)
)]
pub(crate) fn fleet_lease_lost(limiter: &crate::Name, weight: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: TARGET,
        limiter = limiter.as_str(),
        weight,
        "a lease expired while its call still ran (the process was paused or cut off from \
         Redis for longer than the lease): the fleet may run over its limit until the call ends"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!("concurrency_limit_fleet_leases_lost_total", "limiter" => limiter.to_string())
        .increment(1);
}

/// The server had lost a shared limiter's keys (a restart without its data), and this
/// process registered `count` leases of its running calls again, during the quiet period.
/// `WARN`, and the counter `concurrency_limit_fleet_leases_reregistered_total`.
#[cfg(feature = "redis")]
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    expect(unused_variables)
)]
pub(crate) fn fleet_reregistered(limiter: &crate::Name, count: u64) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: TARGET,
        limiter = limiter.as_str(),
        count,
        "the Redis server lost the limiter's keys (a restart without its data): this \
         process's leases are registered again, and the fleet admits nothing new for a lease"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "concurrency_limit_fleet_leases_reregistered_total",
        "limiter" => limiter.to_string()
    )
    .increment(count);
}

/// A call of a shared limiter was admitted by this process alone, the server being
/// unreachable (`OnUnreachable::Local`). `WARN`, and the counter
/// `concurrency_limit_fleet_local_admissions_total`.
#[cfg(feature = "redis")]
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    expect(unused_variables)
)]
pub(crate) fn fleet_local_admission(limiter: &crate::Name, weight: usize) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: TARGET,
        limiter = limiter.as_str(),
        weight,
        "admitted without the fleet (the Redis server is unreachable): this call runs outside \
         the fleet's limit"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "concurrency_limit_fleet_local_admissions_total",
        "limiter" => limiter.to_string()
    )
    .increment(1);
}

/// A round trip to the fleet's server failed; it is tried again. `WARN`, and the counter
/// `concurrency_limit_fleet_errors_total` (label `server`, without its password).
#[cfg(feature = "redis")]
#[cfg_attr(
    not(any(feature = "tracing", feature = "metrics")),
    expect(unused_variables)
)]
pub(crate) fn fleet_error(server: &str, what: &str, error: &dyn std::error::Error) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: TARGET, server, script = what, "Redis round trip failed: {error}");
    #[cfg(feature = "metrics")]
    metrics::counter!("concurrency_limit_fleet_errors_total", "server" => server.to_owned())
        .increment(1);
}

// ---------------------------------------------------------------------------------------
// `metrics`: the keys and the recorder calls.
// ---------------------------------------------------------------------------------------

/// The recorder calls behind the `metrics` hooks.
///
/// Not the `gauge!`/`counter!`/`histogram!` macros: with a label value that is not a literal
/// (the limiter's name), they build a fresh `Key`, with its labels in a new `Vec`, and hash
/// it, at every emission, even with no recorder installed. Each limiter's keys are built once
/// instead, at its registration, and each emission asks [`metrics::with_recorder`] for the
/// recorder in effect, as the macros do, so a recorder installed later (or a thread's local
/// one) still sees every metric, and a call allocates nothing.
#[cfg(feature = "metrics")]
mod metrics_keys {
    use std::time::Duration;

    use metrics::{Key, Label, Level, Metadata, Recorder};

    use crate::core::Core;

    const RUNNING: &str = "concurrency_limit_running";
    const WAITING: &str = "concurrency_limit_waiting";
    const ADMITTED: &str = "concurrency_limit_admitted_total";
    const REJECTED: &str = "concurrency_limit_rejected_total";
    const WAIT_SECONDS: &str = "concurrency_limit_wait_seconds";
    const LIMIT: &str = "concurrency_limit_limit";

    static METADATA: Metadata<'static> =
        Metadata::new(super::TARGET, Level::INFO, Some(module_path!()));

    /// One limiter's keys: each metric's name with the label `limiter` = its name.
    pub(super) struct Keys {
        running: Key,
        waiting: Key,
        admitted: Key,
        rejected: Key,
        wait_seconds: Key,
        limit: Key,
    }

    fn keys(limiter: &Core) -> &Keys {
        limiter.observed.keys.get_or_init(|| {
            let key = |name: &'static str| {
                Key::from_parts(
                    name,
                    vec![Label::new("limiter", limiter.name().to_string())],
                )
            };
            Keys {
                running: key(RUNNING),
                waiting: key(WAITING),
                admitted: key(ADMITTED),
                rejected: key(REJECTED),
                wait_seconds: key(WAIT_SECONDS),
                limit: key(LIMIT),
            }
        })
    }

    fn with_recorder(limiter: &Core, emit: impl FnOnce(&dyn Recorder, &Keys)) {
        let keys = keys(limiter);
        metrics::with_recorder(|recorder| emit(recorder, keys));
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "counts of calls are far below 2^52"
    )]
    fn gauge_value(count: usize) -> f64 {
        count as f64
    }

    pub(super) fn registered(limiter: &Core) {
        let (running, waiting) = (limiter.running(), limiter.waiting());
        let limit = limiter.limit();
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_gauge(&keys.limit, &METADATA)
                .set(gauge_value(limit));
            recorder
                .register_gauge(&keys.running, &METADATA)
                .set(gauge_value(running));
            recorder
                .register_gauge(&keys.waiting, &METADATA)
                .set(gauge_value(waiting));
            recorder
                .register_counter(&keys.admitted, &METADATA)
                .increment(0);
            recorder
                .register_counter(&keys.rejected, &METADATA)
                .increment(0);
            // A histogram has no zero to report; registering it is enough for exporters
            // that list what is registered.
            drop(recorder.register_histogram(&keys.wait_seconds, &METADATA));
        });
    }

    pub(super) fn set_limit(limiter: &Core, limit: usize) {
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_gauge(&keys.limit, &METADATA)
                .set(gauge_value(limit));
        });
    }

    pub(super) fn set_running(limiter: &Core) {
        let running = limiter.running();
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_gauge(&keys.running, &METADATA)
                .set(gauge_value(running));
        });
    }

    pub(super) fn set_waiting(limiter: &Core) {
        let waiting = limiter.waiting();
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_gauge(&keys.waiting, &METADATA)
                .set(gauge_value(waiting));
        });
    }

    pub(super) fn admitted(limiter: &Core, waited: Duration) {
        let running = limiter.running();
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_gauge(&keys.running, &METADATA)
                .set(gauge_value(running));
            recorder
                .register_counter(&keys.admitted, &METADATA)
                .increment(1);
            recorder
                .register_histogram(&keys.wait_seconds, &METADATA)
                .record(waited.as_secs_f64());
        });
    }

    pub(super) fn rejected(limiter: &Core) {
        with_recorder(limiter, |recorder, keys| {
            recorder
                .register_counter(&keys.rejected, &METADATA)
                .increment(1);
        });
    }
}
