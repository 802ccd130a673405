#[concurrency_limit(limiter = DATABASE)]
async fn load_user(id: u64) -> User {
    db().load(id).await
}

#[concurrency_limit(5, max_wait = Duration::from_millis(200), queue = 100, name = "github-api")]
async fn call_api(req: Request) -> Result<Response, ApiError> {
    client().send(req).await
}

#[concurrency_limit(2, key = host_of(&url))]
async fn crawl(url: String) -> Page {
    get(&url).await
}
