use limit_runtime::{concurrency_limit, Limiter};

struct Server {
    connections: Limiter,
}

impl Server {
    #[concurrency_limit(limiter = &self.connections, key = tenant)]
    async fn serve(&self, tenant: u32) -> u32 {
        tenant
    }
}

fn main() {
    let server = Server { connections: Limiter::new(2) };
    let _ = server.serve(1);
}
