#[concurrency_limit(MAX_LOOKUPS)]
pub async fn lookup<'a>(&'a self, key: &str, mut retries: u32) -> Option<&'a Entry> {
    retries += 1;
    self.entries.get(key)
}
