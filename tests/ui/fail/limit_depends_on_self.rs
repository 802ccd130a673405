use limit_runtime::concurrency_limit;

struct Server {
    limit: usize,
}

impl Server {
    #[concurrency_limit(self.limit)]
    async fn serve(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Server { limit: 4 }.serve();
}
