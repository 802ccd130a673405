use limit_runtime::concurrency_limit;

// `String` has many `From` impls, none for `LimitError`: one error, at the option.
#[concurrency_limit(1, queue = 10)]
async fn render(page: u32) -> Result<u32, String> {
    Ok(page)
}

fn main() {
    let _ = render(1);
}
