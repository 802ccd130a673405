use limit_runtime::concurrency_limit;

#[concurrency_limit(adaptive(max = connections))]
async fn job(connections: usize) -> usize {
    connections
}

fn main() {
    let _ = job(1);
}
