use limit_runtime::{concurrency_limit, Limiter};

struct Handler {
    limiter: Limiter,
    served: u32,
}

impl Handler {
    #[concurrency_limit(limiter = &self.limiter)]
    async fn run(&mut self) {
        self.served += 1;
    }
}

fn main() {
    let mut handler = Handler { limiter: Limiter::new(1), served: 0 };
    let _ = handler.run();
}
