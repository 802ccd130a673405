use limit_runtime::concurrency_limit;
use std::time::Duration;

#[derive(Debug)]
struct ApiError;

#[concurrency_limit(5, max_wait = Duration::from_millis(200))]
async fn call_api(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {
    let _ = call_api(1);
}
