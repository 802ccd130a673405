// `weight = …`: a call takes that many of the limit's permits, evaluated when it is made.
#[concurrency_limit(64, weight = body.len())]
async fn upload(body: Vec<u8>) -> Result<usize, UploadError> {
    store(&body).await?;
    Ok(body.len())
}

// Under `max_wait`, a call too heavy for the limit is refused like one that waited too long.
#[concurrency_limit(64, weight = body.len(), max_wait = Duration::from_secs(1))]
async fn upload_or_give_up(body: Vec<u8>) -> Result<usize, UploadError> {
    store(&body).await?;
    Ok(body.len())
}

// An output that cannot carry the refusal: a call too heavy for the limit panics where it is
// made.
#[concurrency_limit(64, weight = n)]
async fn reserve(n: usize) {
    fill(n).await;
}
