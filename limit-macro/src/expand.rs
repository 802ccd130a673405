//! Stage 3: write the expansion.
//!
//! An `async fn` becomes a plain `fn` returning `impl Future`. The `fn` registers the call
//! (so it counts as in flight from the moment it is made, not from its first poll) and
//! returns an `async move` block that waits for a permit and then runs the original body.
//!
//! The `impl` token is spanned by this crate (edition 2024), so the opaque type captures
//! every lifetime in scope, as an `async fn` does, even in an edition-2021 crate.
//! Every path is absolute, and every name the expansion introduces is `mixed_site`, so the
//! user's code can neither shadow nor see them.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{FnArg, Pat, PatIdent, ReturnType, Token, parse_quote};

use crate::validate::{Plan, Shape};

pub(crate) fn expand(plan: Plan) -> TokenStream {
    let Plan {
        attrs,
        vis,
        mut sig,
        body,
        limit,
        name,
        shape,
    } = plan;
    let limiter = format_ident!("__LIMITER", span = Span::mixed_site());
    let call = format_ident!("__call", span = Span::mixed_site());
    let permit = format_ident!("__permit", span = Span::mixed_site());
    let name = name.map_or_else(
        || {
            let suffix = format!("::{}", sig.ident.unraw());
            quote!(::core::concat!(::core::module_path!(), #suffix))
        },
        |name| quote!(#name),
    );
    let inner_attrs = &body.inner_attrs;
    let register = quote! {
        static #limiter: ::limit_runtime::__private::Limiter =
            ::limit_runtime::__private::Limiter::per_fn(#name);
        let #call = #limiter.call(|| #limit);
    };

    match shape {
        Shape::AsyncFn => {
            let (inputs, rebind) = move_arguments(&sig.inputs);
            let output = match &sig.output {
                ReturnType::Default => quote!(()),
                ReturnType::Type(_, ty) => quote!(#ty),
            };
            sig.asyncness = None;
            sig.inputs = inputs;
            sig.output = parse_quote!(-> impl ::core::future::Future<Output = #output>);
            let block = body.block();
            quote! {
                #(#attrs)*
                #vis #sig {
                    #(#inner_attrs)*
                    #register
                    async move {
                        let #permit = #call.admit().await;
                        #(#rebind)*
                        #block
                    }
                }
            }
        }
        Shape::BoxedAsyncBlock {
            callee,
            async_kw,
            move_kw,
            block,
        } => quote! {
            #(#attrs)*
            #vis #sig {
                #(#inner_attrs)*
                #register
                #callee(#async_kw #move_kw {
                    let #permit = #call.admit().await;
                    #block
                })
            }
        },
    }
}

/// Rewrites the parameters for the outer `fn`, and writes the statements that move each of
/// them into the `async move` block.
///
/// An `async fn` keeps every argument alive until its body ends, even one the body never
/// mentions (`_guard: MutexGuard<…>`, `_: Token`). An `async move` block captures only what
/// it mentions, so each argument is mentioned once, the way rustc lowers `async fn` itself:
/// a plain binding is moved with `let x = x;`, and any other pattern gets a hidden name in
/// the signature and is destructured inside the block.
fn move_arguments(
    inputs: &Punctuated<FnArg, Token![,]>,
) -> (Punctuated<FnArg, Token![,]>, Vec<TokenStream>) {
    let mut outer = Punctuated::new();
    let mut rebind = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => {
                let self_token = &receiver.self_token;
                rebind.push(quote!(let _ = &#self_token;));
                outer.push(input.clone());
            }
            FnArg::Typed(typed) => {
                let cfg = typed.attrs.iter().filter(|attr| attr.path().is_ident("cfg"));
                let mut typed = typed.clone();
                match &*typed.pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        // Same place, same resolution, but marked as generated: otherwise
                        // `let _x = _x;` trips clippy's underscore-binding lints.
                        let mut ident = ident.clone();
                        ident.set_span(ident.span().resolved_at(Span::call_site()));
                        rebind.push(quote!(#(#cfg)* let #mutability #ident = #ident;));
                        // `mut` belongs to the binding inside the block; on the outer
                        // parameter it would be an unused `mut`.
                        if let Pat::Ident(outer_ident) = &mut *typed.pat {
                            outer_ident.mutability = None;
                        }
                    }
                    pattern => {
                        let hidden = format_ident!("__arg{}", index, span = Span::mixed_site());
                        let destructure = match pattern {
                            Pat::Wild(_) => None,
                            pattern => Some(quote!(let #pattern = #hidden;)),
                        };
                        rebind.push(quote!(#(#cfg)* let #hidden = #hidden; #destructure));
                        typed.pat = Box::new(Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: hidden,
                            subpat: None,
                        }));
                    }
                }
                outer.push(FnArg::Typed(typed));
            }
        }
    }
    (outer, rebind)
}
