use limit_runtime::concurrency_limit;

trait Fetch {
    #[concurrency_limit(5)]
    async fn fetch(&self, id: u32) -> u32;
}

struct Client;

impl Fetch for Client {
    async fn fetch(&self, id: u32) -> u32 {
        id
    }
}

fn main() {
    let _ = Client.fetch(1);
}
