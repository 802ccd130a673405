use limit_runtime::{LimitError, Limiter, concurrency_limit};
use std::time::Duration;

static DATABASE: Limiter = Limiter::new(10).with_name("database");

#[derive(Debug)]
struct ApiError;

impl From<LimitError> for ApiError {
    fn from(_: LimitError) -> Self {
        ApiError
    }
}

#[concurrency_limit(limiter = DATABASE)]
async fn load_user(id: u64) -> u64 {
    id
}

#[concurrency_limit(limiter = crate::DATABASE, max_wait = Duration::from_secs(1), queue = 8)]
async fn save_user(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[concurrency_limit(5, max_wait = Duration::from_millis(200))]
async fn call_api(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

#[concurrency_limit(5, max_wait = Duration::ZERO)]
async fn fail_fast(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[concurrency_limit(5, queue = 0)]
async fn never_waits(id: u64) -> anyhow::Result<u64> {
    Ok(id)
}

fn host_of(url: &str) -> String {
    url.split('/').nth(2).unwrap_or_default().to_owned()
}

#[concurrency_limit(2, key = host_of(&url), max_wait = Duration::from_millis(50), name = "crawl")]
async fn crawl(url: String) -> Result<usize, ApiError> {
    Ok(url.len())
}

#[concurrency_limit(2, queue = 100, max_wait = Duration::from_millis(50))]
async fn bounded(id: u64) -> Result<u64, LimitError> {
    Ok(id)
}

#[async_trait::async_trait]
trait Service {
    async fn call(&self, request: u32) -> Result<u32, ApiError>;
}

struct Doubler;

#[async_trait::async_trait]
impl Service for Doubler {
    #[concurrency_limit(4, max_wait = Duration::ZERO, queue = 2)]
    async fn call(&self, request: u32) -> Result<u32, ApiError> {
        Ok(request * 2)
    }
}

fn main() {
    let _ = (load_user(1), save_user(2), call_api(3), fail_fast(4), never_waits(5));
    let _ = (crawl(String::new()), bounded(6), Doubler.call(7));
}
