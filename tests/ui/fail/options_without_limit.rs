use limit_runtime::concurrency_limit;

#[concurrency_limit(name = "jobs")]
async fn job(id: u64) -> u64 {
    id
}

fn main() {
    let _ = job(1);
}
