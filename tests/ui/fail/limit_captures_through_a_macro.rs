use limit_runtime::concurrency_limit;

// `format!` captures `workers` from inside its string, where the attribute's syntactic check
// cannot see it. The limit's closure must still coerce to `fn() -> usize`, which a closure
// that captures cannot.
#[concurrency_limit(format!("{workers}").len())]
async fn crawl(workers: usize, url: &str) -> usize {
    workers + url.len()
}

fn main() {
    let _ = crawl(4, "https://example.com");
}
