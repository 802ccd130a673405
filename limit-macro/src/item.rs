//! Stage 0: read the annotated item into [`Function`], the pieces of it that the later stages
//! look at and copy into the expansion, kept as the tokens they were written with. The body
//! is kept as tokens, unparsed: the expansion only needs to know whether it contains `return`
//! (tokio-macros does the same to keep compile times down).
//!
//! Two readers fill in the same [`Function`]. `scan.rs` reads the common shapes of an
//! `async fn` straight from the tokens, without syn, and gives up on anything else; this
//! file's [`parse`] reads every item with syn (whose signature parser is most of what the
//! attribute would otherwise cost the compiler), and is the reference: what it rejects, and
//! every error message, is the attribute's.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, FnArg, GenericArgument, Pat, PatIdent, Path, PathArguments, ReturnType, Signature,
    Token, Type, TypeParamBound, Visibility, braced,
};

/// A piece of the item, as the trees it was written with.
pub(crate) type Tokens = Vec<TokenTree>;

/// A function item, or a function declaration without a body (in a trait).
pub(crate) struct Function {
    pub(crate) attrs: Vec<Attr>,
    pub(crate) vis: Tokens,
    pub(crate) sig: Sig,
    /// `None` for a declaration ending in `;`.
    pub(crate) body: Option<Body>,
    /// The `;` of a declaration, for the error that points at it.
    pub(crate) semi: Option<Span>,
}

/// An outer attribute of the function or of a parameter.
pub(crate) struct Attr {
    /// `#` and `[…]`.
    pub(crate) tokens: Tokens,
    /// Whether its path ends in `instrument` (tracing's, by its last segment).
    pub(crate) instrument: bool,
    /// Whether its path is `cfg`.
    pub(crate) cfg: bool,
}

pub(crate) struct Sig {
    /// `const`, which the attribute rejects.
    pub(crate) constness: Option<Span>,
    pub(crate) asyncness: bool,
    /// What comes between `async` and `fn`: `unsafe`, `extern "C"`.
    pub(crate) qualifiers: Tokens,
    pub(crate) fn_token: Span,
    pub(crate) ident: Ident,
    /// `<…>`, without the `where` clause; empty when there is none.
    pub(crate) generics: Tokens,
    /// The parameters in their parentheses, as written: what a signature that keeps its
    /// parameters prints.
    pub(crate) params: Group,
    pub(crate) inputs: Vec<Input>,
    /// `...`, which the attribute rejects.
    pub(crate) variadic: Option<Tokens>,
    /// `-> T`; `None` for a function returning nothing.
    pub(crate) output: Option<Output>,
    /// `where …`; empty when there is none.
    pub(crate) where_clause: Tokens,
}

impl Sig {
    /// The `self` receiver, if the function has one.
    pub(crate) fn receiver(&self) -> Option<&Receiver> {
        match self.inputs.first()? {
            Input::Receiver(receiver) => Some(receiver),
            Input::Typed(_) => None,
        }
    }

    /// The names of the parameters bound by an identifier pattern (`x`, `mut x`, `ref x`,
    /// `x @ …`), with their parameter.
    pub(crate) fn bindings(&self) -> impl Iterator<Item = (&Ident, &Typed)> {
        self.inputs.iter().filter_map(|input| match input {
            Input::Typed(typed) => typed.pat.binding().map(|ident| (ident, typed)),
            Input::Receiver(_) => None,
        })
    }
}

pub(crate) enum Input {
    Receiver(Receiver),
    Typed(Typed),
}

pub(crate) struct Receiver {
    /// The receiver as written, attributes included.
    pub(crate) tokens: Tokens,
    pub(crate) self_token: Ident,
    /// Whether it is a shared borrow (`&self`, `self: &Self`), which can lend a limiter to
    /// the future that also holds it.
    pub(crate) lends: bool,
}

/// A parameter `PATTERN: TYPE`.
pub(crate) struct Typed {
    pub(crate) attrs: Vec<Attr>,
    pub(crate) pat: Pattern,
    pub(crate) colon: TokenTree,
    pub(crate) ty: Tokens,
    /// Whether the type is a shared reference, `&T` or `&'a T`.
    pub(crate) shared_ref: bool,
}

pub(crate) enum Pattern {
    /// `x` or `mut x`.
    Ident {
        mutability: Option<Ident>,
        ident: Ident,
    },
    /// Any other pattern: `_`, `(a, b)`, `ref mut x`, `x @ Some(_)`.
    Other {
        tokens: Tokens,
        /// The name an identifier pattern (`ref x`, `x @ …`) binds.
        binding: Option<Ident>,
        /// `_`.
        wild: bool,
    },
}

impl Pattern {
    fn binding(&self) -> Option<&Ident> {
        match self {
            Pattern::Ident { ident, .. } => Some(ident),
            Pattern::Other { binding, .. } => binding.as_ref(),
        }
    }
}

/// The declared return type.
pub(crate) struct Output {
    /// `->`.
    pub(crate) arrow: Tokens,
    pub(crate) ty: Tokens,
    /// `()`, however parenthesized.
    pub(crate) unit: bool,
    /// `!`.
    pub(crate) never: bool,
    /// The type with every `impl Trait` in it replaced by `_`, when it has one: what a `let`
    /// can name.
    pub(crate) inferred: Option<Tokens>,
    /// For a boxed future's type, such as `Pin<Box<dyn Future<Output = T> + Send>>`, the
    /// `T` it resolves to, and whether that is `()`.
    pub(crate) resolves_to: Option<(Tokens, bool)>,
}

pub(crate) struct Body {
    pub(crate) brace_span: Span,
    /// `#![…]` attributes at the top of the body; they go back at the top of the new body.
    pub(crate) inner_attrs: Tokens,
    pub(crate) stmts: TokenStream,
    /// The statements printed, when the reader has printed them.
    pub(crate) text: Option<String>,
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

    /// Whether `return` appears in the body, at any depth. A `return` inside a closure or a
    /// string literal counts too, which only costs an unneeded (and free) hint.
    ///
    /// The body is searched as text: printing it is one call into the compiler, where walking
    /// its tokens costs one per group and a conversion per token.
    pub(crate) fn contains_return(&self) -> bool {
        match &self.text {
            Some(text) => contains_word(text, "return"),
            None => contains_word(&self.stmts.to_string(), "return"),
        }
    }

    /// Whether the body may leave before its end: a `return` or a `?` anywhere in it (in a
    /// closure or a string too, which only costs a sampled call an `async` block it did not
    /// need).
    pub(crate) fn may_exit_early(&self) -> bool {
        self.contains_return()
            || match &self.text {
                Some(text) => text.contains('?'),
                None => self.stmts.to_string().contains('?'),
            }
    }

    /// Recognises `PATH::Box::pin(async move { … })`, the whole body of a method after
    /// `#[async_trait]` has rewritten it. Returns the tokens before the call's parentheses
    /// and the block of the `async move`.
    pub(crate) fn boxed_async_block(&self) -> Option<(Tokens, TokenTree, TokenTree, Group)> {
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
            callee.to_vec(),
            async_kw.clone(),
            move_kw.clone(),
            block.clone(),
        ))
    }
}

/// Whether `word` appears in `text` as a whole word: not inside a longer identifier.
pub(crate) fn contains_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let in_identifier = |at: usize| bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_';
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let start = from + found;
        let end = start + word.len();
        if (start == 0 || !in_identifier(start - 1)) && (end == bytes.len() || !in_identifier(end))
        {
            return true;
        }
        from = end;
    }
    false
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

/// Reads the item with syn: the reference reader, for every item.
pub(crate) fn parse(item: TokenStream) -> syn::Result<Function> {
    let parsed = Parsed::parse.parse2(item)?;
    Ok(parsed.into_function())
}

/// The item as syn reads it.
struct Parsed {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    /// The body's braces, its inner attributes and its statements; `None` for a declaration
    /// ending in `;`.
    body: Option<(Span, Vec<Attribute>, TokenStream)>,
    semi: Option<Token![;]>,
}

impl Parse for Parsed {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        // One parse, not a trial on a fork first. On failure, the error points at where the
        // signature started.
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
            body: Some((brace.span.join(), inner_attrs, stmts)),
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

/// The trees of anything syn prints.
pub(crate) fn tokens_of(node: &impl ToTokens) -> Tokens {
    node.to_token_stream().into_iter().collect()
}

impl Parsed {
    fn into_function(self) -> Function {
        let Parsed {
            attrs,
            vis,
            sig,
            body,
            semi,
        } = self;
        Function {
            attrs: attrs.iter().map(attr).collect(),
            vis: tokens_of(&vis),
            sig: signature(sig),
            body: body.map(|(brace_span, inner_attrs, stmts)| Body {
                brace_span,
                inner_attrs: inner_attrs.iter().flat_map(tokens_of).collect(),
                stmts,
                text: None,
            }),
            semi: semi.map(|semi| semi.span),
        }
    }
}

fn attr(attr: &Attribute) -> Attr {
    Attr {
        tokens: tokens_of(attr),
        instrument: attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "instrument"),
        cfg: attr.path().is_ident("cfg"),
    }
}

fn signature(sig: Signature) -> Sig {
    let mut qualifiers = TokenStream::new();
    sig.safety.to_tokens(&mut qualifiers);
    sig.abi.to_tokens(&mut qualifiers);
    let mut params = TokenStream::new();
    sig.paren_token.surround(&mut params, |params| {
        sig.inputs.to_tokens(params);
        if let Some(variadic) = &sig.variadic {
            if !sig.inputs.empty_or_trailing() {
                <Token![,]>::default().to_tokens(params);
            }
            variadic.to_tokens(params);
        }
    });
    let Some(TokenTree::Group(params)) = params.into_iter().next() else {
        unreachable!("`surround` writes one group")
    };
    Sig {
        constness: sig.constness.map(|constness| constness.span),
        asyncness: sig.asyncness.is_some(),
        qualifiers: qualifiers.into_iter().collect(),
        fn_token: sig.fn_token.span,
        params,
        inputs: sig.inputs.iter().map(input).collect(),
        variadic: sig.variadic.as_ref().map(tokens_of),
        output: match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(arrow, ty) => Some(output(*arrow, ty)),
        },
        where_clause: sig
            .generics
            .where_clause
            .as_ref()
            .map(tokens_of)
            .unwrap_or_default(),
        generics: tokens_of(&sig.generics),
        ident: sig.ident,
    }
}

fn input(input: &FnArg) -> Input {
    match input {
        FnArg::Receiver(receiver) => Input::Receiver(Receiver {
            tokens: tokens_of(receiver),
            self_token: Ident::new("self", receiver.self_token.span),
            lends: match &receiver.kind {
                syn::ReceiverKind::Reference(_, _, mutability) => mutability.is_none(),
                syn::ReceiverKind::Typed(_, ty) => shared_ref(ty),
                _ => false,
            },
        }),
        FnArg::Typed(typed) => Input::Typed(Typed {
            attrs: typed.attrs.iter().map(attr).collect(),
            pat: match &*typed.pat {
                Pat::Ident(PatIdent {
                    by_ref: None,
                    mutability,
                    ident,
                    subpat: None,
                    ..
                }) => Pattern::Ident {
                    mutability: mutability.map(|token| Ident::new("mut", token.span)),
                    ident: ident.clone(),
                },
                pattern => Pattern::Other {
                    tokens: tokens_of(pattern),
                    binding: match pattern {
                        Pat::Ident(pat) => Some(pat.ident.clone()),
                        _ => None,
                    },
                    wild: matches!(pattern, Pat::Wild(_)),
                },
            },
            colon: tokens_of(&typed.colon_token)
                .pop()
                .expect("a colon is one token"),
            ty: tokens_of(&typed.ty),
            shared_ref: shared_ref(&typed.ty),
        }),
    }
}

fn shared_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(reference) if reference.mutability.is_none())
}

fn output(arrow: Token![->], ty: &Type) -> Output {
    let mut inferred = ty.clone();
    let mut visitor = InferImplTrait(false);
    visitor.visit_type_mut(&mut inferred);
    Output {
        arrow: tokens_of(&arrow),
        ty: tokens_of(ty),
        unit: is_unit(ty),
        never: matches!(ty, Type::Never(_)),
        inferred: visitor.0.then(|| tokens_of(&inferred)),
        resolves_to: future_output(ty).map(|output| (tokens_of(output), is_unit(output))),
    }
}

/// `()`, however parenthesized.
fn is_unit(ty: &Type) -> bool {
    match ty {
        Type::Tuple(tuple) => tuple.elems.is_empty(),
        Type::Paren(inner) => is_unit(&inner.elem),
        Type::Group(inner) => is_unit(&inner.elem),
        _ => false,
    }
}

/// Finds `Output = T` in a type such as `Pin<Box<dyn Future<Output = T> + Send + 'a>>`.
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(path) => path_output(&path.path),
        Type::TraitObject(object) => object.bounds.iter().find_map(|bound| match bound {
            TypeParamBound::Trait(bound) => path_output(&bound.path),
            _ => None,
        }),
        Type::Paren(inner) => future_output(&inner.elem),
        Type::Group(inner) => future_output(&inner.elem),
        _ => None,
    }
}

fn path_output(path: &Path) -> Option<&Type> {
    path.segments.iter().find_map(|segment| {
        let PathArguments::AngleBracketed(args) = &segment.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            GenericArgument::Type(inner) => future_output(inner),
            _ => None,
        })
    })
}

/// Replaces every `impl Trait` with `_`, and notes whether it found one.
struct InferImplTrait(bool);

impl VisitMut for InferImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            self.0 = true;
            *ty = Type::Infer(syn::TypeInfer {
                attrs: Vec::new(),
                underscore_token: Token![_](syn::spanned::Spanned::span(impl_trait)),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}
