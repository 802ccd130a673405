//! Stage 2: check the arguments against the function and decide the shape of the expansion.
//!
//! Every check here returns one error, spanned at the tokens at fault, that says what is
//! wrong and what is accepted.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use syn::{Expr, Lit, LitStr, Path, UnOp};

use crate::args::{AdaptiveArg, Args, EXPECTED_LIMIT, Opt};
use crate::item::{Attr, Body, Function, Sig, Tokens};

/// `limit_runtime::Limiter::MAX_LIMIT` (2^31 − 1), which this crate cannot import. The
/// runtime checks the value again, so the two cannot disagree silently, and
/// `tests/first_hour.rs` checks that the largest literal this accepts is the runtime's.
pub(crate) const MAX_LIMIT: u128 = i32::MAX as u128;

/// Everything `expand` needs, already checked.
pub(crate) struct Plan {
    pub(crate) attrs: Vec<Attr>,
    pub(crate) vis: Tokens,
    pub(crate) sig: Sig,
    pub(crate) body: Body,
    pub(crate) source: Source,
    /// `max_wait` and `queue`, when either is set: the call may then fail with a
    /// `LimitError`, returned through the function's `Result`.
    pub(crate) policy: Option<Policy>,
    /// `weight = …`: the call takes that many permits.
    pub(crate) weight: Option<Weight>,
    /// `overloaded = …`: which outputs count as drops for an adaptive limit.
    pub(crate) overloaded: Option<Expr>,
    pub(crate) shape: Shape,
}

impl Plan {
    /// Whether a call may be a sample of an adaptive limit: its own adaptive limiter, or a
    /// limiter given by `limiter = …`, which may be adaptive (known only at run time).
    pub(crate) fn sampled(&self) -> bool {
        !matches!(
            self.source,
            Source::Own {
                limit: OwnLimit::Fixed(_),
                ..
            }
        )
    }
}

/// Where the function's permits come from.
pub(crate) enum Source {
    /// Its own limiter, created in a `static`.
    Own {
        limit: OwnLimit,
        name: Option<LitStr>,
        key: Option<Box<Expr>>,
    },
    /// A `static` `Limiter` named by `limiter = PATH`.
    Shared(Path),
    /// A limiter per instance, `limiter = EXPR`: a `&Limiter` or an `Arc<Limiter>`,
    /// evaluated when the call is made.
    Instance(Expr),
    /// `limiter = arg`, an argument that is a `&Limiter` or an `Arc<Limiter>`: cloned, so that
    /// the body can still use the argument.
    Argument(syn::Ident),
}

/// A function's own limit: fixed (`N`), or adaptive.
pub(crate) enum OwnLimit {
    Fixed(Box<Expr>),
    Adaptive(Box<Bounds>),
}

/// `adaptive(initial = …, min = …, max = …)`: each bound as written, if given.
#[derive(Default)]
pub(crate) struct Bounds {
    pub(crate) initial: Option<Expr>,
    pub(crate) min: Option<Expr>,
    pub(crate) max: Option<Expr>,
}

pub(crate) struct Policy {
    pub(crate) max_wait: Option<Expr>,
    pub(crate) queue: Option<Expr>,
    /// The first of the two options: where an error about the return type is reported.
    pub(crate) span: Span,
}

/// `weight = EXPR`, and what a call too heavy for the limit does.
pub(crate) struct Weight {
    pub(crate) expr: Expr,
    /// The future's output type, when it can be named in the function's body (no
    /// `impl Trait` in it): the runtime then returns `Err(LimitError::TooHeavy)` if it is a
    /// `Result` that can carry one. `None`: a too-heavy call panics where it is made.
    pub(crate) output: Option<Tokens>,
}

pub(crate) enum Shape {
    /// An `async fn`: it becomes a plain `fn` returning `impl Future`.
    AsyncFn,
    /// A `fn` whose body is `Box::pin(async move { … })`, as `#[async_trait]` writes it.
    /// The signature stays; the limit goes around the boxed block.
    BoxedAsyncBlock {
        callee: Tokens,
        async_kw: TokenTree,
        move_kw: TokenTree,
        block: Group,
    },
}

pub(crate) fn validate(args: Args, function: Function) -> syn::Result<Plan> {
    let Function {
        attrs,
        vis,
        sig,
        body,
        semi,
    } = function;
    if let Some(constness) = sig.constness {
        return Err(syn::Error::new(
            constness,
            "#[concurrency_limit] cannot be applied to a `const fn`: \
             only an `async fn` can wait for a permit",
        ));
    }
    let Some(body) = body else {
        return Err(syn::Error::new(
            semi.unwrap_or_else(|| sig.ident.span()),
            "#[concurrency_limit] needs the function's body: put it on the `async fn` in the \
             `impl` block, not on the trait's declaration",
        ));
    };
    let shape = if sig.asyncness {
        Shape::AsyncFn
    } else if let Some((callee, async_kw, move_kw, block)) = body.boxed_async_block() {
        Shape::BoxedAsyncBlock {
            callee,
            async_kw,
            move_kw,
            block,
        }
    } else {
        return Err(syn::Error::new(
            sig.fn_token,
            format!(
                "#[concurrency_limit] can only be applied to an `async fn`; `{}` is not async \
                 (a method of an `#[async_trait]` impl is accepted too)",
                sig.ident
            ),
        ));
    };
    if let Some(output) = &sig.output
        && output.never
    {
        return Err(syn::Error::new_spanned(
            stream(&output.ty),
            "#[concurrency_limit] cannot be applied to an `async fn` returning `!`: the \
             future's `Output = !` needs the unstable never type; return \
             `std::convert::Infallible` instead",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            stream(variadic),
            "#[concurrency_limit] cannot be applied to a variadic function",
        ));
    }
    let overloaded = args.overloaded;
    let source = source(
        args.limit,
        args.adaptive,
        args.limiter,
        args.key,
        args.name,
        &sig,
    )?;
    check_overloaded(overloaded.as_ref(), &source)?;
    let policy = policy(args.max_wait, args.queue, &sig, &shape)?;
    let weight = args.weight.map(|weight| Weight {
        expr: weight.value,
        output: match &sig.output {
            None => Some(vec![TokenTree::Group(Group::new(
                Delimiter::Parenthesis,
                TokenStream::new(),
            ))]),
            Some(_) => output_type(&sig, &shape)
                .filter(|(ty, _)| !mentions_impl_or_infer(ty))
                .map(|(ty, _)| ty.clone()),
        },
    });
    Ok(Plan {
        attrs,
        vis,
        sig,
        body,
        source,
        policy,
        weight,
        overloaded: overloaded.map(|overloaded| overloaded.value),
        shape,
    })
}

/// `overloaded` says which outputs are drops, which only an adaptive limit (its own, or one
/// given by `limiter = …`, which may be) has a use for.
fn check_overloaded(overloaded: Option<&Opt<Expr>>, source: &Source) -> syn::Result<()> {
    if let (
        Some(overloaded),
        Source::Own {
            limit: OwnLimit::Fixed(_),
            ..
        },
    ) = (overloaded, source)
    {
        return Err(syn::Error::new(
            overloaded.key.span(),
            "`overloaded` needs an adaptive limit, which backs off when the downstream says it \
             is overloaded: write `#[concurrency_limit(adaptive, overloaded = …)]`, or use a \
             limiter made by `Limiter::adaptive` with `limiter = …`",
        ));
    }
    Ok(())
}

/// Tokens as one stream, for an error's span or a message.
fn stream(tokens: &[TokenTree]) -> TokenStream {
    tokens.iter().cloned().collect()
}

fn source(
    limit: Option<Expr>,
    adaptive: Option<AdaptiveArg>,
    limiter: Option<Opt<Expr>>,
    key: Option<Opt<Expr>>,
    name: Option<Opt<LitStr>>,
    sig: &Sig,
) -> syn::Result<Source> {
    if let Some(adaptive) = adaptive {
        if let Some(limiter) = &limiter {
            let shown = quote::ToTokens::to_token_stream(&limiter.value);
            return Err(syn::Error::new(
                adaptive.keyword.span(),
                format!(
                    "`adaptive` cannot be combined with `limiter = {shown}`: the limiter decides \
                     whether it adapts; make it with \
                     `Limiter::adaptive(Adaptive::new())` and its calls adapt it"
                ),
            ));
        }
        if let Some(limit) = &limit {
            let shown = quote::ToTokens::to_token_stream(limit);
            return Err(syn::Error::new(
                adaptive.keyword.span(),
                format!(
                    "`adaptive` takes the place of the limit, and `{shown}` is given too: keep \
                     one, `adaptive` for a limit that follows the downstream, or `{shown}` for a \
                     fixed one"
                ),
            ));
        }
        for bound in [&adaptive.initial, &adaptive.min, &adaptive.max]
            .into_iter()
            .flatten()
        {
            check_bound_is_constant(bound, sig)?;
        }
        return Ok(Source::Own {
            limit: OwnLimit::Adaptive(Box::new(adaptive_bounds(adaptive)?)),
            name: name.map(|name| name.value),
            key: key.map(|key| Box::new(key.value)),
        });
    }
    if let Some(limiter) = limiter {
        let shown = quote::ToTokens::to_token_stream(&limiter.value);
        if let Some(limit) = limit {
            return Err(syn::Error::new_spanned(
                limit,
                format!(
                    "a positional limit cannot be combined with `limiter = {shown}`: the \
                     limiter has its own limit, set by `Limiter::new`"
                ),
            ));
        }
        if let Some(key) = key {
            return Err(syn::Error::new(
                key.key.span(),
                format!(
                    "`key` cannot be combined with `limiter = {shown}`: a limiter given by \
                     `limiter` has one limit for all its callers; for a limit per key, give the \
                     function its own, as in `#[concurrency_limit(2, key = …)]`"
                ),
            ));
        }
        if let Some(name) = name {
            return Err(syn::Error::new(
                name.key.span(),
                format!(
                    "`name` cannot be combined with `limiter = {shown}`: the limiter has its \
                     own name; set it with `Limiter::new(…).with_name(\"…\")`"
                ),
            ));
        }
        return limiter_source(limiter.value, sig);
    }
    let Some(limit) = limit else {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("missing concurrency limit; {EXPECTED_LIMIT}"),
        ));
    };
    check_limit(&limit)?;
    check_limit_is_per_function(&limit, sig)?;
    Ok(Source::Own {
        limit: OwnLimit::Fixed(Box::new(limit)),
        name: name.map(|name| name.value),
        key: key.map(|key| Box::new(key.value)),
    })
}

/// `adaptive(…)`'s bounds, checked as far as literals allow: each must be a positive
/// integer (`min` at least 1), `min <= max`, and `initial` within `[min, max]`, where a bound
/// not given takes its default (`Adaptive`'s: `min` 1, `max` 1000 or `min` if higher). Bounds
/// that are expressions are checked when the limiter is made, by `Adaptive`, which panics
/// (a compile-time error in the function's `static`).
fn adaptive_bounds(adaptive: AdaptiveArg) -> syn::Result<Bounds> {
    let (initial, min, max) = (
        literal_bound(adaptive.initial.as_ref())?,
        literal_bound(adaptive.min.as_ref())?,
        literal_bound(adaptive.max.as_ref())?,
    );
    if let Some((0, expr)) = min {
        return Err(syn::Error::new_spanned(
            expr,
            "`min` of `adaptive` must be at least 1: a limit of 0 would never let a call run",
        ));
    }
    if let (Some((0, expr)), _) | (_, Some((0, expr))) = (max, initial) {
        return Err(syn::Error::new_spanned(
            expr,
            "an adaptive limit never goes to 0: `max` and `initial` must be at least 1",
        ));
    }
    if let (Some((min, min_expr)), Some((max, _))) = (min, max)
        && min > max
    {
        return Err(syn::Error::new_spanned(
            min_expr,
            format!("`min = {min}` of `adaptive` is above its `max = {max}`"),
        ));
    }
    // The bounds `initial` must be within: those given, and the defaults for the others
    // (`Adaptive::resolve`'s table), when what they depend on is a literal.
    let known_min = match (&adaptive.min, min) {
        (None, _) => Some(1),
        (Some(_), Some((min, _))) => Some(min),
        (Some(_), None) => None,
    };
    let known_max = match (&adaptive.max, max) {
        (None, _) => known_min.map(|min| min.max(1000)),
        (Some(_), Some((max, _))) => Some(max),
        (Some(_), None) => None,
    };
    if let Some((initial, expr)) = initial {
        let below = known_min.filter(|&min| initial < min);
        let above = known_max.filter(|&max| initial > max);
        if below.is_some() || above.is_some() {
            let show = |bound: Option<u128>, given: bool, default: &str| match bound {
                Some(value) if given => value.to_string(),
                Some(value) => format!("{value} ({default})"),
                None => "?".to_owned(),
            };
            return Err(syn::Error::new_spanned(
                expr,
                format!(
                    "`initial = {initial}` of `adaptive` is outside [min, max] = [{}, {}]: \
                     an adaptive limit starts within its bounds",
                    show(known_min, adaptive.min.is_some(), "the default"),
                    show(known_max, adaptive.max.is_some(), "the default"),
                ),
            ));
        }
    }
    Ok(Bounds {
        initial: adaptive.initial.map(|bound| bound.value),
        min: adaptive.min.map(|bound| bound.value),
        max: adaptive.max.map(|bound| bound.value),
    })
}

/// A bound of `adaptive(…)` that is an integer literal: its value; `None` for an expression
/// (or a bound not given). Any other literal, or a negative one, is an error.
fn literal_bound(bound: Option<&Opt<Expr>>) -> syn::Result<Option<(u128, &Expr)>> {
    let Some(bound) = bound else {
        return Ok(None);
    };
    let expected = format!(
        "expected a positive integer such as `{} = 8`, or an expression of type `usize`",
        bound.key
    );
    match unparenthesized(&bound.value) {
        Expr::Lit(literal) => match &literal.lit {
            Lit::Int(int) if matches!(int.suffix(), "" | "usize") => {
                let value = int.base10_parse::<u128>().unwrap_or(u128::MAX);
                if value > MAX_LIMIT {
                    return Err(syn::Error::new_spanned(
                        int,
                        format!(
                            "`{}` of `adaptive` is too large: the maximum is {MAX_LIMIT} \
                             (`Limiter::MAX_LIMIT`)",
                            bound.key
                        ),
                    ));
                }
                Ok(Some((value, &bound.value)))
            }
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{}` cannot be {}; {expected}", bound.key, describe(other)),
            )),
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => Err(syn::Error::new_spanned(
            unary,
            format!("`{}` cannot be negative; {expected}", bound.key),
        )),
        _ => Ok(None),
    }
}

/// What `limiter = …` names: the path of a `static` (today's zero-sized handle), or an
/// expression evaluated at each call. A single identifier that names an argument is an
/// expression.
fn limiter_source(limiter: Expr, sig: &Sig) -> syn::Result<Source> {
    let expected = "expected the path of a `static` limiter (`limiter = DATABASE`), a \
                    `&Limiter` (`limiter = &self.connections`) or an `Arc<Limiter>` \
                    (`limiter = self.limits.clone()`)";
    match unparenthesized(&limiter) {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            return Ok(match path.path.get_ident() {
                Some(ident) if sig.bindings().any(|(arg, _)| arg == ident) => {
                    Source::Argument(ident.clone())
                }
                Some(ident) if ident == "self" => Source::Instance(limiter.clone()),
                _ => Source::Shared(path.path.clone()),
            });
        }
        Expr::Lit(literal) => {
            return Err(syn::Error::new_spanned(
                literal,
                format!("`limiter` cannot be a literal; {expected}"),
            ));
        }
        Expr::Reference(reference) => check_borrow(reference, sig)?,
        _ => {}
    }
    Ok(Source::Instance(limiter))
}

/// A borrowed limiter lives as long as the call's future, which also holds the receiver or
/// argument it is borrowed from. Only a shared borrow (`&self`, or an argument that is a
/// `&T`) can lend it; anything else would be moved into the future while borrowed.
fn check_borrow(reference: &syn::ExprReference, sig: &Sig) -> syn::Result<()> {
    let borrowed = quote::ToTokens::to_token_stream(&reference.expr);
    if mentions(&borrowed, &|ident| ident == "self") {
        if let Some(receiver) = sig.receiver()
            && !receiver.lends
        {
            let receiver = stream(&receiver.tokens);
            return Err(syn::Error::new_spanned(
                reference,
                format!(
                    "a borrowed limiter needs a `&self` receiver, and `{}` takes `{receiver}`: \
                     its future holds `self`, so it cannot also hold a borrow of it; keep the \
                     limiter in an `Arc<Limiter>` and clone it: `limiter = self.limits.clone()`",
                    sig.ident
                ),
            ));
        }
        return Ok(());
    }
    for (ident, typed) in sig.bindings() {
        if !typed.shared_ref && mentions(&borrowed, &|found| found == ident) {
            return Err(syn::Error::new_spanned(
                reference,
                format!(
                    "a borrowed limiter must come from `&self` or from an argument that is a \
                     shared reference, and `{ident}` is a `{}`: the call's future owns it, so it \
                     cannot also hold a borrow of it; pass a `&Limiter`, or an \
                     `Arc<Limiter>` (`limiter = {borrowed}.clone()`)",
                    stream(&typed.ty),
                ),
            ));
        }
    }
    Ok(())
}

/// A bound of `adaptive(…)` is part of the function's limiter, a `static`: a constant, so
/// one that reads `self` or an argument is an error here rather than rustc's about `static`s.
fn check_bound_is_constant(bound: &Opt<Expr>, sig: &Sig) -> syn::Result<()> {
    let Some(found) = reads_self_or_argument(&bound.value, sig) else {
        return Ok(());
    };
    Err(syn::Error::new(
        found.span(),
        format!(
            "`{}` of `adaptive` cannot depend on `{found}`: the bounds are constants, part of \
             the function's limiter (a `static`); for bounds per instance, give each instance \
             a `Limiter::adaptive(Adaptive::new()…)` and write `limiter = &self.limiter`",
            bound.key
        ),
    ))
}

/// A function's own limit is evaluated once, at its first call, for every instance and
/// every argument; a limit that reads `self` or an argument would apply the first call's
/// value to all. (The limit's closure must also coerce to `fn() -> usize`, which catches a
/// capture hidden in a macro.)
fn check_limit_is_per_function(limit: &Expr, sig: &Sig) -> syn::Result<()> {
    let Some(found) = reads_self_or_argument(limit, sig) else {
        return Ok(());
    };
    Err(syn::Error::new(
        found.span(),
        format!(
            "the concurrency limit cannot depend on `{found}`: it is evaluated once, at the \
             first call of `{}`, and then applies to every call; for a limit per instance, \
             give each instance a `Limiter` and write `limiter = &self.connections` (or \
             `limiter = self.limits.clone()` for an `Arc<Limiter>`)",
            sig.ident
        ),
    ))
}

/// `self` or an argument of `sig`, if `expr` reads one: what a value evaluated once per
/// function (its limit, its bounds) cannot depend on.
fn reads_self_or_argument(expr: &Expr, sig: &Sig) -> Option<proc_macro2::Ident> {
    let tokens = quote::ToTokens::to_token_stream(expr);
    find_ident(&tokens, &|ident| {
        ident == "self" || sig.bindings().any(|(arg, _)| arg == ident)
    })
}

fn mentions(tokens: &TokenStream, matches: &dyn Fn(&proc_macro2::Ident) -> bool) -> bool {
    find_ident(tokens, matches).is_some()
}

/// The first identifier in `tokens` that `matches` and is used as a value: not a path's
/// later segment (`a::b`), a module (`b::c`), a field (`.b`) or a macro's name (`b!`).
fn find_ident(
    tokens: &TokenStream,
    matches: &dyn Fn(&proc_macro2::Ident) -> bool,
) -> Option<proc_macro2::Ident> {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Ident(ident) if matches(ident) => {
                let after_dot_or_path = index > 0
                    && matches!(&tokens[index - 1], TokenTree::Punct(p) if p.as_char() == '.' || p.as_char() == ':');
                let before_path_or_bang = matches!(
                    tokens.get(index + 1),
                    Some(TokenTree::Punct(p)) if (p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint) || p.as_char() == '!'
                );
                if ident == "self" || !(after_dot_or_path || before_path_or_bang) {
                    return Some(ident.clone());
                }
            }
            TokenTree::Group(group) => {
                if let Some(found) = find_ident(&group.stream(), matches) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

fn policy(
    max_wait: Option<Opt<Expr>>,
    queue: Option<Opt<Expr>>,
    sig: &Sig,
    shape: &Shape,
) -> syn::Result<Option<Policy>> {
    // A function that returns nothing cannot return the error; any other return type is left
    // to the type system, which accepts every `Result<T, E>` with `E: From<LimitError>`,
    // however it is spelled (an alias, a re-export), and reports anything else at the option.
    for option in [&max_wait, &queue].into_iter().flatten() {
        if output_type(sig, shape).is_none_or(|(_, unit)| unit) {
            return Err(syn::Error::new(
                option.key.span(),
                format!(
                    "`{}` needs a function that returns `Result<T, E>` with \
                     `E: From<LimitError>`, so that a call refused a permit can return an error; \
                     `{}` returns `()`",
                    option.key, sig.ident
                ),
            ));
        }
    }
    if let Some(queue) = &queue {
        check_queue(&queue.value)?;
    }
    if max_wait.is_none() && queue.is_none() {
        return Ok(None);
    }
    let span = [&max_wait, &queue]
        .into_iter()
        .flatten()
        .map(|option| option.key.span())
        .next()
        .unwrap_or_else(Span::call_site);
    Ok(Some(Policy {
        max_wait: max_wait.map(|option| option.value),
        queue: queue.map(|option| option.value),
        span,
    }))
}

/// What the function's future resolves to, and whether it is `()`: the declared return type
/// of an `async fn`, or the `Output = …` of the boxed future an `#[async_trait]` method
/// returns.
fn output_type<'a>(sig: &'a Sig, shape: &Shape) -> Option<(&'a Tokens, bool)> {
    let output = sig.output.as_ref()?;
    match shape {
        Shape::AsyncFn => Some((&output.ty, output.unit)),
        Shape::BoxedAsyncBlock { .. } => output.resolves_to.as_ref().map(|(ty, unit)| (ty, *unit)),
    }
}

/// Whether a type's tokens contain `impl` or `_`, which cannot be named in an expression.
fn mentions_impl_or_infer(tokens: &[TokenTree]) -> bool {
    tokens.iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl" || ident == "_",
        TokenTree::Group(group) => {
            mentions_impl_or_infer(&group.stream().into_iter().collect::<Vec<_>>())
        }
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// `queue = 0` is fine (nobody may wait); a negative or non-integer literal is not.
fn check_queue(queue: &Expr) -> syn::Result<()> {
    let expected = "expected the most calls that may wait at once: an integer literal such as \
                    `queue = 100` (0 means no call may wait), or an expression of type `usize`";
    match unparenthesized(queue) {
        Expr::Lit(literal) => match &literal.lit {
            Lit::Int(int) if matches!(int.suffix(), "" | "usize") => Ok(()),
            other => Err(syn::Error::new_spanned(
                other,
                format!("`queue` cannot be {}; {expected}", describe(other)),
            )),
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => Err(syn::Error::new_spanned(
            unary,
            format!("`queue` cannot be negative; {expected}"),
        )),
        _ => Ok(()),
    }
}

/// Rejects limits that are wrong whatever their context: literals that are not positive
/// `usize` integers. Any other expression is left to the type checker (it must be a
/// `usize`) and to the run-time check of its value.
fn check_limit(limit: &Expr) -> syn::Result<()> {
    match unparenthesized(limit) {
        Expr::Lit(literal) => match &literal.lit {
            Lit::Int(int) => {
                let suffix = int.suffix();
                if !matches!(suffix, "" | "usize") {
                    return Err(syn::Error::new_spanned(
                        int,
                        format!(
                            "the concurrency limit is a `usize`, but `{int}` is a `{suffix}`; \
                             write `{}`",
                            int.base10_digits()
                        ),
                    ));
                }
                match int.base10_parse::<u128>() {
                    Ok(0) => Err(syn::Error::new_spanned(
                        int,
                        "the concurrency limit must be at least 1: \
                         a limit of 0 would never let a call run",
                    )),
                    Ok(value) if value <= MAX_LIMIT => Ok(()),
                    _ => Err(syn::Error::new_spanned(
                        int,
                        format!(
                            "the concurrency limit `{int}` is too large: the maximum is \
                             {MAX_LIMIT} (`Limiter::MAX_LIMIT`)"
                        ),
                    )),
                }
            }
            other => Err(syn::Error::new_spanned(
                other,
                format!(
                    "the concurrency limit cannot be {}; {EXPECTED_LIMIT}",
                    describe(other)
                ),
            )),
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            if let Expr::Lit(_) = unparenthesized(&unary.expr) {
                Err(syn::Error::new_spanned(
                    unary,
                    format!(
                        "the concurrency limit must be a positive integer, found `-{}`",
                        quote::ToTokens::to_token_stream(&unary.expr)
                    ),
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

fn unparenthesized(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(paren) => unparenthesized(&paren.expr),
        Expr::Group(group) => unparenthesized(&group.expr),
        other => other,
    }
}

fn describe(lit: &Lit) -> &'static str {
    match lit {
        Lit::Str(_) => "a string literal",
        Lit::ByteStr(_) => "a byte string literal",
        Lit::CStr(_) => "a C string literal",
        Lit::Byte(_) => "a byte literal",
        Lit::Char(_) => "a character literal",
        Lit::Float(_) => "a floating-point literal",
        Lit::Int(_) => "an integer literal of a type other than `usize`",
        Lit::Bool(_) => "a boolean literal",
        _ => "a literal that is not an integer",
    }
}
