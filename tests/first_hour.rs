//! What a new user meets in the first hour: panics that point at their own line and name the
//! limiter, `try_set_limit`, and a `static` limiter whose limit comes from configuration.

use std::panic::Location;
use std::sync::LazyLock;

use limit_runtime::{LimitTooLarge, Limiter, concurrency_limit};
use limit_suite::panic_of;

#[test]
fn set_limit_above_the_maximum_panics_at_the_callers_line_naming_the_limiter() {
    let limiter = Limiter::new(4).with_name("first-hour/set-limit");
    let line = Location::caller().line() + 1;
    let (message, location) = panic_of(|| limiter.set_limit(3_000_000_000));
    assert!(
        location.starts_with(&format!("tests/first_hour.rs:{line}:")),
        "the panic points at {location}, not at the caller's line {line}"
    );
    assert!(
        message.contains(r#""first-hour/set-limit""#) && message.contains("3000000000"),
        "{message}"
    );
    assert_eq!(limiter.limit(), 4, "the limit stays as it was");
}

#[test]
fn try_set_limit_returns_the_error_instead() {
    let limiter = Limiter::new(4).with_name("first-hour/try-set-limit");
    let error: LimitTooLarge = limiter.try_set_limit(usize::MAX).unwrap_err();
    assert_eq!(
        (error.name().as_str(), error.limit()),
        ("first-hour/try-set-limit", usize::MAX)
    );
    assert_eq!(limiter.limit(), 4);
    limiter.try_set_limit(Limiter::MAX_LIMIT).unwrap();
    assert_eq!(limiter.limit(), Limiter::MAX_LIMIT);
}

fn zero() -> usize {
    0
}

#[concurrency_limit(zero())]
async fn limited_by_zero() {}

#[test]
fn a_limit_that_evaluates_to_zero_panics_at_the_call_naming_the_function() {
    let (message, location) = panic_of(|| drop(limited_by_zero()));
    assert!(
        location.starts_with("tests/first_hour.rs:"),
        "the panic points at {location}, not at the annotated function"
    );
    assert!(
        message.contains("first_hour::limited_by_zero") && message.contains("evaluated to 0"),
        "{message}"
    );
}

// A `static` limiter whose limit comes from configuration: a `LazyLock<Limiter>`, named by
// its path (it derefs to the `Limiter`) or borrowed with `&*`.
fn workers_from_config() -> usize {
    std::env::var("FIRST_HOUR_WORKERS")
        .ok()
        .and_then(|workers| workers.parse().ok())
        .unwrap_or(3)
}

static CONFIGURED: LazyLock<Limiter> =
    LazyLock::new(|| Limiter::new(workers_from_config()).with_name("first-hour/configured"));

#[concurrency_limit(limiter = CONFIGURED)]
async fn by_path(n: u32) -> u32 {
    n
}

#[concurrency_limit(limiter = &*CONFIGURED)]
async fn by_reference(n: u32) -> u32 {
    n
}

#[tokio::test(flavor = "current_thread")]
async fn a_static_limiter_can_take_its_limit_from_configuration() {
    assert_eq!(by_path(1).await + by_reference(2).await, 3);
    assert_eq!(CONFIGURED.limit(), 3);
    assert_eq!(CONFIGURED.stats().admitted, 2);
    let held: Vec<_> = (0..3).map(|_| CONFIGURED.try_acquire().unwrap()).collect();
    assert!(
        CONFIGURED.try_acquire().is_err(),
        "both functions share its limit of 3"
    );
    drop(held);
}

// Default labels: a method with a `self` receiver is named after its type.

mod server {
    use limit_runtime::concurrency_limit;

    pub struct Handler;

    impl Handler {
        #[concurrency_limit(2)]
        pub async fn run(&self) -> u32 {
            1
        }

        /// No `self`: named after the module, as a free function.
        #[concurrency_limit(2)]
        pub async fn build() -> Self {
            Self
        }
    }

    /// The free function of the same name, which the method's label must not be confused with.
    #[concurrency_limit(2)]
    pub async fn run() -> u32 {
        2
    }

    pub struct Wrapper<T>(pub T);

    impl<T: Send + Sync> Wrapper<T> {
        #[concurrency_limit(2)]
        pub async fn go(&self) -> u32 {
            3
        }
    }

    #[async_trait::async_trait]
    pub trait Service {
        async fn call(&self) -> u32;
    }

    #[async_trait::async_trait]
    impl Service for Handler {
        #[concurrency_limit(2)]
        async fn call(&self) -> u32 {
            4
        }
    }
}

fn listed(name: &str) -> bool {
    limit_runtime::limiters().any(|limiter| limiter.name() == name)
}

#[tokio::test(flavor = "current_thread")]
async fn a_methods_default_label_names_its_type() {
    use server::Service;

    let handler = server::Handler::build().await;
    assert_eq!(handler.run().await + server::run().await, 3);
    assert!(listed("first_hour::server::Handler::run"), "the method");
    assert!(listed("first_hour::server::run"), "the free function");
    assert!(
        listed("first_hour::server::build"),
        "an associated function keeps module::fn"
    );

    // Every instantiation shares one limiter, labelled without generic arguments.
    assert_eq!(server::Wrapper(1_u8).go().await, 3);
    assert_eq!(server::Wrapper(String::new()).go().await, 3);
    let wrappers: Vec<_> = limit_runtime::limiters()
        .filter(|limiter| limiter.name().contains("Wrapper"))
        .collect();
    assert_eq!(wrappers.len(), 1);
    assert_eq!(wrappers[0].name(), "first_hour::server::Wrapper::go");
    assert_eq!(wrappers[0].stats().admitted, 2);

    // An `#[async_trait]` impl too.
    assert_eq!(handler.call().await, 4);
    assert!(listed("first_hour::server::Handler::call"));
}

// `max_wait` and `queue` accept every spelling of a `Result<T, E>` with `E: From<LimitError>`.

#[derive(Debug)]
pub struct AppError(limit_runtime::LimitError);

impl From<limit_runtime::LimitError> for AppError {
    fn from(error: limit_runtime::LimitError) -> Self {
        Self(error)
    }
}

pub type AppResult<T> = Result<T, AppError>;

mod results {
    pub type Elsewhere<T> = Result<T, super::AppError>;
}

use std::io::Result as IoResult;
use std::time::Duration;

#[concurrency_limit(1, max_wait = Duration::ZERO)]
async fn aliased(n: u32) -> AppResult<u32> {
    Ok(n)
}

#[concurrency_limit(1, queue = 0)]
async fn aliased_elsewhere(n: u32) -> results::Elsewhere<u32> {
    Ok(n)
}

#[concurrency_limit(1, max_wait = Duration::ZERO)]
async fn renamed(n: u32) -> IoResult<u32> {
    Ok(n)
}

#[concurrency_limit(1, max_wait = Duration::ZERO, queue = 1)]
async fn full_path(n: u32) -> ::std::result::Result<u32, anyhow::Error> {
    Ok(n)
}

#[tokio::test(flavor = "current_thread")]
async fn max_wait_and_queue_accept_any_spelling_of_a_result() {
    assert_eq!(aliased(1).await.unwrap(), 1);
    assert_eq!(aliased_elsewhere(2).await.unwrap(), 2);
    assert_eq!(renamed(3).await.unwrap(), 3);
    assert_eq!(full_path(4).await.unwrap(), 4);

    // And a refusal comes back through each.
    let held = aliased(5).admitted().await;
    let Err(AppError(error)) = aliased(6).await else {
        panic!("the second call finds the permit taken")
    };
    assert!(matches!(error, limit_runtime::LimitError::NoPermit { .. }));
    assert_eq!(held.await.unwrap(), 5);
    let held = renamed(7).admitted().await;
    assert_eq!(
        renamed(8).await.unwrap_err().kind(),
        std::io::ErrorKind::ResourceBusy
    );
    assert_eq!(held.await.unwrap(), 7);
}

/// The largest literal limit the attribute accepts (its own copy of the bound: the macro crate
/// cannot import the runtime's) is `Limiter::MAX_LIMIT`; larger ones are refused (the macro's
/// fuzz tables check one above it, `tests/ui/fail/too_large.rs` a far larger one).
#[concurrency_limit(2_147_483_647)]
async fn at_the_maximum() {}

#[tokio::test(flavor = "current_thread")]
async fn the_attributes_maximum_is_the_runtimes() {
    assert_eq!(Limiter::MAX_LIMIT, 2_147_483_647);
    at_the_maximum().await;
    let limiter = limit_runtime::limiter("first_hour::at_the_maximum").unwrap();
    assert_eq!(limiter.limit(), Limiter::MAX_LIMIT);
}
