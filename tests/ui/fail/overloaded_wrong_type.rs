use limit_runtime::concurrency_limit;

fn overloaded(status: &u16) -> bool {
    matches!(status, 429 | 503)
}

#[concurrency_limit(adaptive, overloaded = overloaded)]
async fn job(id: u32) -> Result<u32, u16> {
    Ok(id)
}

fn main() {
    let _ = job(1);
}
