//! Stage 2: check the arguments against the function and decide the shape of the expansion.
//!
//! Every check here returns one error, spanned at the tokens at fault, that says what is
//! wrong and what is accepted.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Lit, LitStr, ReturnType, Signature, Type, UnOp, Visibility};

use crate::args::{Args, EXPECTED_LIMIT};
use crate::item::{Body, Function};

/// tokio's `Semaphore::MAX_PERMITS` on a 64-bit target. A smaller target still checks the
/// value at run time.
const MAX_LIMIT: u128 = (u64::MAX >> 3) as u128;

/// Everything `expand` needs, already checked.
pub(crate) struct Plan {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Body,
    pub(crate) limit: Expr,
    pub(crate) name: Option<LitStr>,
    pub(crate) shape: Shape,
}

pub(crate) enum Shape {
    /// An `async fn`: it becomes a plain `fn` returning `impl Future`.
    AsyncFn,
    /// A `fn` whose body is `Box::pin(async move { … })`, as `#[async_trait]` writes it.
    /// The signature stays; the limit goes around the boxed block.
    BoxedAsyncBlock {
        callee: TokenStream,
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
            constness.span,
            "#[concurrency_limit] cannot be applied to a `const fn`: \
             only an `async fn` can wait for a permit",
        ));
    }
    let Some(body) = body else {
        let span = semi.map_or_else(|| sig.span(), |semi| semi.span);
        return Err(syn::Error::new(
            span,
            "#[concurrency_limit] needs the function's body: put it on the `async fn` in the \
             `impl` block, not on the trait's declaration",
        ));
    };
    let shape = if sig.asyncness.is_some() {
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
            sig.fn_token.span,
            format!(
                "#[concurrency_limit] can only be applied to an `async fn`; `{}` is not async \
                 (a method of an `#[async_trait]` impl is accepted too)",
                sig.ident
            ),
        ));
    };
    if let ReturnType::Type(_, ty) = &sig.output
        && let Type::Never(never) = &**ty
    {
        return Err(syn::Error::new_spanned(
            never,
            "#[concurrency_limit] cannot be applied to an `async fn` returning `!`: the \
             future's `Output = !` needs the unstable never type; return \
             `std::convert::Infallible` instead",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "#[concurrency_limit] cannot be applied to a variadic function",
        ));
    }
    let Some(limit) = args.limit else {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("missing concurrency limit; {EXPECTED_LIMIT}"),
        ));
    };
    check_limit(&limit)?;
    Ok(Plan {
        attrs,
        vis,
        sig,
        body,
        limit,
        name: args.name,
        shape,
    })
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
                             {MAX_LIMIT} (tokio's `Semaphore::MAX_PERMITS`)"
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
        Lit::Bool(_) => "a boolean literal",
        _ => "a literal that is not an integer",
    }
}
