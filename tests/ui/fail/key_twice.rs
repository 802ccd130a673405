use limit_runtime::concurrency_limit;

#[concurrency_limit(2, key = host.clone(), key = host.len())]
async fn fetch(host: String) -> usize {
    host.len()
}

fn main() {
    let _ = fetch(String::new());
}
