use limit_runtime::concurrency_limit;

#[concurrency_limit(64, weight = body.len() as u64)]
async fn upload(body: Vec<u8>) -> usize {
    body.len()
}

fn main() {}
