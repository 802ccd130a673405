//! The examples that need only `limit-runtime` and tokio, in `examples/`: `job_pool` (the
//! README's first command) and `server`. Run one with `cargo run --example job_pool`.
