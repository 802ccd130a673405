use limit_runtime::concurrency_limit;

#[concurrency_limit(5, queue = 100)]
async fn notify(id: u64) {
    let _ = id;
}

fn main() {
    let _ = notify(1);
}
