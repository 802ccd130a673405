use limit_runtime::{concurrency_limit, Limiter};

static DATABASE: Limiter = Limiter::new(10);

#[concurrency_limit(adaptive, limiter = DATABASE)]
async fn load(id: u64) -> u64 {
    id
}

fn main() {
    let _ = load(1);
}
