use limit_runtime::concurrency_limit;

#[concurrency_limit(2)]
async fn forever() -> ! {
    loop {
        std::future::pending::<()>().await;
    }
}

fn main() {
    let _ = forever();
}
