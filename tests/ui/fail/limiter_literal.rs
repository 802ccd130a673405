use limit_runtime::concurrency_limit;

#[concurrency_limit(limiter = 5)]
async fn job() {}

fn main() {
    let _ = job();
}
