//! Compile-time behaviour of `#[concurrency_limit]`: what is accepted, and the one error
//! each mistake produces.
//!
//! The `.stderr` snapshots are rustc 1.95's (this workspace's `rust-version`, and the only
//! toolchain on its machines): another compiler words its messages differently. So the
//! comparison runs on 1.95 only, and on any other release it is reported as ignored, with the
//! reason, while the cases that must compile still run. After a deliberate change to a
//! message, regenerate the snapshots with `TRYBUILD=overwrite cargo test --test ui` and
//! review the diff.

#[test]
fn what_is_accepted_compiles() {
    trybuild::TestCases::new().pass("tests/ui/pass/*.rs");
}

#[test]
#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr snapshots are rustc 1.95's; run on 1.95 to compare them"
)]
fn each_mistake_is_one_error() {
    trybuild::TestCases::new().compile_fail("tests/ui/fail/*.rs");
}
