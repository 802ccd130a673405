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
//!
//! The expansion is written tree by tree with [`Out`] (see `out.rs` for why not `quote!`).
//! The item's own pieces are copied as the trees they were read as (a group, such as the body
//! or the parameters, travels as a handle, without its contents). The code reads as the
//! expansion it writes: each function's comment shows its tokens.

use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::item::{Attr, Body, Input, Pattern, Sig, Tokens};
use crate::out::{Out, mixed_site};
use crate::validate::{Bounds, OwnLimit, Plan, Policy, Shape, Source, Weight};

/// What the parts of the expansion share.
struct Cx<'a> {
    sig: &'a Sig,
    source: &'a Source,
    policy: Option<&'a Policy>,
    weight: Option<&'a Weight>,
    /// `__call`, the call's guard.
    call: Ident,
    /// `__policy`, the call's `max_wait` and `queue`.
    policy_ident: Ident,
    /// `__permit`, what the call's wait ends with.
    permit: Ident,
    /// Whether the call may be a sample of an adaptive limit (`Plan::sampled`): its guard is
    /// `sampled()`, and its body, once it returns, `complete`s it.
    sampled: bool,
    /// `overloaded = …`, for a sampled call.
    overloaded: Option<&'a syn::Expr>,
}

pub(crate) fn expand(plan: Plan) -> TokenStream {
    let sampled = plan.sampled();
    let Plan {
        attrs,
        vis,
        sig,
        body,
        source,
        policy,
        weight,
        overloaded,
        shape,
    } = plan;
    let cx = Cx {
        sig: &sig,
        source: &source,
        policy: policy.as_ref(),
        weight: weight.as_ref(),
        call: mixed_site("__call"),
        policy_ident: mixed_site("__policy"),
        permit: mixed_site("__permit"),
        sampled,
        overloaded: overloaded.as_ref(),
    };
    let mut out = Out::new();
    for attr in &attrs {
        out.tokens(&attr.tokens);
    }
    // A call too heavy for the limit panics where it is made, at the caller's line.
    if weight.is_some() {
        out.attr(|out| {
            out.words(&["track_caller"]);
        });
    }
    match shape {
        Shape::AsyncFn => async_fn(&mut out, &cx, instrumented_below(&attrs), &vis, &body),
        Shape::BoxedAsyncBlock {
            callee,
            async_kw,
            move_kw,
            block,
        } => {
            // The signature as written.
            out.tokens(&vis)
                .tokens(&sig.qualifiers)
                .tree(Ident::new("fn", sig.fn_token))
                .ident(&sig.ident)
                .tokens(&sig.generics)
                .tree(sig.params.clone());
            if let Some(output) = &sig.output {
                out.tokens(&output.arrow).tokens(&output.ty);
            }
            // `{ REGISTER Box::pin(LIMITED) }`, with the `async move` as written.
            out.tokens(&sig.where_clause).braces(|out| {
                out.tokens(&body.inner_attrs);
                register(out, &cx);
                out.tokens(&callee).parens(|out| {
                    let async_move = |out: &mut Out| {
                        out.tree(async_kw).tree(move_kw);
                    };
                    limited(out, &cx, async_move, |out| {
                        if cx.sampled {
                            // The block's `return`s are its own: it runs in an `async` block.
                            sampled_tail(out, &cx, true, |out| {
                                out.tree(block);
                            });
                        } else {
                            out.tree(block);
                        }
                    });
                });
            });
        }
    }
    out.finish()
}

/// An `async fn` as a plain `fn`: `#[allow(refining_impl_trait, clippy::type_complexity)]
/// fn NAME<…>(PARAMS) -> ::limit_runtime::Limited<impl ::limit_runtime::__private::Spec<Output
/// = T>> WHERE { REGISTER LIMITED }`, where `LIMITED`'s body moves the arguments in and runs
/// the original body.
///
/// With `#[tracing::instrument]` below this attribute, which expands after it and instruments
/// a plain `fn` only when it ends in an `async move` block (the shape `#[async_trait]`
/// writes), the call's future goes in one: `fn NAME<…>(PARAMS) -> impl
/// ::core::future::Future<Output = T> WHERE { REGISTER async move { LIMITED.await } }`. The
/// span then covers the wait for a permit, and the future is an `impl Future`, without
/// `admitted()`.
fn async_fn(out: &mut Out, cx: &Cx<'_>, instrumented: bool, vis: &[TokenTree], body: &Body) {
    let sig = cx.sig;
    if !instrumented {
        // `refining_impl_trait`: in a trait impl, the trait's `impl Future` is what callers
        // through the trait see; callers of the concrete type get `Limited`.
        out.attr(|out| {
            out.words(&["allow"]).parens(|out| {
                out.words(&["refining_impl_trait"]).op(",");
                out.words(&["clippy"]).op("::").words(&["type_complexity"]);
            });
        });
    }
    let (params, rebind) = move_arguments(sig);
    out.tokens(vis)
        .tokens(&sig.qualifiers)
        .tree(Ident::new("fn", sig.fn_token))
        .ident(&sig.ident)
        .tokens(&sig.generics)
        .tree(params)
        .op("->");
    if instrumented {
        out.words(&["impl"]).path(&["core", "future", "Future"]);
    } else {
        out.path(&["limit_runtime", "Limited"])
            .op("<")
            .words(&["impl"])
            .private(&["Spec"]);
    }
    out.op("<").words(&["Output"]).op("=");
    let typed = sig.output.as_ref().filter(|output| !output.unit);
    match typed {
        Some(output) => out.tokens(&output.ty),
        // A unit body needs no coercion: it stays the block's tail.
        None => out.parens(|_| {}),
    };
    out.op(if instrumented { ">" } else { ">>" });
    let block = body.block();
    let limited = |out: &mut Out| {
        let async_move = |out: &mut Out| {
            out.words(&["async", "move"]);
        };
        limited(out, cx, async_move, |out| {
            out.tokens(&rebind);
            let tail = |out: &mut Out| match typed {
                Some(output) => typed_body(
                    out,
                    output.inferred.as_deref().unwrap_or(&output.ty),
                    block,
                    body.contains_return(),
                ),
                None => {
                    out.tree(block);
                }
            };
            if cx.sampled {
                sampled_tail(out, cx, body.may_exit_early(), |out| {
                    tail(out);
                });
            } else {
                tail(out);
            }
        });
    };
    out.tokens(&sig.where_clause).braces(|out| {
        out.tokens(&body.inner_attrs);
        register(out, cx);
        if instrumented {
            out.words(&["async", "move"]).braces(|out| {
                limited(out);
                out.op(".").words(&["await"]);
            });
        } else {
            limited(out);
        }
    });
}

/// The call's future, `::limit_runtime::Limited::new(::limit_runtime::__private::Machine::new(
/// __call, WAIT move |__permit| async move { TAKE_PERMIT BODY },))`, with `async move` written
/// by `async_move`.
fn limited(
    out: &mut Out,
    cx: &Cx<'_>,
    async_move: impl FnOnce(&mut Out),
    body: impl FnOnce(&mut Out),
) {
    out.path(&["limit_runtime", "Limited", "new"])
        .parens(|out| {
            out.private(&["Machine", "new"]).parens(|out| {
                out.ident(&cx.call).op(",");
                wait(out, cx);
                out.words(&["move"]).op("|").ident(&cx.permit).op("|");
                async_move(out);
                out.braces(|out| {
                    take_permit(out, cx);
                    body(out);
                })
                .op(",");
            });
        });
}

/// The call's wait: the fast path first; else the first function waits in line (holding the
/// call's guard), the second at the front of the line. Under a policy, the call waits with it
/// and never goes to the front.
///
/// `::limit_runtime::__private::Call::wait, ::limit_runtime::__private::AtFront::wait,`, or
/// `move |__call| __call.wait_with(__policy), ::limit_runtime::__private::never_front,`.
fn wait(out: &mut Out, cx: &Cx<'_>) {
    if cx.policy.is_none() && cx.weight.is_none() {
        out.private(&["Call", "wait"]).op(",");
        out.private(&["AtFront", "wait"]).op(",");
        return;
    }
    out.words(&["move"]).op("|").ident(&cx.call).op("|");
    out.ident(&cx.call)
        .op(".")
        .words(&["wait_with"])
        .parens(|out| {
            out.ident(&cx.policy_ident);
        })
        .op(",");
    out.private(&["never_front"]).op(",");
}

/// The first statement of the closure that makes the body's future from the permit, which
/// the body holds until it ends. Under a policy, the closure gets the permit or the refusal,
/// and a refused call returns `Err(From::from(LimitError))` without running the body; the
/// refusal holds the call until then, so `drain()` still counts it while its error is
/// converted.
///
/// `let __permit = __permit;`, or `let __permit = match __permit {
/// ::core::result::Result::Ok(__permit) => __permit, ::core::result::Result::Err(__refused)
/// => { let __error = __refused.error(); return REFUSAL; } };`
fn take_permit(out: &mut Out, cx: &Cx<'_>) {
    let permit = &cx.permit;
    out.words(&["let"]);
    // A sampled call's permit is `complete`d when the body returns.
    if cx.sampled {
        out.words(&["mut"]);
    }
    out.ident(permit).op("=");
    if cx.policy.is_none() && cx.weight.is_none() {
        out.ident(permit).op(";");
        start(out, cx);
        return;
    }
    let refused = mixed_site("__refused");
    // Under a policy, located at the option: a return type that cannot carry the error (not
    // a `Result`, or an `E` without `From<LimitError>`) is one error there, with `Refusal`'s
    // message.
    let error = match cx.policy {
        Some(policy) => Ident::new("__error", Span::mixed_site().located_at(policy.span)),
        None => mixed_site("__error"),
    };
    out.words(&["match"]).ident(permit).braces(|out| {
        out.path(&["core", "result", "Result", "Ok"])
            .parens(|out| {
                out.ident(permit);
            })
            .op("=>")
            .ident(permit)
            .op(",");
        out.path(&["core", "result", "Result", "Err"])
            .parens(|out| {
                out.ident(&refused);
            })
            .op("=>")
            .braces(|out| {
                out.words(&["let"])
                    .ident(&error)
                    .op("=")
                    .ident(&refused)
                    .op(".")
                    .words(&["error"])
                    .parens(|_| {})
                    .op(";");
                out.words(&["return"]);
                refusal(out, cx, &error);
                out.op(";");
            });
    });
    out.op(";");
    start(out, cx);
}

/// `__permit.start();`: a sampled call's body starts (its stamp, for an adaptive limit).
fn start(out: &mut Out, cx: &Cx<'_>) {
    if cx.sampled {
        out.ident(&cx.permit)
            .op(".")
            .words(&["start"])
            .parens(|_| {})
            .op(";");
    }
}

/// What a refused call returns: under a policy, `::limit_runtime::__private::refusal(__error)`
/// (spanned at the option). When only a weight refuses: `Err(TooHeavy)` if the output can
/// carry it (`Heavy`'s probe); otherwise the call panicked when it was made, and
/// `::limit_runtime::__private::never_refused(__error)` is never reached.
fn refusal(out: &mut Out, cx: &Cx<'_>, error: &Ident) {
    let weight_output = cx.weight.and_then(|weight| weight.output.as_ref());
    match (cx.policy, weight_output) {
        (Some(policy), _) => {
            out.spanned(Span::call_site().located_at(policy.span), |out| {
                out.private(&["refusal"]).parens(|out| {
                    out.ident(error);
                });
            });
        }
        (None, Some(ty)) => heavy_probe(out, ty, "refuse", |out| {
            out.ident(error);
        }),
        (None, None) => {
            out.private(&["never_refused"]).parens(|out| {
                out.ident(error);
            });
        }
    }
}

/// `{ use ::limit_runtime::__private::{HeavyPanics as _, HeavyRefuses as _};
/// (&&::limit_runtime::__private::Heavy::<T>::PROBE).METHOD(ARGS) }`: the output type decides
/// at compile time (autoref dispatch) whether a call too heavy for the limit returns an error
/// or panics.
fn heavy_probe(out: &mut Out, ty: &[TokenTree], method: &str, args: impl FnOnce(&mut Out)) {
    out.braces(|out| {
        out.words(&["use"])
            .path(&["limit_runtime", "__private"])
            .op("::")
            .braces(|out| {
                out.words(&["HeavyPanics", "as", "_"]).op(",");
                out.words(&["HeavyRefuses", "as", "_"]);
            })
            .op(";");
        out.parens(|out| {
            out.op("&&")
                .private(&["Heavy"])
                .op("::")
                .op("<")
                .tokens(ty)
                .op(">")
                .path(&["PROBE"]);
        })
        .op(".")
        .words(&[method])
        .parens(args);
    });
}

/// Whether `#[instrument]` (tracing's, by its last path segment) is among the attributes
/// that expand after this one.
fn instrumented_below(attrs: &[Attr]) -> bool {
    attrs.iter().any(|attr| attr.instrument)
}

/// The statement, in the plain `fn`, that registers the call and binds its guard to
/// `__call`, then, for a call under a policy, the policy. A weighted call goes through the
/// `_weighted` form of each constructor, with the weight's two arguments (see [`weighed`]).
///
/// The limiter is reached through a zero-sized `Handle` type declared here, in a block of its
/// own, rather than through a reference: the call's guards then take no space in its future.
fn register(out: &mut Out, cx: &Cx<'_>) {
    let constructor = |name: &str, span: Span| match cx.weight {
        Some(_) => Ident::new(&format!("{name}_weighted"), span),
        None => Ident::new(name, span),
    };
    let weight_args = |out: &mut Out| {
        if let Some(weight) = cx.weight {
            out.op(",");
            weighed(out, weight, cx.policy.is_some());
        }
    };
    // An instance's limiter goes through `call_instance`, spanned at the expression, so that
    // one of the wrong type is one error there, with the message of `IntoHandle`.
    let instance = match cx.source {
        Source::Argument(argument) => Some((argument.span(), Some(argument), None)),
        Source::Instance(limiter) => Some((limiter.span(), None, Some(limiter))),
        _ => None,
    };
    if let Some((span, argument, expr)) = instance {
        // `let __call = ::limit_runtime::__private::Limiter::call_instance(LIMITER);`
        out.words(&["let"]).ident(&cx.call).op("=");
        out.spanned(span, |out| {
            out.private(&["Limiter"])
                .op("::")
                .ident(&constructor("call_instance", span));
        });
        out.parens(|out| {
            if let Some(argument) = argument {
                // `::core::clone::Clone::clone(&ARG)`
                out.path(&["core", "clone", "Clone", "clone"])
                    .parens(|out| {
                        out.op("&").ident(argument);
                    });
            }
            if let Some(expr) = expr {
                out.stream(quote::ToTokens::to_token_stream(expr));
            }
            weight_args(out);
        });
        sampled(out, cx);
        out.op(";");
        policy(out, cx);
        return;
    }
    let handle = mixed_site("__Limiter");
    // `let __call = { struct __Limiter; impl ::limit_runtime::__private::Handle for __Limiter
    // { #[inline] fn limiter(&self) -> &::limit_runtime::__private::Limiter { LIMITER } }
    // ENTER };`
    out.words(&["let"]).ident(&cx.call).op("=").braces(|out| {
        out.words(&["struct"]).ident(&handle).op(";");
        out.words(&["impl"])
            .private(&["Handle"])
            .words(&["for"])
            .ident(&handle)
            .braces(|out| {
                out.attr(|out| {
                    out.words(&["inline"]);
                });
                out.words(&["fn", "limiter"])
                    .parens(|out| {
                        out.op("&").words(&["self"]);
                    })
                    .op("->")
                    .op("&")
                    .private(&["Limiter"])
                    .braces(|out| limiter(out, cx));
            });
        enter(out, cx, &handle, &constructor, &weight_args);
        sampled(out, cx);
    });
    out.op(";");
    policy(out, cx);
}

/// `.sampled()` after the call's guard, for a call that may be a sample of an adaptive
/// limit.
fn sampled(out: &mut Out, cx: &Cx<'_>) {
    if cx.sampled {
        out.op(".").words(&["sampled"]).parens(|_| {});
    }
}

/// `let __policy = POLICY;`, for a call under a policy. A weighted call that may be refused
/// for its weight waits under a policy even without `max_wait` or `queue`: the refusal comes
/// back to the closure.
fn policy(out: &mut Out, cx: &Cx<'_>) {
    if cx.policy.is_none() && cx.weight.is_none() {
        return;
    }
    out.words(&["let"]).ident(&cx.policy_ident).op("=");
    policy_value(out, cx.policy);
    out.op(";");
}

/// The body of the handle's `limiter()`: a shared `static` by its path (spanned at the path,
/// so that naming a `const`, a fresh temporary at each use rather than one limiter, is
/// reported there), or the function's own.
///
/// `&PATH`, or `static __LIMITER: ::limit_runtime::__private::Limiter =
/// ::limit_runtime::__private::Limiter::per_fn(NAME); &__LIMITER`
fn limiter(out: &mut Out, cx: &Cx<'_>) {
    let (name, own) = match cx.source {
        Source::Shared(path) => {
            out.spanned(path.span(), |out| {
                out.op("&");
            });
            out.stream(quote::ToTokens::to_token_stream(path));
            return;
        }
        Source::Own { name, limit, .. } => (name, limit),
        Source::Instance(_) | Source::Argument(_) => unreachable!("no handle type"),
    };
    let limiter = mixed_site("__LIMITER");
    out.words(&["static"])
        .ident(&limiter)
        .op(":")
        .private(&["Limiter"])
        .op("=");
    out.private(&["Limiter"]);
    // The default name: a method with a `self` receiver is named after its type, from `Self`
    // at its first call (`type_name`); any other function after its module.
    match name {
        Some(name) => {
            out.path(&["per_fn"]).parens(|out| {
                out.stream(quote::ToTokens::to_token_stream(name));
            });
        }
        None if cx.sig.receiver().is_some() => {
            let method = cx.sig.ident.unraw().to_string();
            out.path(&["per_method"]).parens(|out| {
                out.tree(Literal::string(&method));
            });
        }
        None => {
            // `per_fn(::core::concat!(::core::module_path!(), "::NAME"))`
            let suffix = format!("::{}", cx.sig.ident.unraw());
            out.path(&["per_fn"]).parens(|out| {
                out.path(&["core", "concat"]).op("!").parens(|out| {
                    out.path(&["core", "module_path"]).op("!").parens(|_| {});
                    out.op(",").tree(Literal::string(&suffix));
                });
            });
        }
    }
    if let OwnLimit::Adaptive(bounds) = own {
        with_adaptive(out, bounds);
    }
    out.op(";").op("&").ident(&limiter);
}

/// `.with_adaptive(::limit_runtime::__private::Adaptive::new() .initial(I) .min(M)
/// .max(X))`, each bound if given: the function's own limiter, made adaptive.
fn with_adaptive(out: &mut Out, bounds: &Bounds) {
    out.op(".").words(&["with_adaptive"]).parens(|out| {
        out.private(&["Adaptive", "new"]).parens(|_| {});
        for (name, bound) in [
            ("initial", &bounds.initial),
            ("min", &bounds.min),
            ("max", &bounds.max),
        ] {
            if let Some(bound) = bound {
                out.op(".").words(&[name]).parens(|out| {
                    out.stream(quote::ToTokens::to_token_stream(bound));
                });
            }
        }
    });
}

/// `::limit_runtime::__private::Limiter::call_shared(__Limiter)`, or for the function's own
/// limiter `::limit_runtime::__private::Limiter::call(__Limiter, || LIMIT, TYPE_NAME)` (and
/// `, KEY` for `call_keyed`), each with the weight's arguments for a weighted call.
fn enter(
    out: &mut Out,
    cx: &Cx<'_>,
    handle: &Ident,
    constructor: &dyn Fn(&str, Span) -> Ident,
    weight_args: &dyn Fn(&mut Out),
) {
    let call_site = Span::call_site();
    out.private(&["Limiter"]).op("::");
    let Source::Own {
        limit, name, key, ..
    } = cx.source
    else {
        out.ident(&constructor("call_shared", call_site))
            .parens(|out| {
                out.ident(handle);
                weight_args(out);
            });
        return;
    };
    let constructor = constructor(if key.is_some() { "call_keyed" } else { "call" }, call_site);
    out.ident(&constructor).parens(|out| {
        out.ident(handle).op(",");
        // A `fn() -> usize`, spanned at the limit: a closure that captures (a variable
        // hidden from `validate` in a macro, such as `format!("{n}")`) is an error there.
        // (Located at the limit, but generated, so lints about closures keep quiet.)
        match limit {
            OwnLimit::Fixed(limit) => {
                out.spanned(call_site.located_at(limit.span()), |out| {
                    out.op("||").stream(quote::ToTokens::to_token_stream(limit));
                });
            }
            // An adaptive limiter starts at its bounds' `initial`: its limit function is
            // never called.
            OwnLimit::Adaptive(_) => {
                out.op("||").tree(Literal::usize_unsuffixed(0));
            }
        }
        out.op(",");
        // `Self`'s name, for a method named after its type.
        if name.is_none() && cx.sig.receiver().is_some() {
            // `::core::option::Option::Some(|| ::core::any::type_name::<Self>())`
            out.path(&["core", "option", "Option", "Some"])
                .parens(|out| {
                    out.op("||")
                        .path(&["core", "any", "type_name"])
                        .op("::")
                        .op("<")
                        .words(&["Self"])
                        .op(">")
                        .parens(|_| {});
                });
        } else {
            out.path(&["core", "option", "Option", "None"]);
        }
        if let Some(key) = key {
            out.op(",").stream(quote::ToTokens::to_token_stream(key));
        }
        weight_args(out);
    });
}

/// The weight's two arguments to a `_weighted` constructor: the weight, evaluated when the
/// call is made (an argument of type `usize`, so that an expression of another type is one
/// error, at it), and what a call too heavy for the limit does. Under `max_wait` or `queue`
/// the function returns a `Result` that carries a `LimitError` (the type system checks it at
/// the option), so it returns the refusal. Otherwise the output type decides, at compile
/// time (`Heavy`'s autoref dispatch): a `Result` that can carry one returns it, anything else
/// panics where the call is made; and so does an output that cannot be named.
fn weighed(out: &mut Out, weight: &Weight, has_policy: bool) {
    out.stream(quote::ToTokens::to_token_stream(&weight.expr))
        .op(",");
    match (&weight.output, has_policy) {
        (_, true) => {
            out.private(&["OnHeavy", "Refuse"]);
        }
        (Some(ty), false) => heavy_probe(out, ty, "on_heavy", |_| {}),
        (None, false) => {
            out.private(&["OnHeavy", "Panic"]);
        }
    }
}

/// `max_wait` and `queue`, evaluated when the call is made (so they may use the arguments):
/// `::limit_runtime::__private::Policy::new() .max_wait(MAX_WAIT) .queue(QUEUE)`.
fn policy_value(out: &mut Out, policy: Option<&Policy>) {
    out.private(&["Policy", "new"]).parens(|_| {});
    let Some(policy) = policy else {
        return;
    };
    if let Some(max_wait) = &policy.max_wait {
        out.op(".").words(&["max_wait"]).parens(|out| {
            out.stream(quote::ToTokens::to_token_stream(max_wait));
        });
    }
    if let Some(queue) = &policy.queue {
        out.op(".").words(&["queue"]).parens(|out| {
            out.stream(quote::ToTokens::to_token_stream(queue));
        });
    }
}

/// The body of a function returning `ty`, as the tail of the `async move` block.
///
/// An `async fn`'s body is checked against its declared return type, so `&self.name` becomes
/// a `&str` and `Box::new(e)` a `Box<dyn Error>`. An `async` block's output is inferred from
/// its body instead, so the expansion states the type: `let __ret: T = { body };`, and, when
/// the body contains `return`, a never-taken `return` of type `T` first, which fixes the
/// block's return type for every other `return` (the technique async-trait uses). Inside the
/// type, `impl Trait` becomes `_`, since it cannot be named in a `let` (`ty` is that type).
///
/// The lints allowed on generated code, and why:
/// - `unreachable_code`: after a body that diverges (`loop {}`, `todo!()`), `__ret` and the
///   hint's `return` are unreachable, which an `async fn` would not report.
/// - `clippy::diverging_sub_expression`: a body ending in `return x;` becomes the value of
///   the `let`, which that lint reports; in an `async fn` it is a tail statement.
fn typed_body(out: &mut Out, ty: &[TokenTree], block: Group, hint: bool) {
    let ret = mixed_site("__ret");
    let allow_unreachable = |out: &mut Out| {
        out.attr(|out| {
            out.words(&["allow"]).parens(|out| {
                out.words(&["unreachable_code"]);
            });
        });
    };
    if hint {
        // `if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<T> {
        // #[allow(unreachable_code)] return __ret; }`
        out.words(&["if", "let"])
            .path(&["core", "option", "Option", "Some"])
            .parens(|out| {
                out.ident(&ret);
            })
            .op("=")
            .path(&["core", "option", "Option", "None"])
            .op("::")
            .op("<")
            .tokens(ty)
            .op(">")
            .braces(|out| {
                allow_unreachable(out);
                out.words(&["return"]).ident(&ret).op(";");
            });
    }
    // `#[allow(clippy::diverging_sub_expression)] let __ret: T = { body };
    // #[allow(unreachable_code)] __ret`
    out.attr(|out| {
        out.words(&["allow"]).parens(|out| {
            out.words(&["clippy"])
                .op("::")
                .words(&["diverging_sub_expression"]);
        });
    });
    out.words(&["let"])
        .ident(&ret)
        .op(":")
        .tokens(ty)
        .op("=")
        .tree(block)
        .op(";");
    allow_unreachable(out);
    out.ident(&ret);
}

/// The tail of a sampled call's block: the body's value, then the permit's sample, then the
/// value. `INNER` is the tail the block would have otherwise; a body that may leave early
/// (`return`, `?`) runs in an `async` block of its own, so that its early exits reach the
/// sample too. A call that is cancelled or panics never gets here: no sample.
///
/// `let __ret = async move { INNER }.await;` (or `let __ret = { INNER };`), then
/// `#[allow(unreachable_code)] __permit.complete(OVERLOADED); #[allow(unreachable_code)]
/// __ret`, where `OVERLOADED` is `::limit_runtime::__private::overloaded(&__ret, EXPR)` for
/// `overloaded = EXPR`, else `false`.
fn sampled_tail(out: &mut Out, cx: &Cx<'_>, may_exit_early: bool, inner: impl FnOnce(&mut Out)) {
    let ret = mixed_site("__ret");
    let allow_unreachable = |out: &mut Out| {
        out.attr(|out| {
            out.words(&["allow"]).parens(|out| {
                out.words(&["unreachable_code"]);
            });
        });
    };
    out.words(&["let"]).ident(&ret).op("=");
    if may_exit_early {
        out.words(&["async", "move"]).braces(inner);
        out.op(".").words(&["await"]);
    } else {
        out.braces(inner);
    }
    out.op(";");
    allow_unreachable(out);
    out.ident(&cx.permit)
        .op(".")
        .words(&["complete"])
        .parens(|out| match cx.overloaded {
            Some(overloaded) => {
                // Spanned at the expression, so that one of the wrong type is one error there.
                out.spanned(overloaded.span(), |out| {
                    out.private(&["overloaded"]);
                });
                out.parens(|out| {
                    out.op("&").ident(&ret).op(",");
                    out.stream(quote::ToTokens::to_token_stream(overloaded));
                });
            }
            None => {
                out.words(&["false"]);
            }
        })
        .op(";");
    allow_unreachable(out);
    out.ident(&ret);
}

/// The parameters for the outer `fn`, and the statements that move each of them into the
/// `async move` block.
///
/// An `async fn` keeps every argument alive until its body ends, even one the body never
/// mentions (`_guard: MutexGuard<…>`, `_: Token`). An `async move` block captures only what
/// it mentions, so each argument is mentioned once, the way rustc lowers `async fn` itself:
/// a plain binding is moved with `let x = x;`, and any other pattern gets a hidden name in
/// the signature and is destructured inside the block. Parameters that need no new name keep
/// their parentheses as written.
fn move_arguments(sig: &Sig) -> (Group, Tokens) {
    let mut outer = Out::new();
    let mut rebind = Out::new();
    let mut renamed = false;
    for (index, input) in sig.inputs.iter().enumerate() {
        if index > 0 {
            outer.op(",");
        }
        match input {
            Input::Receiver(receiver) => {
                rebind
                    .words(&["let", "_"])
                    .op("=")
                    .op("&")
                    .ident(&receiver.self_token)
                    .op(";");
                outer.tokens(&receiver.tokens);
            }
            Input::Typed(typed) => {
                let cfg = typed.attrs.iter().filter(|attr| attr.cfg);
                for attr in &typed.attrs {
                    outer.tokens(&attr.tokens);
                }
                match &typed.pat {
                    Pattern::Ident { mutability, ident } => {
                        // Same place, same resolution, but marked as generated: otherwise
                        // `let _x = _x;` trips clippy's underscore-binding lints.
                        let mut ident = ident.clone();
                        outer.ident(&ident);
                        ident.set_span(ident.span().resolved_at(Span::call_site()));
                        for attr in cfg {
                            rebind.tokens(&attr.tokens);
                        }
                        rebind.words(&["let"]);
                        // `mut` belongs to the binding inside the block; on the outer
                        // parameter it would be an unused `mut`.
                        if let Some(mutability) = mutability {
                            rebind.ident(mutability);
                            renamed = true;
                        }
                        rebind.ident(&ident).op("=").ident(&ident).op(";");
                    }
                    Pattern::Other { tokens, wild, .. } => {
                        renamed = true;
                        let hidden = Ident::new(&format!("__arg{index}"), Span::mixed_site());
                        outer.ident(&hidden);
                        let cfg: Vec<&Attr> = cfg.collect();
                        for attr in &cfg {
                            rebind.tokens(&attr.tokens);
                        }
                        rebind.words(&["let"]);
                        // `ref mut x` borrows the hidden binding mutably.
                        if contains_ref_mut(tokens) {
                            rebind.words(&["mut"]);
                        }
                        rebind.ident(&hidden).op("=").ident(&hidden).op(";");
                        if !wild {
                            for attr in &cfg {
                                rebind.tokens(&attr.tokens);
                            }
                            rebind
                                .words(&["let"])
                                .tokens(tokens)
                                .op("=")
                                .ident(&hidden)
                                .op(";");
                        }
                    }
                }
                outer.tree(typed.colon.clone()).tokens(&typed.ty);
            }
        }
    }
    let params = if renamed {
        let mut params = Group::new(Delimiter::Parenthesis, outer.finish());
        params.set_span(sig.params.span());
        params
    } else {
        sig.params.clone()
    };
    (params, rebind.into_trees())
}

/// Whether a pattern binds anything by `ref mut`.
fn contains_ref_mut(tokens: &[TokenTree]) -> bool {
    tokens.windows(2).any(|pair| {
        matches!(pair, [TokenTree::Ident(a), TokenTree::Ident(b)] if a == "ref" && b == "mut")
    }) || tokens.iter().any(|token| match token {
        TokenTree::Group(group) => {
            contains_ref_mut(&group.stream().into_iter().collect::<Vec<_>>())
        }
        _ => false,
    })
}
