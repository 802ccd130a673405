//! Limit how many calls of an async function run at once, and wait for all of them to finish.
//!
//! ```
//! use limit_runtime::{concurrency_limit, drain};
//!
//! #[concurrency_limit(5)] // at most 5 calls of `fetch` run at once
//! async fn fetch(url: String) -> usize {
//!     url.len()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! for i in 0..50 {
//!     tokio::spawn(fetch(format!("https://example.com/{i}")));
//! }
//! drain().await; // returns once every call made so far has finished
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod in_flight;
mod limiter;
mod registry;

pub use limit_macro::concurrency_limit;
pub use registry::drain;

/// What the expansion of `#[concurrency_limit]` refers to. Not a public API: it may change
/// in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::limiter::{Admitted, Call, Limiter};
}
