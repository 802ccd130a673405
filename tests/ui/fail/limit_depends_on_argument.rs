use limit_runtime::concurrency_limit;

#[concurrency_limit(workers * 2)]
async fn crawl(workers: usize, url: &str) -> usize {
    workers + url.len()
}

fn main() {
    let _ = crawl(4, "https://example.com");
}
