use limit_runtime::concurrency_limit;

const FLOOR: usize = 0;

#[concurrency_limit(adaptive(min = FLOOR))]
async fn job(id: u32) -> u32 {
    id
}

fn main() {
    let _ = job(1);
}
