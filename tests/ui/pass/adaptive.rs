// Every accepted form of `adaptive` and `overloaded`, without a warning.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use limit_runtime::{Adaptive, LimitError, Limiter, concurrency_limit};
use std::sync::Arc;
use std::time::Duration;

const MAX: usize = 64;

// Bounds are evaluated in a `static`: an expression must be a constant one.
const fn floor() -> usize {
    2
}

#[derive(Debug)]
struct ApiError(u16);

impl From<LimitError> for ApiError {
    fn from(_: LimitError) -> Self {
        ApiError(503)
    }
}

fn overloaded(result: &Result<u32, ApiError>) -> bool {
    matches!(result, Err(ApiError(429 | 503)))
}

fn fetch(id: u32) -> Result<u32, ApiError> {
    if id == 429 {
        Err(ApiError(429))
    } else {
        Ok(id)
    }
}

#[concurrency_limit(adaptive)]
async fn bare(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive,)]
async fn trailing_comma(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive(initial = 1))]
async fn initial(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive(min = 2))]
async fn min(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive(max = 8))]
async fn max(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive(initial = 4, min = 1, max = 256))]
async fn all_bounds(id: u32) -> u32 {
    id
}

// Any order, a trailing comma, `usize` literals of any base, and constant expressions.
#[concurrency_limit(adaptive(max = MAX, min = floor(), initial = 0x10usize,))]
async fn expressions(id: u32) -> u32 {
    id
}

// The default `max` (1000) gives way to a higher `min`, and the default start to `min`.
#[concurrency_limit(adaptive(min = 2000))]
async fn high_floor(id: u32) -> u32 {
    id
}

// An `initial` within the default bounds.
#[concurrency_limit(adaptive(initial = 1000))]
async fn high_start(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive(max = 64), name = "search-api", max_wait = Duration::from_secs(1))]
async fn search(query: String) -> Result<String, ApiError> {
    Ok(query)
}

// The options may come first.
#[concurrency_limit(name = "first", adaptive)]
async fn named_first(id: u32) -> u32 {
    id
}

#[concurrency_limit(adaptive, queue = 8, max_wait = Duration::from_millis(50))]
async fn queued(id: u32) -> Result<u32, LimitError> {
    Ok(id)
}

#[concurrency_limit(adaptive(max = 16), weight = bytes.len())]
async fn upload(bytes: Vec<u8>) -> usize {
    bytes.len()
}

#[concurrency_limit(adaptive(initial = 2), key = host.clone())]
async fn per_host(host: String, id: u32) -> u32 {
    u32::try_from(host.len()).unwrap_or(id)
}

// `overloaded` with a `fn` path; the body leaves early with `?` and `return`.
#[concurrency_limit(adaptive, overloaded = overloaded)]
async fn call(id: u32) -> Result<u32, ApiError> {
    let value = fetch(id)?;
    if value == 0 {
        return Err(ApiError(503));
    }
    Ok(value)
}

// `overloaded` with a closure, among every other option.
#[concurrency_limit(
    adaptive(min = 1, max = 32),
    name = "closure",
    key = id % 4,
    weight = 1,
    queue = 2,
    max_wait = Duration::from_millis(10),
    overloaded = |result: &Result<u32, ApiError>| result.is_err(),
)]
async fn closure(id: u32) -> Result<u32, ApiError> {
    fetch(id)
}

// A unit-returning function.
#[concurrency_limit(adaptive(max = 4))]
async fn unit(id: u32) {
    let _ = id;
}

// Bodies that never return normally.
#[concurrency_limit(adaptive)]
async fn panics(id: u32) -> u32 {
    panic!("never returns {id}")
}

#[concurrency_limit(adaptive, overloaded = overloaded)]
async fn spins(id: u32) -> Result<u32, ApiError> {
    loop {
        std::future::pending::<u32>().await;
        let _ = id;
    }
}

// A `static` adaptive limiter, with `overloaded`.
static REPLICA: Limiter = Limiter::adaptive(Adaptive::new().min(2).max(64)).with_name("replica");

#[concurrency_limit(limiter = REPLICA, overloaded = overloaded)]
async fn replica(id: u32) -> Result<u32, ApiError> {
    fetch(id)
}

struct Client {
    limiter: Limiter,
    shared: Arc<Limiter>,
}

impl Client {
    fn new() -> Self {
        Client {
            limiter: Limiter::adaptive(Adaptive::new().max(MAX)),
            shared: Arc::new(Limiter::adaptive(Adaptive::new())),
        }
    }

    fn overloaded(result: &Result<u32, ApiError>) -> bool {
        result.is_err()
    }

    // An instance's adaptive limiter, borrowed from `&self`.
    #[concurrency_limit(limiter = &self.limiter, overloaded = Self::overloaded)]
    async fn get(&self, id: u32) -> Result<u32, ApiError> {
        let value = fetch(id)?;
        Ok(value)
    }

    #[concurrency_limit(limiter = self.shared.clone(), overloaded = overloaded)]
    async fn put(&self, id: u32) -> Result<u32, ApiError> {
        fetch(id)
    }

    #[concurrency_limit(adaptive(max = 8))]
    async fn own(&self, id: u32) -> u32 {
        id
    }
}

#[async_trait::async_trait]
trait Service {
    async fn call(&self, request: u32) -> Result<u32, ApiError>;
}

struct Doubler;

#[async_trait::async_trait]
impl Service for Doubler {
    #[concurrency_limit(adaptive(max = 4), overloaded = overloaded)]
    async fn call(&self, request: u32) -> Result<u32, ApiError> {
        Ok(request * 2)
    }
}

fn main() {
    let _ = (
        bare(1),
        trailing_comma(1),
        initial(1),
        min(1),
        max(1),
        all_bounds(1),
    );
    let _ = (expressions(1), high_floor(1), high_start(1), named_first(1));
    let _ = (search(String::new()), queued(1), upload(Vec::new()));
    let _ = (per_host(String::new(), 1), call(1), closure(1), unit(1));
    let _ = (panics(1), spins(1), replica(1));
    let client = Client::new();
    let _ = (client.get(1), client.put(1), client.own(1), Doubler.call(1));
}
