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

mod args;
mod expand;
mod item;
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
pub(crate) fn expand_attribute(
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
