use limit_runtime::concurrency_limit;
use std::time::Duration;

#[concurrency_limit(5, max_wait = Duration::from_millis(200))]
async fn call_api(id: u64) -> u64 {
    id
}

fn main() {
    let _ = call_api(1);
}
