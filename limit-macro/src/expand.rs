//! Stage 3: write the expansion.
//!
//! An `async fn` becomes a plain `fn` returning `impl Future`. The `fn` registers the call
//! (so it counts as in flight from the moment it is made, not from its first poll) and
//! returns an `async move` block that waits for a permit and then runs the original body.
//!
//! The `impl` token is spanned by this crate (edition 2024), so the opaque type captures
//! every lifetime in scope, as an `async fn` does, even in an edition-2021 crate.
//! Every path is absolute. Every local the expansion introduces is `mixed_site`, and its
//! items, the limiter's `static` and the zero-sized handle type that finds it, sit in a block
//! of their own, so the user's code can neither shadow nor see them.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{FnArg, Pat, PatIdent, ReturnType, Signature, Token, Type};

use crate::validate::{Plan, Policy, Shape, Source, Weight, is_unit};

pub(crate) fn expand(plan: Plan) -> TokenStream {
    let Plan {
        attrs,
        vis,
        mut sig,
        body,
        source,
        policy,
        weight,
        shape,
    } = plan;
    let call = format_ident!("__call", span = Span::mixed_site());
    let policy_ident = format_ident!("__policy", span = Span::mixed_site());
    let inner_attrs = &body.inner_attrs;
    let weighed = weight
        .as_ref()
        .map(|weight| weighed(weight, policy.is_some()));
    let register = register(&source, &sig, &call, weighed.as_ref());
    // A weighted call that may be refused for its weight waits under a policy even without
    // `max_wait` or `queue`: the refusal comes back to the closure.
    let policy_value = match (&policy, &weight) {
        (Some(policy), _) => Some(policy_value(policy)),
        (None, Some(_)) => Some(quote!(::limit_runtime::__private::Policy::new())),
        (None, None) => None,
    }
    .map(|value| quote!(let #policy_ident = #value;));
    let register = quote!(#register #policy_value);
    // A call too heavy for the limit panics where it is made, at the caller's line.
    let track_caller = weight.as_ref().map(|_| quote!(#[track_caller]));
    let permit = format_ident!("__permit", span = Span::mixed_site());
    let (wait, take_permit) =
        wait_and_permit(policy.as_ref(), weight.as_ref(), &policy_ident, &permit);
    let limited = |async_move: TokenStream, body: TokenStream| {
        quote! {
            ::limit_runtime::Limited::new(::limit_runtime::__private::Machine::new(
                #call,
                #wait
                move |#permit| #async_move {
                    #take_permit
                    #body
                },
            ))
        }
    };

    match shape {
        Shape::AsyncFn => {
            let (inputs, rebind) = move_arguments(&sig.inputs);
            let block = body.block();
            let (output, body) = match &sig.output {
                ReturnType::Type(_, ty) if !is_unit(ty) => (quote!(#ty), typed_body(ty, &block)),
                // A unit body needs no coercion: it stays the block's tail.
                _ => (quote!(()), quote!(#block)),
            };
            sig.asyncness = None;
            sig.inputs = inputs;
            let limited = limited(quote!(async move), quote!(#(#rebind)* #body));
            if instrumented_below(&attrs) {
                // `#[tracing::instrument]` below this attribute expands after it, and
                // instruments a plain `fn` only when it ends in an `async move` block (the
                // shape `#[async_trait]` writes). So the call's future goes in one: the span
                // then covers the wait for a permit, and the future is an `impl Future`,
                // without `admitted()`.
                let sig = with_output(sig, &quote!(impl ::core::future::Future<Output = #output>));
                return quote! {
                    #(#attrs)*
                    #track_caller
                    #vis #sig {
                        #(#inner_attrs)*
                        #register
                        async move { #limited.await }
                    }
                };
            }
            let sig = with_output(
                sig,
                &quote! {
                    ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output = #output>>
                },
            );
            // `refining_impl_trait`: in a trait impl, the trait's `impl Future` is what
            // callers through the trait see; callers of the concrete type get `Limited`.
            quote! {
                #(#attrs)*
                #track_caller
                #[allow(refining_impl_trait, clippy::type_complexity)]
                #vis #sig {
                    #(#inner_attrs)*
                    #register
                    #limited
                }
            }
        }
        Shape::BoxedAsyncBlock {
            callee,
            async_kw,
            move_kw,
            block,
        } => {
            let limited = limited(quote!(#async_kw #move_kw), quote!(#block));
            quote! {
                #(#attrs)*
                #track_caller
                #vis #sig {
                    #(#inner_attrs)*
                    #register
                    #callee(#limited)
                }
            }
        }
    }
}

/// The call's future: the fast path first; else the first tokens returned wait in line
/// (holding the call's guard); then the closure makes the body's future from the permit, which
/// the body holds until it ends, taking it with the second tokens returned. Under a policy,
/// the closure gets the permit or the refusal, and a refused call returns
/// `Err(From::from(LimitError))` without running the body; the refusal holds the call until
/// then, so `drain()` still counts it while its error is converted.
fn wait_and_permit(
    policy: Option<&Policy>,
    weight: Option<&Weight>,
    policy_ident: &syn::Ident,
    permit: &syn::Ident,
) -> (TokenStream, TokenStream) {
    let call = format_ident!("__call", span = Span::mixed_site());
    let refused = format_ident!("__refused", span = Span::mixed_site());
    let (error, refusal) = match (policy, weight) {
        (None, None) => {
            return (
                quote! {
                    ::limit_runtime::__private::Call::wait,
                    ::limit_runtime::__private::AtFront::wait,
                },
                quote!(let #permit = #permit;),
            );
        }
        (Some(policy), _) => {
            // Located at the option: a return type that cannot carry the error (not a
            // `Result`, or an `E` without `From<LimitError>`) is one error there, with
            // `Refusal`'s message.
            let span = Span::call_site().located_at(policy.span);
            let error = format_ident!("__error", span = Span::mixed_site().located_at(policy.span));
            let refusal = quote_spanned!(span=> ::limit_runtime::__private::refusal(#error));
            (error, refusal)
        }
        // Only a weight refuses: `Err(TooHeavy)` if the output can carry it; otherwise the
        // call panicked when it was made, and this is never reached.
        (None, Some(weight)) => {
            let error = format_ident!("__error", span = Span::mixed_site());
            let refusal = if let Some(ty) = &weight.output {
                quote! {{
                    use ::limit_runtime::__private::{HeavyPanics as _, HeavyRefuses as _};
                    (&&::limit_runtime::__private::Heavy::<#ty>::PROBE).refuse(#error)
                }}
            } else {
                quote!(::limit_runtime::__private::never_refused(#error))
            };
            (error, refusal)
        }
    };
    (
        quote! {
            move |#call| #call.wait_with(#policy_ident),
            ::limit_runtime::__private::never_front,
        },
        quote! {
            let #permit = match #permit {
                ::core::result::Result::Ok(#permit) => #permit,
                ::core::result::Result::Err(#refused) => {
                    let #error = #refused.error();
                    return #refusal;
                }
            };
        },
    )
}

/// Whether `#[instrument]` (tracing's, by its last path segment) is among the attributes
/// that expand after this one.
fn instrumented_below(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "instrument")
    })
}

/// `sig` with `-> output` as its return type. Written out rather than parsed back into a
/// `Signature` with `parse_quote!`, which would cost as much as the rest of the expansion.
fn with_output(mut sig: Signature, output: &TokenStream) -> TokenStream {
    // A signature prints its `where` clause after the return type.
    let where_clause = sig.generics.where_clause.take();
    sig.output = ReturnType::Default;
    quote!(#sig -> #output #where_clause)
}

/// The statement, in the plain `fn`, that registers the call and binds its guard to `call`.
/// `weighed` is the weight's two arguments (see [`weighed`]), for a weighted call: it goes
/// through the `_weighted` form of each constructor.
///
/// The limiter is reached through a zero-sized `Handle` type declared here, in a block of its
/// own, rather than through a reference: the call's guards then take no space in its future.
fn register(
    source: &Source,
    sig: &Signature,
    call: &syn::Ident,
    weighed: Option<&TokenStream>,
) -> TokenStream {
    let constructor = |name: &str, span: Span| match weighed {
        Some(_) => format_ident!("{name}_weighted", span = span),
        None => format_ident!("{name}", span = span),
    };
    let weight_args = weighed.map(|args| quote!(, #args));
    let function = &sig.ident;
    // An instance's limiter goes through `call_instance`, spanned at the expression, so that
    // one of the wrong type is one error there, with the message of `IntoHandle`.
    let instance = match source {
        Source::Argument(argument) => Some((
            argument.span(),
            quote!(::core::clone::Clone::clone(&#argument)),
        )),
        Source::Instance(limiter) => Some((limiter.span(), quote!(#limiter))),
        _ => None,
    };
    if let Some((span, limiter)) = instance {
        let name = constructor("call_instance", span);
        let enter = quote_spanned!(span=> ::limit_runtime::__private::Limiter::#name);
        return quote!(let #call = #enter(#limiter #weight_args););
    }
    let handle = format_ident!("__Limiter", span = Span::mixed_site());
    let (limiter, enter) = match source {
        // Spanned at the path, so that naming a `const` (a fresh temporary at each use, not
        // one limiter) is reported there.
        Source::Shared(path) => {
            let name = constructor("call_shared", Span::call_site());
            (
                quote_spanned!(path.span()=> &#path),
                quote!(::limit_runtime::__private::Limiter::#name(#handle #weight_args)),
            )
        }
        Source::Own { limit, name, key } => {
            let limiter = format_ident!("__LIMITER", span = Span::mixed_site());
            // The default name: a method with a `self` receiver is named after its type, from
            // `Self` at its first call (`type_name`); any other function after its module.
            let (per_fn, type_name) = match name {
                Some(name) => (quote!(per_fn(#name)), quote!(::core::option::Option::None)),
                None if sig.receiver().is_some() => {
                    let method = function.unraw().to_string();
                    (
                        quote!(per_method(#method)),
                        quote! {
                            ::core::option::Option::Some(|| ::core::any::type_name::<Self>())
                        },
                    )
                }
                None => {
                    let suffix = format!("::{}", function.unraw());
                    (
                        quote!(per_fn(::core::concat!(::core::module_path!(), #suffix))),
                        quote!(::core::option::Option::None),
                    )
                }
            };
            // A `fn() -> usize`, spanned at the limit: a closure that captures (a variable
            // hidden from `validate` in a macro, such as `format!("{n}")`) is an error there.
            // (Located at the limit, but generated, so lints about closures keep quiet.)
            let span = Span::call_site().located_at(limit.span());
            let limit = quote_spanned!(span=> || #limit);
            let enter = match key {
                None => {
                    let name = constructor("call", Span::call_site());
                    quote! {
                        ::limit_runtime::__private::Limiter::#name(
                            #handle, #limit, #type_name #weight_args
                        )
                    }
                }
                Some(key) => {
                    let name = constructor("call_keyed", Span::call_site());
                    quote! {
                        ::limit_runtime::__private::Limiter::#name(
                            #handle, #limit, #type_name, #key #weight_args
                        )
                    }
                }
            };
            let limiter = quote! {
                static #limiter: ::limit_runtime::__private::Limiter =
                    ::limit_runtime::__private::Limiter::#per_fn;
                &#limiter
            };
            (limiter, enter)
        }
        Source::Instance(_) | Source::Argument(_) => unreachable!("returned above"),
    };
    quote! {
        let #call = {
            struct #handle;
            impl ::limit_runtime::__private::Handle for #handle {
                #[inline]
                fn limiter(&self) -> &::limit_runtime::__private::Limiter {
                    #limiter
                }
            }
            #enter
        };
    }
}

/// The weight's two arguments to a `_weighted` constructor: the weight, evaluated when the
/// call is made (an argument of type `usize`, so that an expression of another type is one
/// error, at it), and what a call too heavy for the limit does. Under `max_wait` or `queue`
/// the function returns a `Result` that carries a `LimitError` (the type system checks it at
/// the option), so it returns the refusal. Otherwise the output type decides, at compile
/// time (`Heavy`'s autoref dispatch): a `Result` that can carry one returns it, anything else
/// panics where the call is made; and so does an output that cannot be named.
fn weighed(weight: &Weight, has_policy: bool) -> TokenStream {
    let expr = &weight.expr;
    let on_heavy = match (&weight.output, has_policy) {
        (_, true) => quote!(::limit_runtime::__private::OnHeavy::Refuse),
        (Some(ty), false) => quote! {{
            use ::limit_runtime::__private::{HeavyPanics as _, HeavyRefuses as _};
            (&&::limit_runtime::__private::Heavy::<#ty>::PROBE).on_heavy()
        }},
        (None, false) => quote!(::limit_runtime::__private::OnHeavy::Panic),
    };
    quote!(#expr, #on_heavy)
}

/// `max_wait` and `queue`, evaluated when the call is made (so they may use the arguments).
fn policy_value(policy: &Policy) -> TokenStream {
    let max_wait = policy
        .max_wait
        .as_ref()
        .map(|max_wait| quote!(.max_wait(#max_wait)));
    let queue = policy.queue.as_ref().map(|queue| quote!(.queue(#queue)));
    quote!(::limit_runtime::__private::Policy::new() #max_wait #queue)
}

/// The body of a function returning `ty`, as the tail of the `async move` block.
///
/// An `async fn`'s body is checked against its declared return type, so `&self.name` becomes
/// a `&str` and `Box::new(e)` a `Box<dyn Error>`. An `async` block's output is inferred from
/// its body instead, so the expansion states the type: `let __ret: T = { body };`, and, when
/// the body contains `return`, a never-taken `return` of type `T` first, which fixes the
/// block's return type for every other `return` (the technique async-trait uses). Inside the
/// type, `impl Trait` becomes `_`, since it cannot be named in a `let`.
fn typed_body(ty: &Type, block: &proc_macro2::Group) -> TokenStream {
    let mut ty = ty.clone();
    InferImplTrait.visit_type_mut(&mut ty);
    let ret = format_ident!("__ret", span = Span::mixed_site());
    let hint = contains_return(block.stream()).then(|| {
        quote! {
            if let ::core::option::Option::Some(#ret) = ::core::option::Option::None::<#ty> {
                #[allow(unreachable_code)]
                return #ret;
            }
        }
    });
    // The lints allowed on generated code, and why:
    // - `unreachable_code`: after a body that diverges (`loop {}`, `todo!()`), `__ret` and
    //   the hint's `return` are unreachable, which an `async fn` would not report.
    // - `clippy::diverging_sub_expression`: a body ending in `return x;` becomes the value of
    //   the `let`, which that lint reports; in an `async fn` it is a tail statement.
    quote! {
        #hint
        #[allow(clippy::diverging_sub_expression)]
        let #ret: #ty = #block;
        #[allow(unreachable_code)]
        #ret
    }
}

/// Whether `return` appears anywhere in the tokens. A `return` inside a closure in the body
/// counts too, which only costs an unneeded (and free) hint.
fn contains_return(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "return",
        TokenTree::Group(group) => contains_return(group.stream()),
        _ => false,
    })
}

struct InferImplTrait;

impl VisitMut for InferImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                attrs: Vec::new(),
                underscore_token: Token![_](syn::spanned::Spanned::span(impl_trait)),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
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
                let cfg = typed
                    .attrs
                    .iter()
                    .filter(|attr| attr.path().is_ident("cfg"));
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
                        let cfg: Vec<_> = cfg.collect();
                        let destructure = match pattern {
                            Pat::Wild(_) => None,
                            pattern => Some(quote!(#(#cfg)* let #pattern = #hidden;)),
                        };
                        // `ref mut x` borrows the hidden binding mutably.
                        let mutability =
                            contains_ref_mut(quote!(#pattern)).then(<Token![mut]>::default);
                        rebind.push(quote! {
                            #(#cfg)* let #mutability #hidden = #hidden;
                            #destructure
                        });
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

/// Whether a pattern binds anything by `ref mut`.
fn contains_ref_mut(tokens: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    tokens.windows(2).any(|pair| {
        matches!(pair, [TokenTree::Ident(a), TokenTree::Ident(b)] if a == "ref" && b == "mut")
    }) || tokens.iter().any(|token| match token {
        TokenTree::Group(group) => contains_ref_mut(group.stream()),
        _ => false,
    })
}
