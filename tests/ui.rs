//! Compile-time behaviour of `#[concurrency_limit]`: what is accepted, and the one error
//! each mistake produces. The `.stderr` snapshots are for the pinned stable toolchain; after
//! a deliberate change to a message, regenerate them with `TRYBUILD=overwrite cargo test --test ui`
//! and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
