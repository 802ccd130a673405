//! The `#[concurrency_limit]` attribute of [`limit-runtime`](https://docs.rs/limit-runtime).
//!
//! Do not depend on this crate directly: depend on `limit-runtime`, which re-exports the
//! attribute and documents it. The expansion refers to `::limit_runtime` by absolute paths,
//! into a hidden module that is not a public API, so it compiles only in a crate that
//! depends on `limit-runtime`; and `limit-runtime` depends on this crate at exactly its own
//! version, so the two always match.
//!
//! ```toml
//! [dependencies]
//! limit-runtime = "0.2"
//! ```
//!
//! The macro runs in stages, a file each: `item.rs` reads the annotated item, keeping the
//! body as tokens; `args.rs` parses the attribute's arguments; `validate.rs` checks both and
//! decides the shape of the expansion; `expand.rs` writes it.
//!
//! The macro runs unoptimized in a user's dev build, once per annotated function, so what it
//! costs the compiler is a goal of its own (`scripts/compile_cost.sh`: at most 0.4 times
//! tracing's `#[instrument]`). Two things make it cheap. The common shapes of an `async fn`
//! are read by `scan.rs`, straight from the tokens, into the same `item::Function` that syn
//! reads in `item.rs` (syn's signature parser was the largest part of the cost); the two
//! readers are checked against each other by the fuzzers. And `expand.rs` writes the
//! expansion tree by tree, one token stream per group, without `quote!`'s nested streams:
//! each stream is a round trip into the compiler.

mod args;
mod expand;
mod item;
mod out;
mod scan;
mod validate;

#[cfg(test)]
mod fuzz_arg_errors;
#[cfg(test)]
mod fuzz_harness;
#[cfg(test)]
mod fuzz_tokens;
#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// Limits how many calls of an `async fn` run at once. See the `limit-runtime` crate.
#[proc_macro_attribute]
pub fn concurrency_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attribute(args.into(), item.into()).into()
}

/// The whole attribute as a plain function over token streams, so that tests and fuzzers
/// can drive it without a compiler. It never panics: it returns the expansion, or the
/// original item followed by exactly one error.
///
/// The item is read by `scan.rs` if it has one of the common shapes it knows, else by syn
/// (`item::parse`); a failure on the fast way goes the reference way, so that every error
/// is the reference's.
pub(crate) fn expand_attribute(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    fast_path(&args, &item).unwrap_or_else(|| reference_path(args, item))
}

/// The expansion, if `scan.rs` reads the item and the arguments are valid for it.
pub(crate) fn fast_path(
    args: &proc_macro2::TokenStream,
    item: &proc_macro2::TokenStream,
) -> Option<proc_macro2::TokenStream> {
    let function = scan::function(item)?;
    let args = args::parse(args.clone()).ok()?;
    let plan = validate::validate(args, function).ok()?;
    Some(expand::expand(plan))
}

/// The attribute with the item read by syn.
pub(crate) fn reference_path(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let result = item::parse(item.clone()).and_then(|function| {
        let args = args::parse(args)?;
        let plan = validate::validate(args, function)?;
        Ok(expand::expand(plan))
    });
    match result {
        Ok(expansion) => expansion,
        Err(error) => with_error(item, &error),
    }
}

/// Emits the item unchanged next to the error, so that one mistake in the attribute does not
/// turn every use of the function into a second error, and the IDE still sees the function.
fn with_error(mut item: proc_macro2::TokenStream, error: &syn::Error) -> proc_macro2::TokenStream {
    item.extend(error.to_compile_error());
    item
}
