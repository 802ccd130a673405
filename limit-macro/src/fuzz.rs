//! Property tests of the whole attribute, [`expand_attribute`], on random input: random token
//! trees as the arguments, and as the item either a valid `async fn` from a small corpus
//! mutated at random (tokens dropped, duplicated, swapped, replaced, inserted, at any depth)
//! or a fully random token stream.
//!
//! What this proves, on every input tried:
//!
//! - the attribute never panics (a panic in a proc macro is an ICE-like "proc macro panicked"
//!   error with no span, the opposite of the one clear error the crate promises);
//! - it either fails cleanly, emitting the item exactly as written followed by exactly one
//!   `::core::compile_error!("…")`, or succeeds with an expansion that contains no error and
//!   parses as one function item, no longer `async`, with the same name.
//!
//! And on well-formed arguments over the unmutated corpus, it always succeeds, so the
//! success branch above is exercised and not only the error branch.
//!
//! It lives inside the crate because a proc-macro crate can export only macros:
//! `expand_attribute` is unreachable from an integration test. `proc_macro2` falls back to its
//! own implementation outside a macro invocation, so this runs as a plain unit test.
//!
//! A few thousand cases by default (seconds in a debug build); `PROPTEST_CASES=N` for more.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;

use crate::expand_attribute;

// ---------------------------------------------------------------------------------------
// Random tokens, described by a plain enum so that proptest can shrink them and print them.

/// One token tree. Rendering it needs no validation: every variant maps to tokens that
/// `proc_macro2` accepts (its constructors panic on invalid input, which would be a bug in
/// this file, not in the macro).
#[derive(Clone, Debug)]
enum Tok {
    Ident(String),
    /// A literal, written as source (`"…".parse()`), or a negative integer, which only
    /// `Literal::i64_unsuffixed` can make: a single token `-1` that no lexer produces.
    Lit(String),
    NegativeInt(i64),
    /// `'name`: a joint `'` and an identifier.
    Lifetime(String),
    Punct(char, Spacing),
    /// `::`, the one multi-character punctuation the attribute's paths need.
    PathSep,
    Group(Delimiter, Vec<Tok>),
}

/// Identifiers that mean something to the parser (the option names, keywords of a
/// signature), plus a few that do not.
const IDENTS: &[&str] = &[
    "limiter",
    "max_wait",
    "queue",
    "key",
    "name",
    "async",
    "fn",
    "pub",
    "const",
    "unsafe",
    "extern",
    "move",
    "self",
    "Self",
    "crate",
    "super",
    "Box",
    "pin",
    "Result",
    "Duration",
    "Option",
    "impl",
    "dyn",
    "where",
    "return",
    "await",
    "mut",
    "ref",
    "let",
    "_",
    "u8",
    "usize",
    "x",
    "T",
    "Future",
    "Output",
    "async_trait",
    "doc",
    "cfg",
    "true",
    "false",
];

const LITERALS: &[&str] = &[
    "0",
    "1",
    "5",
    "5usize",
    "5u8",
    "0x10",
    "1_000",
    // tokio's old `MAX_PERMITS`, the new `Limiter::MAX_LIMIT`, one above each, and numbers
    // that fit no integer type.
    "2305843009213693951",
    "2305843009213693952",
    "2147483647",
    "2147483648",
    "18446744073709551615",
    "340282366920938463463374607431768211455",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999999",
    "1.5",
    "1e400",
    "2.5e-3f32",
    "1f64",
    "\"github-api\"",
    "\"\"",
    "r#\"raw \" string\"#",
    "b\"bytes\"",
    "c\"cstr\"",
    "'c'",
    "b'b'",
];

const PUNCTS: &[char] = &[
    '=', ',', ':', ';', '#', '!', '&', '*', '-', '.', '<', '>', '+', '/', '|', '?', '@', '^', '%',
    '~', '$',
];

fn leaf() -> impl Strategy<Value = Tok> {
    let spacing = prop_oneof![Just(Spacing::Alone), Just(Spacing::Joint)];
    prop_oneof![
        6 => prop::sample::select(IDENTS).prop_map(|ident| Tok::Ident(ident.to_owned())),
        2 => "[a-z][a-z0-9_]{0,6}".prop_map(Tok::Ident),
        4 => prop::sample::select(LITERALS).prop_map(|lit| Tok::Lit(lit.to_owned())),
        1 => any::<i64>().prop_map(|n| Tok::NegativeInt(-n.saturating_abs().max(1))),
        1 => any::<u128>().prop_map(|n| Tok::Lit(n.to_string())),
        1 => "[a-z_]{1,3}".prop_map(Tok::Lifetime),
        6 => (prop::sample::select(PUNCTS), spacing).prop_map(|(c, s)| Tok::Punct(c, s)),
        2 => Just(Tok::PathSep),
    ]
}

fn delimiter() -> impl Strategy<Value = Delimiter> {
    prop_oneof![
        Just(Delimiter::Parenthesis),
        Just(Delimiter::Brace),
        Just(Delimiter::Bracket),
        // Invisible groups come from `macro_rules!` fragments (`$e:expr`) and trip parsers
        // that only expect visible ones.
        Just(Delimiter::None),
    ]
}

/// Token trees nested up to depth 3.
fn tok() -> impl Strategy<Value = Tok> {
    leaf().prop_recursive(3, 48, 6, |inner| {
        (delimiter(), prop::collection::vec(inner, 0..6))
            .prop_map(|(delimiter, toks)| Tok::Group(delimiter, toks))
    })
}

fn toks(max: usize) -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec(tok(), 0..max)
}

fn render(toks: &[Tok]) -> TokenStream {
    let mut stream = TokenStream::new();
    for tok in toks {
        render_one(tok, &mut stream);
    }
    stream
}

fn render_one(tok: &Tok, stream: &mut TokenStream) {
    let span = Span::call_site();
    match tok {
        Tok::Ident(ident) => stream.extend([TokenTree::Ident(Ident::new(ident, span))]),
        Tok::Lit(source) => {
            let literal: Literal = source.parse().expect("the literal table lexes");
            stream.extend([TokenTree::Literal(literal)]);
        }
        Tok::NegativeInt(n) => stream.extend([TokenTree::Literal(Literal::i64_unsuffixed(*n))]),
        Tok::Lifetime(name) => stream.extend([
            TokenTree::Punct(Punct::new('\'', Spacing::Joint)),
            TokenTree::Ident(Ident::new(name, span)),
        ]),
        Tok::Punct(c, spacing) => stream.extend([TokenTree::Punct(Punct::new(*c, *spacing))]),
        Tok::PathSep => stream.extend([
            TokenTree::Punct(Punct::new(':', Spacing::Joint)),
            TokenTree::Punct(Punct::new(':', Spacing::Alone)),
        ]),
        Tok::Group(delimiter, inner) => {
            stream.extend([TokenTree::Group(Group::new(*delimiter, render(inner)))]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Items: a corpus of valid functions, mutated.

/// Functions the attribute accepts, in the shapes the README lists.
const CORPUS: &[&str] = &[
    "async fn fetch(url: String) -> usize { url.len() }",
    "pub async fn unit() {}",
    "pub(crate) async fn early(x: u32) -> Result<u32, Error> { if x == 0 { return Err(Error); } Ok(x) }",
    "async fn get(&self, path: &str) -> &str { path }",
    "async fn consume(self: Arc<Self>, (a, b): (u8, u8), _: Token) -> u16 { u16::from(a) + u16::from(b) }",
    "#[must_use] #[doc = \"docs\"] async fn generic<'a, T: Default + Send>(x: &'a T) -> T where T: Clone { x.clone() }",
    "async fn boxed() -> Box<dyn std::error::Error> { Box::new(std::fmt::Error) }",
    "async fn returns_impl() -> impl Iterator<Item = u8> { 0..3 }",
    "async fn inner_attrs() { #![allow(unused)] let x = 1; }",
    "async fn with_ref_mut(ref mut x: u8, mut y: u8) { *x += 1; y += 1; }",
    // What `#[async_trait]` hands the attribute.
    "fn call<'life0, 'async_trait>(&'life0 self, request: u32) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = u32> + ::core::marker::Send + 'async_trait>> where 'life0: 'async_trait, Self: 'async_trait { Box::pin(async move { request * 2 }) }",
];

#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, Tok),
    Insert(usize, Tok),
}

/// A mutation applied inside the group reached by following `path` (each step picks one of
/// the groups at that level, modulo their number; an empty path is the top level).
#[derive(Clone, Debug)]
struct Located {
    path: Vec<usize>,
    mutation: Mutation,
}

fn mutation() -> impl Strategy<Value = Located> {
    let at = 0..64_usize;
    let mutation = prop_oneof![
        at.clone().prop_map(Mutation::Drop),
        at.clone().prop_map(Mutation::Duplicate),
        (at.clone(), at.clone()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (at.clone(), tok()).prop_map(|(at, tok)| Mutation::Replace(at, tok)),
        (at, tok()).prop_map(|(at, tok)| Mutation::Insert(at, tok)),
    ];
    (prop::collection::vec(0..8_usize, 0..3), mutation)
        .prop_map(|(path, mutation)| Located { path, mutation })
}

fn mutate(stream: TokenStream, path: &[usize], mutation: &Mutation) -> TokenStream {
    let mut tokens: Vec<TokenTree> = stream.into_iter().collect();
    if let Some((&step, rest)) = path.split_first() {
        let groups: Vec<usize> = (0..tokens.len())
            .filter(|&i| matches!(tokens[i], TokenTree::Group(_)))
            .collect();
        if !groups.is_empty() {
            let at = groups[step % groups.len()];
            if let TokenTree::Group(group) = &tokens[at] {
                let mut new = Group::new(group.delimiter(), mutate(group.stream(), rest, mutation));
                new.set_span(group.span());
                tokens[at] = TokenTree::Group(new);
            }
            return tokens.into_iter().collect();
        }
    }
    let len = tokens.len();
    match mutation {
        Mutation::Drop(at) if len > 0 => {
            tokens.remove(at % len);
        }
        Mutation::Duplicate(at) if len > 0 => {
            let token = tokens[at % len].clone();
            tokens.insert(at % len, token);
        }
        Mutation::Swap(a, b) if len > 0 => tokens.swap(a % len, b % len),
        Mutation::Replace(at, tok) if len > 0 => {
            let at = at % len;
            tokens.splice(at..=at, render(std::slice::from_ref(tok)));
        }
        Mutation::Insert(at, tok) => {
            let at = at % (len + 1);
            tokens.splice(at..at, render(std::slice::from_ref(tok)));
        }
        _ => {}
    }
    tokens.into_iter().collect()
}

#[derive(Clone, Debug)]
enum Item {
    Mutated {
        corpus: usize,
        mutations: Vec<Located>,
    },
    Random(Vec<Tok>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (0..CORPUS.len(), prop::collection::vec(mutation(), 0..4))
            .prop_map(|(corpus, mutations)| Item::Mutated { corpus, mutations }),
        1 => toks(12).prop_map(Item::Random),
    ]
}

fn corpus(index: usize) -> TokenStream {
    CORPUS[index].parse().expect("the corpus lexes")
}

fn render_item(item: &Item) -> TokenStream {
    match item {
        Item::Mutated {
            corpus: index,
            mutations,
        } => mutations.iter().fold(corpus(*index), |stream, located| {
            mutate(stream, &located.path, &located.mutation)
        }),
        Item::Random(toks) => render(toks),
    }
}

/// Arguments: mostly random token trees, sometimes well-formed options with random values,
/// so that the option parser and the validation behind it are reached, not only the first
/// token's rejection.
fn args() -> impl Strategy<Value = Vec<Tok>> {
    let option = (
        prop::sample::select(&["limiter", "max_wait", "queue", "key", "name"][..]),
        prop::collection::vec(tok(), 1..3),
    )
        .prop_map(|(name, value)| {
            let mut toks = vec![Tok::Ident(name.to_owned()), Tok::Punct('=', Spacing::Alone)];
            toks.extend(value);
            toks
        });
    let positional = prop::collection::vec(tok(), 1..3);
    let list = prop::collection::vec(prop_oneof![option, positional], 0..4).prop_map(|parts| {
        let mut toks = Vec::new();
        for (index, part) in parts.into_iter().enumerate() {
            if index > 0 {
                toks.push(Tok::Punct(',', Spacing::Alone));
            }
            toks.extend(part);
        }
        toks
    });
    prop_oneof![1 => toks(8), 1 => list]
}

// ---------------------------------------------------------------------------------------
// The property.

/// How many times `compile_error` appears as an identifier, at any depth.
fn count_compile_errors(stream: TokenStream) -> usize {
    stream
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) if ident == "compile_error" => 1,
            TokenTree::Group(group) => count_compile_errors(group.stream()),
            _ => 0,
        })
        .sum()
}

/// Runs the attribute and checks its contract; returns whether it succeeded.
fn check(args: &TokenStream, item: &TokenStream) -> bool {
    let output = catch_unwind(AssertUnwindSafe(|| {
        expand_attribute(args.clone(), item.clone())
    }))
    .unwrap_or_else(|_| panic!("expand_attribute panicked\n  args: {args}\n  item: {item}"));
    let context = format!("\n  args: {args}\n  item: {item}\n  output: {output}");

    // The inputs never contain `compile_error`, so every one in the output is the macro's.
    match count_compile_errors(output.clone()) {
        0 => {
            // The macro keeps the body as tokens without parsing it, so a mangled body is
            // the compiler's to report: compare signatures, and demand a fully parseable
            // expansion only from an item that parses fully itself.
            let original: LooseFn = syn::parse2(item.clone()).unwrap_or_else(|error| {
                panic!("accepted an item that is not a function: {error}{context}")
            });
            let expanded: LooseFn = syn::parse2(output.clone()).unwrap_or_else(|error| {
                panic!("the expansion is not one function: {error}{context}")
            });
            assert!(
                expanded.sig.asyncness.is_none(),
                "the expansion is still async{context}"
            );
            assert_eq!(expanded.sig.ident, original.sig.ident, "renamed{context}");
            if syn::parse2::<syn::ItemFn>(item.clone()).is_ok() {
                let full: syn::Item = syn::parse2(output).unwrap_or_else(|error| {
                    panic!("the expansion of a valid function does not parse: {error}{context}")
                });
                assert!(matches!(full, syn::Item::Fn(_)), "not a function{context}");
            }
            true
        }
        1 => {
            // The item exactly as written, then the error, so that the function still exists
            // for the rest of the crate and for the IDE.
            let output: Vec<TokenTree> = output.into_iter().collect();
            let item: Vec<TokenTree> = item.clone().into_iter().collect();
            assert!(
                output.len() > item.len(),
                "the output is shorter than the item{context}"
            );
            let (echoed, error) = output.split_at(item.len());
            assert_eq!(
                tokens_string(echoed),
                tokens_string(&item),
                "the item is not echoed unchanged{context}"
            );
            let error: syn::ExprMacro = syn::parse2(error.iter().cloned().collect())
                .unwrap_or_else(|parse| {
                    panic!("after the item comes something else than one macro: {parse}{context}")
                });
            assert!(
                error.mac.path.is_ident("compile_error")
                    || error.mac.path.segments.last().unwrap().ident == "compile_error",
                "{context}"
            );
            let message: syn::LitStr = syn::parse2(error.mac.tokens).unwrap_or_else(|parse| {
                panic!("compile_error!'s argument is not one string: {parse}{context}")
            });
            assert!(
                !message.value().trim().is_empty(),
                "an empty error message{context}"
            );
            false
        }
        many => panic!("{many} errors instead of one{context}"),
    }
}

/// A function whose body is kept as tokens, as `item.rs` reads it.
struct LooseFn {
    sig: syn::Signature,
}

impl syn::parse::Parse for LooseFn {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        input.call(syn::Attribute::parse_outer)?;
        input.parse::<syn::Visibility>()?;
        let sig = input.parse()?;
        let body;
        syn::braced!(body in input);
        body.parse::<TokenStream>()?;
        Ok(Self { sig })
    }
}

fn tokens_string(tokens: &[TokenTree]) -> String {
    tokens.iter().cloned().collect::<TokenStream>().to_string()
}

/// `PROPTEST_CASES` if set (proptest reads it into its default), else `default`.
fn cases(default: u32) -> u32 {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default().cases
    } else {
        default
    }
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // No regression file in the source tree: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Random arguments on random or mutated items: no panic, and either a clean error or a
    /// well-formed expansion.
    #[test]
    fn never_panics_and_fails_with_exactly_one_error(args in args(), item in item()) {
        check(&render(&args), &render_item(&item));
    }
}

/// Arguments the attribute must accept on every function of the corpus.
fn valid_args() -> impl Strategy<Value = String> {
    let limit = prop_oneof![
        (1..=10_000_u32).prop_map(|n| n.to_string()),
        Just("2147483647".to_owned()),
        Just("MAX_JOBS".to_owned()),
        Just("Self::LIMIT".to_owned()),
        Just("limit_from_config()".to_owned()),
        Just("(4)".to_owned()),
    ];
    let own = (
        limit,
        prop::option::of("[a-z][a-z-]{0,8}"),
        prop::option::of(Just("key = x.clone()")),
    )
        .prop_map(|(limit, name, key)| {
            let mut args = limit;
            if let Some(name) = name {
                args += &format!(", name = {name:?}");
            }
            if let Some(key) = key {
                args += ", ";
                args += key;
            }
            args
        });
    prop_oneof![
        3 => own,
        1 => Just("limiter = DATABASE".to_owned()),
        1 => Just("limiter = crate::db::POOL,".to_owned()),
    ]
}

proptest! {
    #![proptest_config(config(500))]

    /// Well-formed arguments on unmutated functions always expand, so the success branch of
    /// `check` is reached and not only the error branch.
    #[test]
    fn valid_arguments_always_expand(
        args in valid_args(),
        corpus_index in 0..CORPUS.len(),
    ) {
        let args: TokenStream = args.parse().expect("valid arguments lex");
        let item = corpus(corpus_index);
        prop_assert!(check(&args, &item), "rejected:\n  args: {}\n  item: {}", args, item);
    }

    /// Well-formed arguments on mutated functions: random arguments rarely get past the
    /// argument parser, so this is what drives the item's parsing and validation.
    #[test]
    fn valid_arguments_on_mutated_items(args in valid_args(), item in item()) {
        let args: TokenStream = args.parse().expect("valid arguments lex");
        check(&args, &render_item(&item));
    }
}
