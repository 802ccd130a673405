use limit_runtime::concurrency_limit;

const MAX_JOBS: u32 = 4;

#[concurrency_limit(MAX_JOBS)]
async fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _ = job(1);
}
