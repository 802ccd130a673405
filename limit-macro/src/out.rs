//! [`Out`]: the expansion's token writer. The expansion is written tree by tree into one
//! vector per group rather than with `quote!`: in a proc macro every token stream is a handle
//! into the compiler, and each `quote!` fragment spliced into another costs a round trip over
//! the proc-macro bridge (measured by `scripts/compile_cost.sh`, where that was most of what
//! writing the expansion cost).

use proc_macro2::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// The trees of one group of the expansion (or of its top level), in order.
pub(crate) struct Out {
    trees: Vec<TokenTree>,
    /// The span of the tokens written without one: `Span::call_site()`, or the span given to
    /// [`Out::spanned`].
    span: Span,
    /// Whether `span` is the call site, which new tokens have already.
    at_call_site: bool,
}

impl Out {
    pub(crate) fn new() -> Self {
        Out {
            trees: Vec::with_capacity(32),
            span: Span::call_site(),
            at_call_site: true,
        }
    }

    /// Identifiers, each spanned at the call site (or at this block's span).
    pub(crate) fn words(&mut self, words: &[&str]) -> &mut Self {
        for word in words {
            self.trees
                .push(TokenTree::Ident(Ident::new(word, self.span)));
        }
        self
    }

    pub(crate) fn ident(&mut self, ident: &Ident) -> &mut Self {
        self.trees.push(TokenTree::Ident(ident.clone()));
        self
    }

    pub(crate) fn punct(&mut self, ch: char, spacing: Spacing) {
        let mut punct = Punct::new(ch, spacing);
        if !self.at_call_site {
            punct.set_span(self.span);
        }
        self.trees.push(TokenTree::Punct(punct));
    }

    /// Punctuation, such as `;` or `::` or `=>`: every character but the last joint.
    pub(crate) fn op(&mut self, op: &str) -> &mut Self {
        let bytes = op.as_bytes();
        for (index, &byte) in bytes.iter().enumerate() {
            let spacing = if index + 1 < bytes.len() {
                Spacing::Joint
            } else {
                Spacing::Alone
            };
            self.punct(char::from(byte), spacing);
        }
        self
    }

    /// `::a::b::c`.
    pub(crate) fn path(&mut self, segments: &[&str]) -> &mut Self {
        for segment in segments {
            self.punct(':', Spacing::Joint);
            self.punct(':', Spacing::Alone);
            self.trees
                .push(TokenTree::Ident(Ident::new(segment, self.span)));
        }
        self
    }

    /// `::limit_runtime::__private::a::b`.
    pub(crate) fn private(&mut self, segments: &[&str]) -> &mut Self {
        self.path(&["limit_runtime", "__private"]).path(segments)
    }

    pub(crate) fn tokens(&mut self, tokens: &[TokenTree]) -> &mut Self {
        self.trees.extend_from_slice(tokens);
        self
    }

    pub(crate) fn stream(&mut self, stream: TokenStream) -> &mut Self {
        self.trees.extend(stream);
        self
    }

    pub(crate) fn tree(&mut self, tree: impl Into<TokenTree>) -> &mut Self {
        self.trees.push(tree.into());
        self
    }

    /// A group at this block's span, its contents written by `contents`.
    pub(crate) fn group(
        &mut self,
        delimiter: Delimiter,
        contents: impl FnOnce(&mut Out),
    ) -> &mut Self {
        let mut inner = Out {
            trees: Vec::with_capacity(16),
            span: self.span,
            at_call_site: self.at_call_site,
        };
        contents(&mut inner);
        let mut group = Group::new(delimiter, inner.finish());
        if !self.at_call_site {
            group.set_span(self.span);
        }
        self.trees.push(TokenTree::Group(group));
        self
    }

    pub(crate) fn parens(&mut self, contents: impl FnOnce(&mut Out)) -> &mut Self {
        self.group(Delimiter::Parenthesis, contents)
    }

    pub(crate) fn braces(&mut self, contents: impl FnOnce(&mut Out)) -> &mut Self {
        self.group(Delimiter::Brace, contents)
    }

    /// `#[…]`, its contents written by `contents`.
    pub(crate) fn attr(&mut self, contents: impl FnOnce(&mut Out)) -> &mut Self {
        self.punct('#', Spacing::Alone);
        self.group(Delimiter::Bracket, contents)
    }

    /// Writes `contents` at `span` (as `quote_spanned!` would).
    pub(crate) fn spanned(&mut self, span: Span, contents: impl FnOnce(&mut Out)) -> &mut Self {
        let outer = (self.span, self.at_call_site);
        (self.span, self.at_call_site) = (span, false);
        contents(self);
        (self.span, self.at_call_site) = outer;
        self
    }

    /// The trees written, as they are.
    pub(crate) fn into_trees(self) -> Vec<TokenTree> {
        self.trees
    }

    pub(crate) fn finish(self) -> TokenStream {
        self.trees.into_iter().collect()
    }
}

pub(crate) fn mixed_site(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}
