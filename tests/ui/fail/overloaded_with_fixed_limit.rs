use limit_runtime::concurrency_limit;

fn overloaded(result: &Result<u32, u16>) -> bool {
    matches!(result, Err(429 | 503))
}

#[concurrency_limit(5, overloaded = overloaded)]
async fn job(id: u32) -> Result<u32, u16> {
    Ok(id)
}

fn main() {
    let _ = job(1);
}
