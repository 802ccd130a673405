//! Snapshots of a limiter's counters, and the shutdown report of what is still in flight.

use std::fmt;
use std::time::Duration;

use crate::Name;

/// A snapshot of one limiter, from [`Limiter::stats`](crate::Limiter::stats).
///
/// The counters are read one after another, not atomically together, so under load they
/// may disagree by the calls that moved between two reads.
///
/// ```
/// use limit_runtime::Limiter;
///
/// static DB: Limiter = Limiter::new(4).with_name("db");
///
/// let permit = DB.try_acquire().unwrap();
/// let stats = DB.stats();
/// assert_eq!(stats.name, "db");
/// assert_eq!((stats.limit, stats.running), (4, 1));
/// assert_eq!((stats.admitted, stats.peak_running), (1, 1));
/// drop(permit);
/// assert_eq!(DB.stats().running, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The limiter's name.
    pub name: Name,
    /// The limit now (per key, for a limiter with `key = …`), in permits.
    pub limit: usize,
    /// Permits held now (all keys together): the calls running, each counted by its weight
    /// (1 unless `weight = …` or `acquire_many` says otherwise).
    pub running: usize,
    /// Calls waiting for a permit now (all keys together).
    pub waiting: usize,
    /// Calls in flight now: made and not yet finished, whether running, waiting, or not
    /// polled yet. This is what `drain()` waits for.
    pub in_flight: usize,
    /// Calls admitted (given a permit) since the limiter was created.
    pub admitted: u64,
    /// Calls refused since the limiter was created: by `max_wait` or `queue`, by a weight
    /// above the limit in a function that returns the refusal, or a
    /// [`try_acquire`](crate::Limiter::try_acquire) (or `try_acquire_many`) that found no
    /// permit free or asked for more than the limit. A too-heavy call that panics is not
    /// counted: it was never made.
    pub rejected: u64,
    /// The most permits ever held at once (all keys together, for a limiter with
    /// `key = …`): the most calls that ever ran at once, for a limiter without weights.
    pub peak_running: usize,
    /// Keys with a call in flight, for a limiter with `key = …`; 0 otherwise.
    pub active_keys: usize,
    /// What the fleet says, for a limiter shared through Redis (the `redis` feature); `None`
    /// for a limiter of this process alone. `limit`, `running` and `waiting` above stay this
    /// process's view, but for `limit`, which is the fleet's.
    pub fleet: Option<SharedStats>,
    /// What the controller estimates, for an adaptive limiter
    /// ([`Limiter::adaptive`](crate::Limiter::adaptive), or the attribute's `adaptive`);
    /// `None` for a fixed limit. For a limiter with `key = …`, each key adapts on its own, and
    /// this is the limiter's own controller (the one new keys start from).
    pub adaptive: Option<AdaptiveStats>,
}

/// An adaptive limiter's controller, in [`Stats::adaptive`]: see the README's "Adaptive
/// limits". Durations and counts, so that `Stats` stays `Eq`.
///
/// ```
/// use limit_runtime::{Adaptive, Limiter};
///
/// let api = Limiter::adaptive(Adaptive::new().min(2).max(64));
/// let stats = api.stats().adaptive.unwrap();
/// assert_eq!((stats.min, stats.max), (2, 64));
/// assert_eq!(stats.baseline, None); // no call has come back yet
/// assert_eq!(stats.samples, 0);
/// assert!(stats.slow_start);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdaptiveStats {
    /// The lowest limit it goes down to.
    pub min: usize,
    /// The highest limit it goes up to.
    pub max: usize,
    /// The unloaded RTT it estimates (a call's duration with no queue), once a round of
    /// calls has come back.
    pub baseline: Option<Duration>,
    /// The mean duration of the calls of its last round (about one RTT of calls).
    pub rtt: Option<Duration>,
    /// Calls that ended and were counted: each body that returned (a cancelled or panicking
    /// call, or a refused one, is no sample).
    pub samples: u64,
    /// Samples whose output the function called overloaded (`overloaded = …`).
    pub overloaded: u64,
    /// Whether it is re-measuring its baseline now, the limit halved for about two RTTs.
    pub probing: bool,
    /// Whether it is still in slow start, doubling the limit each unqueued round.
    pub slow_start: bool,
}

/// The fleet's side of a shared limiter, in [`Stats::fleet`]: see the crate docs' "Across
/// processes" section (the `redis` feature).
///
/// ```
/// use limit_runtime::Limiter;
///
/// static LOCAL: Limiter = Limiter::new(3);
/// assert_eq!(LOCAL.stats().fleet, None); // not shared
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Permits held by every process together, as of this process's last round trip to
    /// Redis (at most one renewal interval old while it holds or waits for permits).
    pub held: usize,
    /// The limit this process's code gave the limiter. The fleet's limit, stored in Redis by
    /// the first process to share it, wins; when the two differ, `Stats::limit` shows the
    /// fleet's, this shows the code's, and a `WARN` was logged when the limiter was shared.
    pub local_limit: usize,
    /// This process's leases that expired while their calls still ran (the process was
    /// paused, or cut off from Redis, for longer than a lease): each let the fleet admit
    /// one call more than its limit for the rest of that call.
    pub leases_lost: u64,
    /// This process's waiters whose place in line expired while they waited (cut off from
    /// Redis for longer than a lease): each joined the line again, at its back.
    pub requeued: u64,
    /// This process's leases that the server lost in a restart without its data, and that
    /// this process registered again during the quiet period that follows (see the README's
    /// "Across processes"): their calls ran on, counted.
    pub reregistered: u64,
    /// Calls admitted by this process alone while the server was unreachable, under
    /// [`OnUnreachable::Local`](crate::redis::OnUnreachable::Local): each ran outside the
    /// fleet's count.
    pub local_admissions: u64,
}

/// One line for one limiter, as [`stragglers()`] writes it: its name, and its calls in
/// flight, running and waiting. So a server can report on its own limiter at shutdown.
///
/// ```
/// use limit_runtime::Limiter;
///
/// let connections = Limiter::new(250).with_name("server-1");
/// let permit = connections.try_acquire().unwrap();
/// assert_eq!(
///     connections.stats().to_string(),
///     r#""server-1" (1 in flight: 1 running, 0 waiting)"#
/// );
/// # drop(permit);
/// ```
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({} in flight: {} running, {} waiting)",
            self.name.as_str(),
            self.in_flight,
            self.running,
            self.waiting
        )
    }
}

/// The limiters that still have calls in flight, formatted for one log line. From
/// [`stragglers()`].
///
/// ```
/// use limit_runtime::{concurrency_limit, stragglers};
///
/// #[concurrency_limit(1, name = "slow-job")]
/// async fn slow_job() {}
///
/// let pending = slow_job();
/// assert_eq!(
///     stragglers().to_string(),
///     r#"1 limiter with calls in flight: "slow-job" (1 in flight: 0 running, 0 waiting)"#
/// );
/// drop(pending);
/// assert_eq!(stragglers().to_string(), "no limited call in flight");
/// ```
#[derive(Clone, Debug)]
pub struct Stragglers(pub(crate) Vec<Stats>);

impl Stragglers {
    /// The snapshot of each limiter that had calls in flight.
    ///
    /// ```
    /// use limit_runtime::{concurrency_limit, stragglers};
    ///
    /// #[concurrency_limit(2, name = "uploads")]
    /// async fn upload(_file: &str) {}
    ///
    /// let (a, b) = (upload("a.txt"), upload("b.txt")); // made, not polled yet
    /// let report = stragglers();
    /// let uploads = report.stats().iter().find(|stats| stats.name == "uploads").unwrap();
    /// assert_eq!((uploads.in_flight, uploads.running), (2, 0));
    /// # drop((a, b));
    /// ```
    #[must_use]
    pub fn stats(&self) -> &[Stats] {
        &self.0
    }

    /// Whether nothing was in flight.
    ///
    /// ```
    /// use limit_runtime::{concurrency_limit, stragglers};
    ///
    /// #[concurrency_limit(1, name = "reports")]
    /// async fn report() {}
    ///
    /// futures::executor::block_on(report());
    /// // Nothing of `reports` is in flight (other limiters of the process might be).
    /// assert!(stragglers().stats().iter().all(|stats| stats.name != "reports"));
    /// let pending = report();
    /// assert!(!stragglers().is_empty());
    /// # drop(pending);
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Stragglers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        if count == 0 {
            return f.write_str("no limited call in flight");
        }
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "{count} limiter{plural} with calls in flight: ")?;
        for (index, stats) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{stats}")?;
        }
        Ok(())
    }
}

/// What is still in flight, for a log line at shutdown when `drain()` ran out of time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// if tokio::time::timeout(Duration::from_secs(5), limit_runtime::drain()).await.is_err() {
///     eprintln!("shutdown grace period over; {}", limit_runtime::stragglers());
/// }
/// # }
/// ```
#[must_use]
pub fn stragglers() -> Stragglers {
    Stragglers(
        crate::limiters()
            .map(|limiter| limiter.stats())
            .filter(|stats| stats.in_flight > 0)
            .collect(),
    )
}
