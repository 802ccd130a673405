#[concurrency_limit(5)]
async fn fetch(url: String) -> Result<Page, Error> {
    client().get(&url).await
}
