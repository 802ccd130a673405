//! The error a limited call returns when it gets no permit under its `max_wait` or `queue`,
//! or weighs more than its limit.

use std::fmt;
use std::time::Duration;

use crate::Name;

/// Why a limited call did not run: no permit in time (`max_wait`), no room to wait
/// (`queue`), no permit at once where waiting was not allowed, or a weight above the limit
/// (`weight`).
///
/// The attribute turns it into the function's error type with `From`, so a function with
/// `max_wait` or `queue` returns `Result<T, E>` where `E: From<LimitError>`:
///
/// ```
/// use limit_runtime::{concurrency_limit, LimitError};
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum ApiError {
///     Busy(LimitError),
/// }
///
/// impl From<LimitError> for ApiError {
///     fn from(error: LimitError) -> Self {
///         ApiError::Busy(error)
///     }
/// }
///
/// #[concurrency_limit(1, max_wait = Duration::ZERO, name = "api")]
/// async fn call_api(hold: tokio::sync::oneshot::Receiver<()>) -> Result<u32, ApiError> {
///     let _ = hold.await;
///     Ok(7)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (release, hold) = tokio::sync::oneshot::channel();
/// let first = tokio::spawn(call_api(hold));
/// tokio::task::yield_now().await; // `first` now holds the only permit
///
/// let (_, unused) = tokio::sync::oneshot::channel();
/// let Err(ApiError::Busy(error)) = call_api(unused).await else { panic!() };
/// assert!(matches!(error, LimitError::NoPermit { .. }));
/// assert_eq!(
///     error.to_string(),
///     r#"concurrency limit "api" (1): no permit free, and the call may not wait"#
/// );
/// release.send(()).unwrap();
/// assert_eq!(first.await.unwrap().unwrap(), 7);
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LimitError {
    /// No permit was granted within `max_wait`.
    #[non_exhaustive]
    Timeout {
        /// The name of the limiter that refused the call.
        limiter: Name,
        /// Its limit when the call gave up.
        limit: usize,
        /// How long the call waited: its `max_wait`.
        waited: Duration,
    },
    /// `queue` calls were already waiting, so this one could not wait.
    #[non_exhaustive]
    QueueFull {
        /// The name of the limiter that refused the call.
        limiter: Name,
        /// Its limit when the call was refused.
        limit: usize,
        /// The most calls allowed to wait: the `queue` option.
        queue: usize,
    },
    /// No permit was free and the call may not wait (`max_wait = Duration::ZERO`).
    #[non_exhaustive]
    NoPermit {
        /// The name of the limiter that refused the call.
        limiter: Name,
        /// Its limit when the call was refused.
        limit: usize,
    },
    /// The call's weight (`weight = …`, [`Limiter::try_acquire_many`](crate::Limiter::try_acquire_many))
    /// was above the limit in force when the call was made, so no permit could ever admit it.
    /// A limit of 0 refuses no weight: it pauses admission. A weight above
    /// [`Limiter::MAX_LIMIT`](crate::Limiter::MAX_LIMIT) is refused whatever the limit.
    ///
    /// ```
    /// use limit_runtime::{LimitError, Limiter};
    ///
    /// static UPLOADS: Limiter = Limiter::new(64).with_name("uploads");
    ///
    /// let error = UPLOADS.try_acquire_many(100).unwrap_err();
    /// assert!(matches!(error, LimitError::TooHeavy { weight: 100, limit: 64, .. }));
    /// assert_eq!(
    ///     error.to_string(),
    ///     r#"concurrency limit "uploads" (64): a call of weight 100 can never be admitted"#
    /// );
    /// ```
    #[non_exhaustive]
    TooHeavy {
        /// The name of the limiter that refused the call.
        limiter: Name,
        /// Its limit when the call was made.
        limit: usize,
        /// The call's weight.
        weight: usize,
    },
}

impl LimitError {
    /// The name of the limiter that refused the call.
    ///
    /// ```
    /// # use limit_runtime::{LimitError, Limiter};
    /// static DB: Limiter = Limiter::new(1).with_name("db");
    /// # let permit = DB.try_acquire().unwrap();
    /// let error: LimitError = DB.try_acquire().unwrap_err();
    /// assert_eq!(error.name(), "db");
    /// # drop(permit);
    /// ```
    #[must_use]
    pub fn name(&self) -> &Name {
        match self {
            Self::Timeout { limiter, .. }
            | Self::QueueFull { limiter, .. }
            | Self::NoPermit { limiter, .. }
            | Self::TooHeavy { limiter, .. } => limiter,
        }
    }

    /// The limit of the limiter when it refused the call.
    ///
    /// ```
    /// # use limit_runtime::Limiter;
    /// static DB: Limiter = Limiter::new(1);
    /// # let permit = DB.try_acquire().unwrap();
    /// assert_eq!(DB.try_acquire().unwrap_err().limit(), 1);
    /// # drop(permit);
    /// ```
    #[must_use]
    pub fn limit(&self) -> usize {
        match *self {
            Self::Timeout { limit, .. }
            | Self::QueueFull { limit, .. }
            | Self::NoPermit { limit, .. }
            | Self::TooHeavy { limit, .. } => limit,
        }
    }
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "concurrency limit {:?} ({}): ",
            self.name().as_str(),
            self.limit()
        )?;
        match *self {
            Self::Timeout { waited, .. } => write!(f, "no permit within {waited:?}"),
            Self::QueueFull { queue: 0, .. } => {
                f.write_str("no permit free, and `queue = 0` lets no call wait")
            }
            Self::QueueFull { queue, .. } => {
                write!(
                    f,
                    "no permit free, and the queue (at most {queue} waiting) is full"
                )
            }
            Self::NoPermit { .. } => f.write_str("no permit free, and the call may not wait"),
            Self::TooHeavy { weight, .. } => {
                write!(f, "a call of weight {weight} can never be admitted")
            }
        }
    }
}

impl std::error::Error for LimitError {}

/// So that a function returning `io::Result<T>` can take `max_wait` or `queue`: a timeout
/// becomes [`TimedOut`](std::io::ErrorKind::TimedOut), a refusal to wait
/// [`ResourceBusy`](std::io::ErrorKind::ResourceBusy), a weight above the limit
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput), with the `LimitError` inside.
///
/// ```
/// use limit_runtime::concurrency_limit;
/// use std::time::Duration;
///
/// #[concurrency_limit(1, max_wait = Duration::ZERO)]
/// async fn read_config(path: &str) -> std::io::Result<String> {
///     Ok(format!("read {path}"))
/// }
/// # futures::executor::block_on(async {
/// #     assert_eq!(read_config("a").await.unwrap(), "read a");
/// # });
/// ```
impl From<LimitError> for std::io::Error {
    fn from(error: LimitError) -> Self {
        let kind = match error {
            LimitError::Timeout { .. } => std::io::ErrorKind::TimedOut,
            LimitError::QueueFull { .. } | LimitError::NoPermit { .. } => {
                std::io::ErrorKind::ResourceBusy
            }
            LimitError::TooHeavy { .. } => std::io::ErrorKind::InvalidInput,
        };
        Self::new(kind, error)
    }
}

/// A limit above [`Limiter::MAX_LIMIT`](crate::Limiter::MAX_LIMIT), refused by
/// [`Limiter::try_set_limit`](crate::Limiter::try_set_limit). The limiter keeps its limit.
///
/// ```
/// use limit_runtime::Limiter;
///
/// static POOL: Limiter = Limiter::new(8).with_name("pool");
///
/// let error = POOL.try_set_limit(usize::MAX).unwrap_err();
/// assert_eq!((error.name().as_str(), error.limit()), ("pool", usize::MAX));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitTooLarge {
    limiter: Name,
    limit: usize,
}

impl LimitTooLarge {
    pub(crate) fn new(limiter: Name, limit: usize) -> Self {
        Self { limiter, limit }
    }

    /// The name of the limiter that refused the limit.
    ///
    /// ```
    /// # use limit_runtime::Limiter;
    /// let jobs = Limiter::new(1).with_name("jobs");
    /// assert_eq!(jobs.try_set_limit(usize::MAX).unwrap_err().name(), "jobs");
    /// ```
    #[must_use]
    pub fn name(&self) -> &Name {
        &self.limiter
    }

    /// The limit that was refused.
    ///
    /// ```
    /// # use limit_runtime::Limiter;
    /// let jobs = Limiter::new(1);
    /// assert_eq!(jobs.try_set_limit(1 << 40).unwrap_err().limit(), 1 << 40);
    /// ```
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for LimitTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "concurrency limit {:?}: a limit of {} is above the maximum of {} \
             (`Limiter::MAX_LIMIT`)",
            self.limiter.as_str(),
            self.limit,
            crate::Limiter::MAX_LIMIT
        )
    }
}

impl std::error::Error for LimitTooLarge {}

/// The output of a call that `max_wait`, `queue` or `weight` refused: `Err(E::from(error))`. A trait,
/// so that every spelling of a `Result` is accepted (an alias, a re-export, a full path) and
/// anything else is one error, at the option, with the message below. Not a public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`max_wait` and `queue` need a function that returns `Result<T, E>` with \
               `E: From<LimitError>`; this one returns `{Self}`",
    label = "a call refused here returns `Err(E::from(LimitError))`",
    note = "implement `From<limit_runtime::LimitError>` for the error type, or return a \
            `Result` whose error type has it (`std::io::Error` and `anyhow::Error` do)"
)]
pub trait Refusal: Sized {
    /// The output.
    fn refused(error: LimitError) -> Self;
}

// `do_not_recommend`: a `Result` whose `E` lacks `From<LimitError>` is reported as this
// trait's message, not as a list of `E`'s `From` impls.
#[diagnostic::do_not_recommend]
impl<T, E: From<LimitError>> Refusal for Result<T, E> {
    fn refused(error: LimitError) -> Self {
        Err(E::from(error))
    }
}

/// The output of a refused call. Not a public API.
#[doc(hidden)]
#[must_use]
pub fn refusal<R: Refusal>(error: LimitError) -> R {
    R::refused(error)
}
