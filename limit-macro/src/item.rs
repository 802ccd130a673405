//! Stage 0: read the annotated item. The signature is parsed fully; the body is kept as
//! tokens, because the expansion never needs to look inside it (tokio-macros does the same
//! to keep compile times down).

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream, Parser};
use syn::{Attribute, Signature, Token, Visibility, braced};

/// A function item, or a function declaration without a body (in a trait).
pub(crate) struct Function {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `None` for a declaration ending in `;`.
    pub(crate) body: Option<Body>,
    /// The `;` of a declaration, for the error that points at it.
    pub(crate) semi: Option<Token![;]>,
}

pub(crate) struct Body {
    pub(crate) brace_span: Span,
    /// `#![…]` attributes at the top of the body; they go back at the top of the new body.
    pub(crate) inner_attrs: Vec<Attribute>,
    pub(crate) stmts: TokenStream,
}

impl Body {
    /// The body again as a block. The braces keep their place in the user's file, for
    /// diagnostics, but belong to the expansion: nested in our `async move` block, a body
    /// such as `{ x }` would otherwise trip `unused_braces`.
    pub(crate) fn block(&self) -> Group {
        let mut group = Group::new(Delimiter::Brace, self.stmts.clone());
        group.set_span(self.brace_span.resolved_at(Span::mixed_site()));
        group
    }

    /// Recognises `PATH::Box::pin(async move { … })`, the whole body of a method after
    /// `#[async_trait]` has rewritten it. Returns the tokens before the call's parentheses
    /// and the block of the `async move`.
    pub(crate) fn boxed_async_block(&self) -> Option<(TokenStream, TokenTree, TokenTree, Group)> {
        let tokens: Vec<TokenTree> = self.stmts.clone().into_iter().collect();
        let (TokenTree::Group(call_args), callee) = tokens.split_last()? else {
            return None;
        };
        if call_args.delimiter() != Delimiter::Parenthesis || !is_box_pin_path(callee) {
            return None;
        }
        let inner: Vec<TokenTree> = call_args.stream().into_iter().collect();
        let [
            async_kw @ TokenTree::Ident(a),
            move_kw @ TokenTree::Ident(m),
            TokenTree::Group(block),
        ] = inner.as_slice()
        else {
            return None;
        };
        if a != "async" || m != "move" || block.delimiter() != Delimiter::Brace {
            return None;
        }
        Some((
            callee.iter().cloned().collect(),
            async_kw.clone(),
            move_kw.clone(),
            block.clone(),
        ))
    }
}

/// `Box::pin`, `::std::boxed::Box::pin`, and so on: identifiers and `::` ending in `Box::pin`.
fn is_box_pin_path(tokens: &[TokenTree]) -> bool {
    let idents: Vec<String> = tokens
        .iter()
        .filter_map(|token| match token {
            TokenTree::Ident(ident) => Some(ident.to_string()),
            _ => None,
        })
        .collect();
    let only_path = tokens.iter().all(|token| match token {
        TokenTree::Ident(_) => true,
        TokenTree::Punct(punct) => punct.as_char() == ':',
        _ => false,
    });
    only_path && idents.ends_with(&["Box".to_owned(), "pin".to_owned()])
}

pub(crate) fn parse(item: TokenStream) -> syn::Result<Function> {
    Function::parse.parse2(item)
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        // One parse, not a trial on a fork first: parsing the signature is most of what the
        // attribute costs the compiler. On failure, the error points at where it started.
        let start = input.cursor().token_tree().map(|(token, _)| token.span());
        let Ok(sig) = input.parse::<Signature>() else {
            return Err(not_a_function(start));
        };
        if input.peek(Token![;]) {
            let semi = input.parse()?;
            return Ok(Self {
                attrs,
                vis,
                sig,
                body: None,
                semi: Some(semi),
            });
        }
        let content;
        let brace = braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let stmts: TokenStream = content.parse()?;
        Ok(Self {
            attrs,
            vis,
            sig,
            body: Some(Body {
                brace_span: brace.span.join(),
                inner_attrs,
                stmts,
            }),
            semi: None,
        })
    }
}

fn not_a_function(start: Option<Span>) -> syn::Error {
    syn::Error::new(
        start.unwrap_or_else(Span::call_site),
        "#[concurrency_limit] can only be applied to an `async fn`",
    )
}
