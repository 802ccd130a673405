use limit_runtime::concurrency_limit;
use std::time::Duration;

#[async_trait::async_trait]
trait Service {
    async fn call(&self, request: u32) -> u32;
}

struct Doubler;

#[async_trait::async_trait]
impl Service for Doubler {
    #[concurrency_limit(4, max_wait = Duration::ZERO)]
    async fn call(&self, request: u32) -> u32 {
        request * 2
    }
}

fn main() {
    let _ = Doubler.call(1);
}
