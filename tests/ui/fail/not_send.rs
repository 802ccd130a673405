use limit_runtime::concurrency_limit;
use std::rc::Rc;

#[concurrency_limit(2)]
async fn job() -> usize {
    let shared = Rc::new(5);
    std::future::ready(()).await;
    *shared
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    assert_send(job());
}
