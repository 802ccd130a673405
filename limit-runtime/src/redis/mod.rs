//! [`Fleet`](crate::redis::Fleet) and [`Fleet::share`](crate::redis::Fleet::share): the
//! `redis` feature. Its rules follow, as the README's "Across processes" section states them.

mod driver;
mod link;
mod scripts;
#[cfg(feature = "redis-tls")]
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::Limiter;
use crate::core::{Core, Unshareable};

pub use crate::fence::{FencingToken, fencing_token};

use driver::Config;
use link::Link;

/// A connection to one Redis server, through which limiters are shared with the other
/// processes connected to it. Cheap to clone: the clones are one fleet.
///
/// It runs on a thread of its own (with a tokio runtime of its own), so it works whatever
/// runtime calls it, and it outlives the runtime that connected it. Dropping every `Fleet`
/// does not unshare anything: a shared limiter keeps what it needs alive, and goes on
/// renewing its leases, until the limiter itself is dropped (never, for a `static`).
///
/// ```no_run
/// use limit_runtime::Limiter;
/// use limit_runtime::redis::Fleet;
///
/// static PARTNER: Limiter = Limiter::new(5).with_name("partner-api");
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = Fleet::connect("redis://127.0.0.1:6379/").await?;
/// fleet.share(&PARTNER).await?;
/// let permit = PARTNER.acquire().await; // one of 5 across the fleet
/// # drop(permit);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<driver::Handle>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("id", &self.id())
            .field("server", &self.inner.shared.config.server)
            .field("key_prefix", &self.inner.shared.config.prefix)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Connects to the Redis server at `url` with the default settings (see
    /// [`FleetBuilder`]): `redis://host:port/db`, with `redis://user:password@host/` for a
    /// server that asks for a password.
    ///
    /// # Errors
    ///
    /// [`FleetError::InvalidUrl`] for a URL that redis-rs cannot parse, and
    /// [`FleetError::Unreachable`] when the server does not answer within the connect
    /// timeout. Never a panic.
    ///
    /// ```
    /// use limit_runtime::redis::{Fleet, FleetError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let error = Fleet::connect("not a url").await.unwrap_err();
    /// assert!(matches!(error, FleetError::InvalidUrl { .. }));
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, FleetError> {
        Self::builder(url).build().await
    }

    /// A [`FleetBuilder`], to change the settings before connecting.
    ///
    /// ```no_run
    /// use limit_runtime::redis::Fleet;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), limit_runtime::redis::FleetError> {
    /// let fleet = Fleet::builder("redis://127.0.0.1:6379/")
    ///     .lease(Duration::from_secs(10))
    ///     .renew_every(Duration::from_secs(3))
    ///     .key_prefix("billing:limits")
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(url: &str) -> FleetBuilder {
        FleetBuilder {
            url: url.to_owned(),
            config: Config::default(),
            #[cfg(feature = "redis-tls")]
            tls: tls::Tls::default(),
        }
    }

    /// Shares `limiter` with every process that shares a limiter of the same name through
    /// the same server (and key prefix). From then on its limit holds across all of them.
    ///
    /// The limit in force is the one stored in Redis: the first process to share the name
    /// stores its limiter's limit, and every later one adopts it (a different limit in its
    /// code is reported: a `WARN` event with the `tracing` feature, and
    /// [`SharedStats::local_limit`](crate::SharedStats::local_limit)). `set_limit` on any
    /// process changes it for all of them.
    ///
    /// Share a limiter before its first call, at start-up: a call made at the same moment
    /// may run outside the fleet's count.
    ///
    /// # Errors
    ///
    /// - [`FleetError::DefaultName`]: the limiter has no name of its own (its name is where
    ///   it was defined, which other programs do not share); give it one with
    ///   [`with_name`](Limiter::with_name).
    /// - [`FleetError::AlreadyShared`]: it was shared already, by this fleet or another.
    /// - [`FleetError::NameTaken`]: another limiter of this process shares that name here.
    /// - [`FleetError::InUse`]: it has calls in flight.
    /// - [`FleetError::Adaptive`]: it is adaptive ([`Limiter::adaptive`]); the processes
    ///   would need to agree on one controller, which the fleet does not do yet.
    /// - [`FleetError::Redis`]: the server did not answer.
    ///
    /// ```no_run
    /// use limit_runtime::Limiter;
    /// use limit_runtime::redis::{Fleet, FleetError};
    ///
    /// static UNNAMED: Limiter = Limiter::new(3);
    /// static NAMED: Limiter = Limiter::new(3).with_name("exports");
    ///
    /// # #[tokio::main]
    /// # async fn main() {
    /// let fleet = Fleet::connect("redis://127.0.0.1:6379/").await.unwrap();
    /// let error = fleet.share(&UNNAMED).await.unwrap_err();
    /// assert!(matches!(error, FleetError::DefaultName { .. }));
    /// fleet.share(&NAMED).await.unwrap();
    /// # }
    /// ```
    pub async fn share(&self, limiter: &'static Limiter) -> Result<(), FleetError> {
        self.share_limiter(limiter).await
    }

    /// [`share`](Self::share), for a limiter in an `Arc` (one per instance, say). The fleet
    /// holds no strong reference to it: when its last `Arc` is dropped, its leases are given
    /// back and its name is free to share again.
    ///
    /// # Errors
    ///
    /// As [`share`](Self::share).
    ///
    /// ```no_run
    /// use limit_runtime::Limiter;
    /// use limit_runtime::redis::Fleet;
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), limit_runtime::redis::FleetError> {
    /// let fleet = Fleet::connect("redis://127.0.0.1:6379/").await?;
    /// let replicas = Arc::new(Limiter::new(4).with_owned_name(format!("db-{}", 1)));
    /// fleet.share_arc(&replicas).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn share_arc(&self, limiter: &Arc<Limiter>) -> Result<(), FleetError> {
        self.share_limiter(limiter).await
    }

    async fn share_limiter(&self, limiter: &Limiter) -> Result<(), FleetError> {
        let name = limiter.name().to_owned();
        if limiter.has_default_name() {
            return Err(FleetError::DefaultName { limiter: name });
        }
        let core: &Core = limiter.shared_core();
        if core.backend().is_some() {
            return Err(FleetError::AlreadyShared { limiter: name });
        }
        // Before the server is asked anything: an adaptive limiter cannot join.
        if core.is_adaptive() {
            return Err(FleetError::Adaptive { limiter: name });
        }
        let Some(reservation) = self.inner.shared.reserve(&name) else {
            return Err(FleetError::NameTaken { name });
        };
        let local_limit = core.limit();
        let joined = self.inner.join(&name, local_limit).await?;
        let (link, state) = Link::new(
            Arc::clone(&self.inner),
            core.name().clone(),
            local_limit,
            joined,
        );
        match core.share(Arc::new(link)) {
            Ok(()) => {
                reservation.fill(&state);
                crate::observe::fleet_shared(core, local_limit, joined.limit);
                Ok(())
            }
            Err(Unshareable::Shared) => Err(FleetError::AlreadyShared { limiter: name }),
            Err(Unshareable::InUse) => Err(FleetError::InUse { limiter: name }),
            Err(Unshareable::Adaptive) => Err(FleetError::Adaptive { limiter: name }),
        }
    }

    /// The fleet's id on its server, unique among every fleet that ever connected to it
    /// (given by the server at connect).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.inner.shared.id
    }

    /// Waits until every permit this process gave back through this fleet has reached the
    /// server: the leases of calls that ended, and the places of calls that gave up waiting.
    ///
    /// A call's permit goes back a moment after the call ends, from the fleet's own thread.
    /// A process that exits right after its last call (a batch job, after
    /// [`drain`](crate::drain)) would leave its leases to expire, and the other processes
    /// waiting for them for up to a lease (30 s by default): flush before exiting. It returns
    /// at once when nothing is pending. A return that keeps failing (the server down) is
    /// given up after one lease, when the server would free it anyway, and flush returns then.
    ///
    /// ```no_run
    /// use limit_runtime::{Limiter, concurrency_limit, drain};
    /// use limit_runtime::redis::Fleet;
    ///
    /// static EXPORTS: Limiter = Limiter::new(4).with_name("exports");
    ///
    /// #[concurrency_limit(limiter = EXPORTS)]
    /// async fn export(n: u32) { /* … */ }
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), limit_runtime::redis::FleetError> {
    /// let fleet = Fleet::connect("redis://127.0.0.1:6379/").await?;
    /// fleet.share(&EXPORTS).await?;
    /// for n in 0..100 {
    ///     tokio::spawn(export(n));
    /// }
    /// drain().await; // every call has ended…
    /// fleet.flush().await; // …and the server has every permit back
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) {
        self.inner.shared.returned().await;
    }

    /// What this fleet has sent to the server so far.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), limit_runtime::redis::FleetError> {
    /// let fleet = limit_runtime::redis::Fleet::connect("redis://127.0.0.1:6379/").await?;
    /// println!("{} round trips", fleet.stats().round_trips);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> FleetStats {
        self.inner.shared.stats.snapshot()
    }
}

/// What a [`Fleet`] has sent and received, from [`Fleet::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStats {
    /// Requests this process sent to the server and waited for an answer to: one per script
    /// run, and one per pipelined renewal of every limiter (however many leases it renews).
    pub round_trips: u64,
    /// Grants that arrived through pub/sub: each woke a waiter without a round trip.
    pub pushes: u64,
    /// Grants found by a renewal instead (a pub/sub message that was lost or late).
    pub found_by_renewal: u64,
    /// Round trips that failed (the server unreachable, or too slow to answer); each was
    /// tried again.
    pub errors: u64,
}

/// What a [`Fleet`] does while its server is unreachable, for calls that need it: set with
/// [`FleetBuilder::on_unreachable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnUnreachable {
    /// Calls wait for the server, as for a permit: counted as waiting, bounded by their
    /// `max_wait` and `queue`. Nothing runs beyond the fleet's limit. The default.
    #[default]
    Wait,
    /// Calls that may be refused (a `max_wait`, a `queue`, a `try_acquire`) are refused at
    /// once with [`LimitError::NoPermit`](crate::LimitError::NoPermit); calls that may not
    /// be refused wait, as with `Wait`.
    Refuse,
    /// **Breaks the fleet-wide limit while the server is unreachable.** Each process admits
    /// up to this many permits of each shared limiter by itself, holding no lease (and no
    /// fencing token); beyond them, calls wait as with `Wait` (and a `try_acquire` or
    /// `max_wait = 0` call is refused). So while the server is away, a fleet of `p`
    /// processes may run up to `p × n` calls, on top of the leases still held when it went.
    /// For work that must go on without Redis and can bear that; counted in
    /// [`SharedStats::local_admissions`](crate::SharedStats::local_admissions). Calls that ask
    /// once the server answers again are in the fleet's count as before; those admitted
    /// locally finish outside it. `Local(0)` is `Wait`.
    ///
    /// ```no_run
    /// use limit_runtime::redis::{Fleet, OnUnreachable};
    ///
    /// # async fn run() -> Result<(), limit_runtime::redis::FleetError> {
    /// // Up to 2 calls per process while Redis is down.
    /// let fleet = Fleet::builder("redis://127.0.0.1:6379/")
    ///     .on_unreachable(OnUnreachable::Local(2))
    ///     .build()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    Local(usize),
}

/// The settings of a [`Fleet`], from [`Fleet::builder`].
///
/// | setting | default | |
/// |---|---|---|
/// | [`lease`](Self::lease) | 30 s | how long a permit of a process that stops renewing (killed, paused, cut off) stays held |
/// | [`renew_every`](Self::renew_every) | 10 s | how often the leases are renewed: at most half the lease |
/// | [`recheck`](Self::recheck) | 1 s | how often a waiting process asks the server, in case a wake-up was lost |
/// | [`key_prefix`](Self::key_prefix) | `limit-runtime` | the prefix of every key and channel the fleet uses |
/// | [`key_ttl`](Self::key_ttl) | 24 h | how long an unused limiter's keys stay in Redis |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s | how long [`build`](Self::build) waits for the server |
/// | [`command_timeout`](Self::command_timeout) | 2 s | how long a round trip may take before it counts as failed |
/// | [`on_unreachable`](Self::on_unreachable) | [`OnUnreachable::Wait`] | what calls do while the server is unreachable |
/// | `tls_root_certificate` (`redis-tls` feature) | the system's roots | the authorities a `rediss://` server's certificate must come from |
/// | `tls_client_identity` (`redis-tls` feature) | none | the certificate and key this process shows a server that asks for one |
#[derive(Clone)]
#[must_use = "a builder does nothing until `build().await`"]
pub struct FleetBuilder {
    url: String,
    config: Config,
    /// The certificates of a `rediss://` server, with the `redis-tls` feature (`tls.rs`).
    #[cfg(feature = "redis-tls")]
    tls: tls::Tls,
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("FleetBuilder");
        debug
            .field("url", &driver::redacted(&self.url))
            .field("config", &self.config);
        #[cfg(feature = "redis-tls")]
        debug.field("tls", &self.tls);
        debug.finish()
    }
}

impl FleetBuilder {
    /// How long a permit stays held after its process last renewed it. A process that is
    /// killed frees its permits within `lease` plus one [`renew_every`](Self::renew_every).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How often the fleet renews its leases: one round trip for all of them. At most half
    /// the lease, so that one late renewal loses nothing.
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.config.renew_every = every;
        self
    }

    /// How often a process with waiting calls asks the server whether they were granted,
    /// in case a wake-up message was lost (pub/sub delivers at most once). Such a process
    /// also renews at every `renew_every`, whichever comes first.
    pub fn recheck(mut self, every: Duration) -> Self {
        self.config.recheck = every;
        self
    }

    /// The prefix of every key and channel the fleet uses (no `{` or `}`). Processes share a
    /// limiter only under the same prefix.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// How long a limiter's keys stay in Redis after its last use.
    pub fn key_ttl(mut self, ttl: Duration) -> Self {
        self.config.key_ttl = ttl;
        self
    }

    /// How long [`build`](Self::build) waits for the server.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// How long a round trip may take before it counts as failed (and is tried again).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.config.command_timeout = timeout;
        self
    }

    /// What calls do while the server is unreachable.
    pub fn on_unreachable(mut self, on_unreachable: OnUnreachable) -> Self {
        self.config.on_unreachable = on_unreachable;
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// [`FleetError::InvalidConfig`] for settings that cannot work together,
    /// [`FleetError::InvalidUrl`] and [`FleetError::Unreachable`] as for
    /// [`Fleet::connect`].
    ///
    /// ```
    /// use limit_runtime::redis::{Fleet, FleetError};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let error = Fleet::builder("redis://127.0.0.1:6379/")
    ///     .lease(Duration::from_secs(10))
    ///     .renew_every(Duration::from_secs(8)) // more than half the lease
    ///     .build()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(error, FleetError::InvalidConfig { .. }));
    /// # }
    /// ```
    pub async fn build(self) -> Result<Fleet, FleetError> {
        let mut config = self.config;
        config.check()?;
        config.server = driver::redacted(&self.url);
        #[cfg(feature = "redis-tls")]
        let client = tls::open(&self.url, &self.tls)?;
        #[cfg(not(feature = "redis-tls"))]
        let client = open(&self.url)?;
        let inner = driver::start(client, config).await?;
        Ok(Fleet {
            inner: Arc::new(inner),
        })
    }
}

/// The client for a server's URL, without TLS: a `rediss://` URL needs the `redis-tls`
/// feature, and is refused with a message that says so.
#[cfg(not(feature = "redis-tls"))]
fn open(url: &str) -> Result<::redis::Client, FleetError> {
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| FleetError::InvalidUrl {
        url: driver::redacted(url),
        source,
    };
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(invalid(
            "a TLS server (`rediss://`) needs limit-runtime's `redis-tls` feature".into(),
        ));
    }
    ::redis::Client::open(url).map_err(|error| invalid(error.into()))
}

/// Why a [`Fleet`] could not connect, or could not share a limiter. Its messages never
/// show a password from the URL.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// The URL is not one redis-rs can use.
    #[non_exhaustive]
    InvalidUrl {
        /// The URL, without its password.
        url: String,
        /// What was wrong with it.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server did not answer at connect.
    #[non_exhaustive]
    Unreachable {
        /// The server's URL, without its password.
        url: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error, or not in time.
    #[non_exhaustive]
    Redis {
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Builder settings that cannot work together.
    #[non_exhaustive]
    InvalidConfig {
        /// Which, and why.
        reason: String,
    },
    /// The limiter's name is where it was defined: give it one with `with_name`, the same
    /// in every process.
    #[non_exhaustive]
    DefaultName {
        /// Its name (a `file:line`).
        limiter: String,
    },
    /// The limiter is shared already (by this fleet or another).
    #[non_exhaustive]
    AlreadyShared {
        /// Its name.
        limiter: String,
    },
    /// Another limiter of this process shares this name through this fleet.
    #[non_exhaustive]
    NameTaken {
        /// The name.
        name: String,
    },
    /// The limiter has calls in flight: share it before its first call.
    #[non_exhaustive]
    InUse {
        /// Its name.
        limiter: String,
    },
    /// The limiter is adaptive: each process's controller would move the fleet's one limit
    /// from its own samples, so a fleet cannot share it (yet). Share a fixed limit.
    #[non_exhaustive]
    Adaptive {
        /// Its name.
        limiter: String,
    },
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, source } => write!(f, "invalid Redis URL {url:?}: {source}"),
            Self::Unreachable { url, source } => {
                write!(f, "Redis server {url:?} unreachable: {source}")
            }
            Self::Redis { source } => write!(f, "Redis error: {source}"),
            Self::InvalidConfig { reason } => write!(f, "invalid fleet settings: {reason}"),
            Self::DefaultName { limiter } => write!(
                f,
                "concurrency limit {limiter:?} has no name of its own, and a fleet shares \
                 limiters by name: give it one with `Limiter::with_name`"
            ),
            Self::AlreadyShared { limiter } => {
                write!(f, "concurrency limit {limiter:?} is shared already")
            }
            Self::NameTaken { name } => write!(
                f,
                "another concurrency limit of this process shares the name {name:?} here"
            ),
            Self::InUse { limiter } => write!(
                f,
                "concurrency limit {limiter:?} has calls in flight: share it before its \
                 first call"
            ),
            Self::Adaptive { limiter } => write!(
                f,
                "concurrency limit {limiter:?} is adaptive, and a fleet cannot share an \
                 adaptive limit: each process's controller would move the one limit from its \
                 own calls; share a fixed limit (`Limiter::new`)"
            ),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidUrl { source, .. }
            | Self::Unreachable { source, .. }
            | Self::Redis { source } => Some(&**source),
            _ => None,
        }
    }
}
