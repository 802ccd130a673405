/// Sums a pair.
#[must_use]
#[concurrency_limit(2, name = "pairs")]
pub(crate) async fn sum((a, b): (u32, u32), _: Guard, _permit: Token) -> u32 {
    a + b
}
