use limit_runtime::concurrency_limit;

#[concurrency_limit(adaptive(max = 8, max = 16))]
async fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _ = job(1);
}
