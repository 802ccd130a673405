use limit_runtime::{concurrency_limit, Limiter};

struct Pool {
    limiter: Limiter,
}

#[concurrency_limit(limiter = &pool.limiter)]
async fn query(pool: Pool, sql: &str) -> usize {
    let _ = &pool;
    sql.len()
}

fn main() {
    let _ = query(Pool { limiter: Limiter::new(1) }, "select 1");
}
