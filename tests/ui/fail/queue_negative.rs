use limit_runtime::{concurrency_limit, LimitError};

#[concurrency_limit(5, queue = -1)]
async fn call_api(id: u64) -> Result<u64, LimitError> {
    Ok(id)
}

fn main() {
    let _ = call_api(1);
}
