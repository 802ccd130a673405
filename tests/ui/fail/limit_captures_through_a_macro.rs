use limit_runtime::concurrency_limit;

// The macro hides the argument from the attribute's syntactic check; the limit's closure must
// still coerce to `fn() -> usize`, which a capture cannot.
macro_rules! workers {
    () => {
        workers
    };
}

#[concurrency_limit(workers!())]
async fn crawl(workers: usize, url: &str) -> usize {
    workers + url.len()
}

fn main() {
    let _ = crawl(4, "https://example.com");
}
