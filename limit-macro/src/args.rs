//! Stage 1: parse the attribute's arguments, `(LIMIT, option = value, …)`.
//!
//! This stage only reads syntax. What the values mean is checked in `validate`.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Expr, Ident, LitStr, Token};

/// The options accepted after the limit, for the "expected one of" message.
pub(crate) const OPTIONS: &[&str] = &["name"];

/// What a limit may be, for the messages that reject one.
pub(crate) const EXPECTED_LIMIT: &str = "expected a positive integer literal such as \
     `#[concurrency_limit(5)]`, or an expression of type `usize` such as \
     `#[concurrency_limit(MAX_JOBS)]`";

/// The arguments as written.
pub(crate) struct Args {
    /// The positional limit, if one was given.
    pub(crate) limit: Option<Expr>,
    /// `name = "…"`.
    pub(crate) name: Option<LitStr>,
}

pub(crate) fn parse(args: TokenStream) -> syn::Result<Args> {
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
        let mut args = Args {
            limit: None,
            name: None,
        };
        loop {
            if is_option(input) {
                args.parse_option(input)?;
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

/// `ident = …` starts an option; anything else is the limit expression.
fn is_option(input: ParseStream<'_>) -> bool {
    input.peek(Ident::peek_any) && input.peek2(Token![=]) && !input.peek2(Token![==])
}

impl Args {
    fn parse_option(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let key = input.call(Ident::parse_any)?;
        input.parse::<Token![=]>()?;
        match key.to_string().as_str() {
            "name" => {
                let value: LitStr = input.parse()?;
                set_once(&mut self.name, value, &key)
            }
            _ => Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{key}`; expected one of: {}",
                    OPTIONS
                        .iter()
                        .map(|option| format!("`{option}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            )),
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is set more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}
