use limit_runtime::concurrency_limit;

#[concurrency_limit(5, adaptive)]
async fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _ = job(1);
}
