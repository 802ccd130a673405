use limit_runtime::concurrency_limit;

#[concurrency_limit(name = "jobs", adaptive = 5)]
async fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _ = job(1);
}
