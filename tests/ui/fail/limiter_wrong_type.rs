use limit_runtime::concurrency_limit;

struct Server {
    connections: usize,
}

impl Server {
    #[concurrency_limit(limiter = self.connections)]
    async fn serve(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Server { connections: 4 }.serve();
}
