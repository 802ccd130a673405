//! Stage 1: parse the attribute's arguments, `(LIMIT, option = value, …)`.
//!
//! This stage only reads syntax and rejects repeats. What the values mean, and which
//! combinations make sense, is checked in `validate`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// The options accepted after the limit, for the "expected one of" message.
pub(crate) const OPTIONS: &[&str] = &[
    "limiter",
    "max_wait",
    "queue",
    "key",
    "weight",
    "name",
    "overloaded",
];

/// The parameters of `adaptive(…)`, for the "expected one of" message.
pub(crate) const ADAPTIVE_PARAMS: &[&str] = &["initial", "min", "max"];

/// What a limit may be, for the messages that reject one.
pub(crate) const EXPECTED_LIMIT: &str = "expected a positive integer literal such as \
     `#[concurrency_limit(5)]`, an expression of type `usize` such as \
     `#[concurrency_limit(MAX_JOBS)]`, an adaptive limit such as \
     `#[concurrency_limit(adaptive)]`, or a shared limiter such as \
     `#[concurrency_limit(limiter = DATABASE)]`";

/// An option's value, with the option's name for error spans.
pub(crate) struct Opt<T> {
    pub(crate) key: Ident,
    pub(crate) value: T,
}

/// `adaptive`, or `adaptive(initial = …, min = …, max = …)`, each bound optional.
pub(crate) struct AdaptiveArg {
    /// The `adaptive` keyword, for error spans.
    pub(crate) keyword: Ident,
    pub(crate) initial: Option<Opt<Expr>>,
    pub(crate) min: Option<Opt<Expr>>,
    pub(crate) max: Option<Opt<Expr>>,
}

/// The arguments as written.
#[derive(Default)]
pub(crate) struct Args {
    /// The positional limit, if one was given.
    pub(crate) limit: Option<Expr>,
    /// A `static`'s path, or an expression: `&self.connections`, `self.limits.clone()`.
    pub(crate) limiter: Option<Opt<Expr>>,
    pub(crate) max_wait: Option<Opt<Expr>>,
    pub(crate) queue: Option<Opt<Expr>>,
    pub(crate) key: Option<Opt<Expr>>,
    pub(crate) weight: Option<Opt<Expr>>,
    pub(crate) name: Option<Opt<LitStr>>,
    /// `adaptive` in the place of the limit.
    pub(crate) adaptive: Option<AdaptiveArg>,
    /// `overloaded = EXPR`: which outputs mean the downstream is overloaded.
    pub(crate) overloaded: Option<Opt<Expr>>,
}

pub(crate) fn parse(args: TokenStream) -> syn::Result<Args> {
    // The most common arguments, `(5)`, without syn's expression parser: what it makes of a
    // lone integer literal.
    let mut tokens = args.clone().into_iter();
    if let (Some(TokenTree::Literal(literal)), None) = (tokens.next(), tokens.next())
        && let lit @ Lit::Int(_) = Lit::new(literal)
    {
        return Ok(Args {
            limit: Some(Expr::Lit(ExprLit {
                attrs: Vec::new(),
                lit,
            })),
            ..Args::default()
        });
    }
    if args.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("missing concurrency limit; {EXPECTED_LIMIT}"),
        ));
    }
    Args::parse.parse2(args)
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        loop {
            if is_option(input) {
                args.parse_option(input)?;
            } else if is_adaptive(input) {
                let adaptive = input.parse::<AdaptiveArg>()?;
                if args.adaptive.is_some() {
                    return Err(syn::Error::new(
                        adaptive.keyword.span(),
                        "`adaptive` is given more than once",
                    ));
                }
                args.adaptive = Some(adaptive);
            } else {
                let limit: Expr = input.parse()?;
                if args.limit.is_some() {
                    return Err(syn::Error::new_spanned(
                        limit,
                        "the concurrency limit is given more than once; \
                         expected exactly one limit, such as `#[concurrency_limit(5)]`",
                    ));
                }
                args.limit = Some(limit);
            }
            if input.is_empty() {
                return Ok(args);
            }
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                return Ok(args);
            }
        }
    }
}

/// `adaptive`, alone or with its parameters in parentheses, in the place of the limit.
fn is_adaptive(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    fork.call(Ident::parse_any)
        .is_ok_and(|ident| ident == "adaptive")
        && (fork.is_empty() || fork.peek(Token![,]) || fork.peek(syn::token::Paren))
}

impl Parse for AdaptiveArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let keyword = input.call(Ident::parse_any)?;
        let mut adaptive = AdaptiveArg {
            keyword,
            initial: None,
            min: None,
            max: None,
        };
        if !input.peek(syn::token::Paren) {
            return Ok(adaptive);
        }
        let content;
        syn::parenthesized!(content in input);
        while !content.is_empty() {
            let key = content.call(Ident::parse_any).map_err(|error| {
                syn::Error::new(
                    error.span(),
                    format!(
                        "`adaptive` takes named bounds: expected one of {}, as in \
                         `adaptive(max = 64)`",
                        quoted(ADAPTIVE_PARAMS)
                    ),
                )
            })?;
            let slot = match key.to_string().as_str() {
                "initial" => &mut adaptive.initial,
                "min" => &mut adaptive.min,
                "max" => &mut adaptive.max,
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown parameter `{key}` of `adaptive`; expected one of: {}",
                            quoted(ADAPTIVE_PARAMS)
                        ),
                    ));
                }
            };
            content.parse::<Token![=]>()?;
            set_once(slot, key, content.parse()?)?;
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(adaptive)
    }
}

/// `` `a`, `b` ``: names for an "expected one of" message.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ident = …` starts an option; anything else is the limit expression.
fn is_option(input: ParseStream<'_>) -> bool {
    input.peek(Ident::peek_any) && input.peek2(Token![=]) && !input.peek2(Token![==])
}

impl Args {
    fn parse_option(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let key = input.call(Ident::parse_any)?;
        input.parse::<Token![=]>()?;
        match key.to_string().as_str() {
            "adaptive" => Err(syn::Error::new(
                key.span(),
                "`adaptive` is not an option with a value: write it in the place of the limit, \
                 with its bounds in parentheses, as in `#[concurrency_limit(adaptive(initial = 5))]`",
            )),
            "limiter" => set_once(&mut self.limiter, key, input.parse()?),
            "max_wait" => set_once(&mut self.max_wait, key, input.parse()?),
            "queue" => set_once(&mut self.queue, key, input.parse()?),
            "key" => set_once(&mut self.key, key, input.parse()?),
            "weight" => set_once(&mut self.weight, key, input.parse()?),
            "name" => set_once(&mut self.name, key, input.parse()?),
            "overloaded" => set_once(&mut self.overloaded, key, input.parse()?),
            _ => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{key}`; expected one of: {}",
                    quoted(OPTIONS)
                ),
            )),
        }
    }
}

fn set_once<T>(slot: &mut Option<Opt<T>>, key: Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is set more than once"),
        ));
    }
    *slot = Some(Opt { key, value });
    Ok(())
}
