#[concurrency_limit(3)]
async fn name(&self, fallback: bool) -> &str {
    if fallback {
        return "unknown";
    }
    &self.name
}

#[concurrency_limit(3)]
async fn label(id: u32) -> Box<impl Display> {
    Box::new(id)
}

#[concurrency_limit(3)]
async fn edit(ref mut text: String, #[cfg(feature = "x")] (a, _): (u8, u8)) {
    text.push('!');
}
