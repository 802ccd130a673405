use limit_runtime::{concurrency_limit, drain};

const MAX_JOBS: usize = 3;

fn limit_from_config() -> usize {
    std::env::var("JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

#[concurrency_limit(5)]
async fn literal(id: u32) -> u32 {
    id
}

#[concurrency_limit(MAX_JOBS)]
async fn constant(id: u32) -> u32 {
    id
}

#[concurrency_limit(limit_from_config())]
async fn computed(id: u32) -> u32 {
    id
}

#[concurrency_limit(1_000, name = "named")]
pub async fn named() {}

struct Client;

impl Client {
    const LIMIT: usize = 4;

    #[concurrency_limit(Self::LIMIT)]
    async fn get(&self, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = (literal(1), constant(2), computed(3), named(), Client.get(4), drain());
}
