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
//! Random arguments rarely get past the first token, and a mutated item usually fails before
//! the arguments are read, so a third strategy, `bad_args`, writes arguments as a user would,
//! with a user's mistakes (unknown or repeated options, limits out of range or of the wrong
//! type, `limiter` with a limit, `queue` without a `Result`, missing `=` or values, stray
//! commas), on the unmutated corpus. Each case knows its mistakes: it must expand when it has
//! none, and otherwise fail with the message of one of them, never with an item error. A
//! fixed-seed run of it must reach every argument error (`REQUIRED_ERRORS`), and a table of
//! arguments (`ARGUMENT_ERRORS`, `POLICY_CASES`) pins each error on every function of the
//! corpus.
//!
//! It lives inside the crate because a proc-macro crate can export only macros:
//! `expand_attribute` is unreachable from an integration test. `proc_macro2` falls back to its
//! own implementation outside a macro invocation, so this runs as a plain unit test.
//!
//! A few thousand cases by default (seconds in a debug build); `PROPTEST_CASES=N` for more
//! (the fixed-seed coverage run keeps its own count).

use std::panic::{AssertUnwindSafe, catch_unwind};

use std::fmt::Write as _;

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
    // Two more that return a `Result`, so that `max_wait` and `queue` are accepted on more
    // than one shape (see `RETURNS_RESULT`).
    "async fn read(path: &Path) -> std::io::Result<Vec<u8>> { tokio::fs::read(path).await }",
    "fn try_call<'life0, 'async_trait>(&'life0 self, request: u32) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u32, Error>> + ::core::marker::Send + 'async_trait>> where 'life0: 'async_trait, Self: 'async_trait { Box::pin(async move { Ok(request) }) }",
];

/// The functions of `CORPUS` whose future resolves to a `Result`: the ones on which `max_wait`
/// and `queue` also compile.
const RETURNS_RESULT: &[usize] = &[2, 11, 12];

/// The functions of `CORPUS` that return nothing: the only ones on which the attribute itself
/// rejects `max_wait` and `queue` (any other return type is left to the type system).
const RETURNS_UNIT: &[usize] = &[1, 8, 9];

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
    outcome(args, item).is_none()
}

/// Runs the attribute and checks its contract; returns `None` if it expanded, else the message
/// of its one `compile_error!`.
fn outcome(args: &TokenStream, item: &TokenStream) -> Option<String> {
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
            None
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
            Some(message.value())
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
                let _ = write!(args, ", name = {name:?}");
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

// ---------------------------------------------------------------------------------------
// Well-formed arguments with wrong names and values, on unmutated items.
//
// Random token trees almost never get past the argument parser's first token, and a mutated
// item usually stops the attribute before it reads the arguments at all. These cases are
// arguments as a user writes them, with the mistakes a user makes, on functions that the
// attribute accepts: so every error they cause is an argument error. Each case carries what
// it got wrong, and `expected_errors` turns that into the messages the attribute may answer
// with (from `args.rs` and `validate.rs`), so the property is exact: a case with no mistake
// expands, and a case with mistakes fails with the message of one of them.

use crate::validate::MAX_LIMIT;

/// The argument error messages, or their starts, as `args.rs` and `validate.rs` write them.
const LIMIT_TWICE: &str = "the concurrency limit is given more than once";
const SET_TWICE: &str = "is set more than once";
const UNKNOWN: &str = "unknown option `";
const MISSING_LIMIT: &str = "missing concurrency limit; ";
const TOO_LARGE: &str = "is too large: the maximum is 2147483647";
const AT_LEAST_ONE: &str = "the concurrency limit must be at least 1";
const NEGATIVE_LIMIT: &str = "the concurrency limit must be a positive integer, found `-";
const SUFFIXED_LIMIT: &str = "the concurrency limit is a `usize`, but `";
const LIMIT_WITH_LIMITER: &str = "a positional limit cannot be combined with `limiter = ";
const KEY_WITH_LIMITER: &str = "`key` cannot be combined with `limiter = ";
const NAME_WITH_LIMITER: &str = "`name` cannot be combined with `limiter = ";
const NEEDS_RESULT: &str =
    "needs a function that returns `Result<T, E>` with `E: From<LimitError>`";
const NEGATIVE_QUEUE: &str = "`queue` cannot be negative";
/// syn's, for a value that is not what the option takes, or is missing.
const NOT_A_STRING: &str = "expected string literal";
const LIMITER_LITERAL: &str = "`limiter` cannot be a literal";
const NO_EXPRESSION: &str = "expected an expression";
const NO_COMMA: &str = "expected `,`";

use crate::args::OPTIONS as OPTION_NAMES;

/// Names close to an option's, as a user might misremember them.
const NEAR_MISSES: &[&str] = &[
    "limit",
    "limits",
    "Limiter",
    "limiters",
    "max_wait_ms",
    "maxwait",
    "max_wait_secs",
    "wait",
    "timeout",
    "Queue",
    "QUEUE",
    "queue_size",
    "max_queue",
    "Key",
    "keys",
    "key_by",
    "Name",
    "label",
    "permits",
    "concurrency",
    "fair",
];

/// A table of values: source, and the start of the error it must cause when the attribute
/// checks it (`None`: it is valid).
type Values = &'static [(&'static str, Option<&'static str>)];

const LIMITS: Values = &[
    ("5", None),
    ("1", None),
    ("2147483647", None),
    ("5usize", None),
    ("0x10", None),
    ("1_000", None),
    ("MAX_JOBS", None),
    ("Self::LIMIT", None),
    ("limit_from_config()", None),
    ("config.limit", None),
    ("0", Some(AT_LEAST_ONE)),
    ("0usize", Some(AT_LEAST_ONE)),
    ("0x0", Some(AT_LEAST_ONE)),
    ("0_000", Some(AT_LEAST_ONE)),
    ("-1", Some(NEGATIVE_LIMIT)),
    ("-5", Some(NEGATIVE_LIMIT)),
    ("-0", Some(NEGATIVE_LIMIT)),
    ("-2147483648", Some(NEGATIVE_LIMIT)),
    ("-(3)", Some(NEGATIVE_LIMIT)),
    ("-5.0", Some(NEGATIVE_LIMIT)),
    (
        "5u8",
        Some("the concurrency limit is a `usize`, but `5u8` is a `u8`; write `5`"),
    ),
    (
        "5i32",
        Some("the concurrency limit is a `usize`, but `5i32` is a `i32`; write `5`"),
    ),
    // The suffix is checked before the value.
    (
        "0u64",
        Some("the concurrency limit is a `usize`, but `0u64` is a `u64`; write `0`"),
    ),
    (
        "2147483648u32",
        Some("the concurrency limit is a `usize`, but `2147483648u32` is a `u32`"),
    ),
    (
        "5.0",
        Some("the concurrency limit cannot be a floating-point literal"),
    ),
    (
        "1e3",
        Some("the concurrency limit cannot be a floating-point literal"),
    ),
    // No `.` or exponent: an integer literal with a float's suffix, for syn as for rustc.
    (
        "5f32",
        Some("the concurrency limit is a `usize`, but `5f32` is a `f32`; write `5`"),
    ),
    (
        "\"5\"",
        Some("the concurrency limit cannot be a string literal"),
    ),
    (
        "'5'",
        Some("the concurrency limit cannot be a character literal"),
    ),
    (
        "true",
        Some("the concurrency limit cannot be a boolean literal"),
    ),
    (
        "b\"5\"",
        Some("the concurrency limit cannot be a byte string literal"),
    ),
    (
        "b'5'",
        Some("the concurrency limit cannot be a byte literal"),
    ),
    (
        "c\"5\"",
        Some("the concurrency limit cannot be a C string literal"),
    ),
    (
        "2147483648",
        Some("the concurrency limit `2147483648` is too large: the maximum is 2147483647"),
    ),
    (
        "2_147_483_648",
        Some("the concurrency limit `2_147_483_648` is too large"),
    ),
    (
        "0x80000000",
        Some("the concurrency limit `0x80000000` is too large"),
    ),
    (
        "18446744073709551616usize",
        Some("the concurrency limit `18446744073709551616usize` is too large"),
    ),
    // u128::MAX, one above it, and far above it.
    (
        "340282366920938463463374607431768211455",
        Some("the concurrency limit `340282366920938463463374607431768211455` is too large"),
    ),
    (
        "340282366920938463463374607431768211456",
        Some("the concurrency limit `340282366920938463463374607431768211456` is too large"),
    ),
    (
        "99999999999999999999999999999999999999999999",
        Some("the concurrency limit `99999999999999999999999999999999999999999999` is too large"),
    ),
];

const QUEUES: Values = &[
    ("0", None),
    ("100", None),
    ("5usize", None),
    ("QUEUE", None),
    ("config.queue", None),
    ("(3)", None),
    ("usize::MAX", None),
    ("-1", Some(NEGATIVE_QUEUE)),
    ("-100", Some(NEGATIVE_QUEUE)),
    ("-(2)", Some(NEGATIVE_QUEUE)),
    ("-0", Some(NEGATIVE_QUEUE)),
    ("1.5", Some("`queue` cannot be a floating-point literal")),
    ("\"5\"", Some("`queue` cannot be a string literal")),
    (
        "5u8",
        Some("`queue` cannot be an integer literal of a type other than `usize`"),
    ),
    (
        "5i64",
        Some("`queue` cannot be an integer literal of a type other than `usize`"),
    ),
    ("true", Some("`queue` cannot be a boolean literal")),
    ("'x'", Some("`queue` cannot be a character literal")),
];

const NAMES: Values = &[
    ("\"github-api\"", None),
    ("\"\"", None),
    ("r\"raw\"", None),
    ("\"with \\\"quotes\\\"\"", None),
    ("5", Some(NOT_A_STRING)),
    ("github", Some(NOT_A_STRING)),
    ("b\"bytes\"", Some(NOT_A_STRING)),
    ("'c'", Some(NOT_A_STRING)),
    ("c\"cstr\"", Some(NOT_A_STRING)),
    ("concat!(\"a\", \"b\")", Some(NOT_A_STRING)),
];

const LIMITERS: Values = &[
    ("DATABASE", None),
    ("crate::db::POOL", None),
    ("self::POOL", None),
    ("super::SHARED", None),
    ("::app::LIMITER", None),
    ("Self::POOL", None),
    ("5", Some(LIMITER_LITERAL)),
    ("\"DATABASE\"", Some(LIMITER_LITERAL)),
    // Expressions: a limiter per instance, checked by the type system.
    ("&DATABASE", None),
    ("DATABASE.pool", None),
    ("pool()", None),
];

const MAX_WAITS: Values = &[
    ("Duration::from_millis(50)", None),
    ("std::time::Duration::from_secs(1)", None),
    ("TIMEOUT", None),
    ("self.timeout", None),
    ("Duration::MAX", None),
];

const KEYS: Values = &[
    ("x.clone()", None),
    ("user_id", None),
    ("(a, b)", None),
    ("request.tenant()", None),
    ("*id", None),
    ("url.len() % 4", None),
];

/// Values after an unknown name: never read, since the name is rejected first.
const UNKNOWN_VALUES: &[&str] = &["5", "\"x\"", "DATABASE", "Duration::from_secs(1)", ""];

/// Values after a name with the `=` forgotten. Each starts a new expression that cannot
/// continue the name's (no `(`, `-`, `.`, `::` or `as`, which would make `name VALUE` one
/// valid expression).
const NO_EQ_VALUES: &[&str] = &[
    "5",
    "\"x\"",
    "DATABASE",
    "crate::db::POOL",
    "x.clone()",
    "Duration::from_millis(5)",
];

/// A value as source, and the error it must cause when checked (`None`: valid).
#[derive(Clone, Debug)]
struct Value {
    source: String,
    error: Option<String>,
}

/// How a limit or a `queue` is wrapped, which must not change how it is checked: as written,
/// in parentheses, or in an invisible group (what a `macro_rules!` fragment such as
/// `$limit:expr` hands the attribute).
#[derive(Clone, Copy, Debug)]
enum Wrap {
    Plain,
    Paren,
    Invisible,
}

#[derive(Clone, Debug)]
enum Part {
    /// A positional limit.
    Limit(Value, Wrap),
    /// `name = value` with a known option name.
    Opt(&'static str, Value, Wrap),
    /// `name = value` with a name the attribute does not know.
    Unknown(String, String),
    /// `name value`: the `=` forgotten.
    NoEq(String, String),
    /// `name =` and nothing.
    NoValue(&'static str),
    /// A comma too many (a leading one, or two in a row).
    Comma,
}

#[derive(Clone, Debug)]
struct BadArgs {
    /// The function, unmutated, from `CORPUS`.
    corpus: usize,
    parts: Vec<Part>,
    trailing_comma: bool,
}

/// A value from the table, valid or invalid as often as each other (most tables have more
/// ways to be wrong than right, and a case with one mistake too many never reaches the later
/// checks).
fn values(table: Values) -> BoxedStrategy<Value> {
    let invalid: Vec<_> = table.iter().filter(|(_, error)| error.is_some()).collect();
    if invalid.is_empty() {
        valid_values(table)
    } else {
        prop_oneof![
            valid_values(table),
            prop::sample::select(invalid).prop_map(|&(source, error)| Value {
                source: source.to_owned(),
                error: error.map(str::to_owned),
            }),
        ]
        .boxed()
    }
}

fn valid_values(table: Values) -> BoxedStrategy<Value> {
    let valid: Vec<&str> = table
        .iter()
        .filter(|(_, error)| error.is_none())
        .map(|&(source, _)| source)
        .collect();
    prop::sample::select(valid)
        .prop_map(|source| Value {
            source: source.to_owned(),
            error: None,
        })
        .boxed()
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        4 => Just(Wrap::Plain),
        1 => Just(Wrap::Paren),
        1 => Just(Wrap::Invisible),
    ]
}

fn limit_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => values(LIMITS),
        1 => (1..=MAX_LIMIT).prop_map(|n| Value {
            source: n.to_string(),
            error: None,
        }),
        1 => (MAX_LIMIT + 1..=u128::MAX).prop_map(|n| Value {
            source: n.to_string(),
            error: Some(format!("the concurrency limit `{n}` {TOO_LARGE}")),
        }),
    ]
}

/// A value for the option `name`; only `queue` is wrapped (the others are not expressions,
/// or are not looked into).
fn option_value(name: &'static str) -> BoxedStrategy<Part> {
    let plain = move |table| {
        values(table)
            .prop_map(move |value| Part::Opt(name, value, Wrap::Plain))
            .boxed()
    };
    match name {
        "limiter" => plain(LIMITERS),
        "max_wait" => plain(MAX_WAITS),
        "key" => plain(KEYS),
        "name" => plain(NAMES),
        "queue" => (values(QUEUES), wrap())
            .prop_map(|(value, wrap)| Part::Opt("queue", value, wrap))
            .boxed(),
        other => unreachable!("not an option: {other}"),
    }
}

/// A name that is not an option's: a near miss, or any identifier (keywords included: the
/// attribute reads option names with `parse_any`).
fn unknown_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NEAR_MISSES).prop_map(str::to_owned),
        1 => "[a-z][a-z0-9_]{0,10}",
        1 => "[A-Z][A-Za-z0-9_]{0,10}",
    ]
    .prop_filter("an option's name", |name| {
        !OPTION_NAMES.contains(&name.as_str())
    })
}

/// A part added to a well-formed list: usually a mistake, sometimes a second copy of an
/// option or a limit (a mistake only if the list already has one, which `expected_errors`
/// works out).
fn extra() -> impl Strategy<Value = Part> {
    let known = prop::sample::select(OPTION_NAMES);
    prop_oneof![
        3 => (unknown_name(), prop::sample::select(UNKNOWN_VALUES))
            .prop_map(|(name, value)| Part::Unknown(name, value.to_owned())),
        1 => (
            prop_oneof![
                known.clone().prop_map(str::to_owned),
                prop::sample::select(NEAR_MISSES).prop_map(str::to_owned),
            ],
            prop::sample::select(NO_EQ_VALUES),
        )
            .prop_map(|(name, value)| Part::NoEq(name, value.to_owned())),
        1 => known.clone().prop_map(Part::NoValue),
        1 => Just(Part::Comma),
        3 => known.prop_flat_map(option_value),
        2 => (limit_value(), wrap()).prop_map(|(value, wrap)| Part::Limit(value, wrap)),
    ]
}

/// Arguments as a user writes them: a limit or a shared limiter (or, sometimes, neither),
/// options with valid or invalid values, and up to two extra parts, in any order. A third of
/// the cases are valid but for `queue`, on a function that returns a `Result`: its checks come
/// last, so any other mistake would hide them.
fn bad_args() -> impl Strategy<Value = BadArgs> {
    prop_oneof![2 => any_mistakes(), 1 => only_queue_wrong()]
}

fn any_mistakes() -> impl Strategy<Value = BadArgs> {
    let source = prop_oneof![
        5 => (limit_value(), wrap()).prop_map(|(value, wrap)| vec![Part::Limit(value, wrap)]),
        2 => values(LIMITERS).prop_map(|value| vec![Part::Opt("limiter", value, Wrap::Plain)]),
        1 => Just(Vec::new()),
    ];
    let options = (
        prop::option::weighted(0.25, option_value("name")),
        prop::option::weighted(0.25, option_value("key")),
        prop::option::weighted(0.3, option_value("max_wait")),
        prop::option::weighted(0.3, option_value("queue")),
    );
    let extras = prop_oneof![
        1 => Just(Vec::new()),
        1 => prop::collection::vec(extra(), 1..3),
    ];
    // Half of the cases on a function that returns a `Result`, so that `max_wait` and
    // `queue` are accepted as often as refused.
    let corpus = prop_oneof![
        1 => prop::sample::select(RETURNS_RESULT),
        1 => 0..CORPUS.len(),
    ];
    (corpus, source, options, extras, any::<bool>()).prop_flat_map(
        |(corpus, source, (name, key, max_wait, queue), extras, trailing_comma)| {
            let mut parts = source;
            parts.extend([name, key, max_wait, queue].into_iter().flatten());
            parts.extend(extras);
            (
                Just(corpus),
                Just(parts).prop_shuffle(),
                Just(trailing_comma),
            )
                .prop_map(|(corpus, parts, trailing_comma)| BadArgs {
                    corpus,
                    parts,
                    trailing_comma,
                })
        },
    )
}

fn only_queue_wrong() -> impl Strategy<Value = BadArgs> {
    let source = prop_oneof![
        3 => (valid_values(LIMITS), wrap()).prop_map(|(value, wrap)| Part::Limit(value, wrap)),
        1 => valid_values(LIMITERS).prop_map(|value| Part::Opt("limiter", value, Wrap::Plain)),
    ];
    let max_wait = prop::option::of(
        valid_values(MAX_WAITS).prop_map(|value| Part::Opt("max_wait", value, Wrap::Plain)),
    );
    (
        prop::sample::select(RETURNS_RESULT),
        source,
        max_wait,
        option_value("queue"),
        any::<bool>(),
    )
        .prop_flat_map(|(corpus, source, max_wait, queue, trailing_comma)| {
            let mut parts = vec![source, queue];
            parts.extend(max_wait);
            (
                Just(corpus),
                Just(parts).prop_shuffle(),
                Just(trailing_comma),
            )
                .prop_map(|(corpus, parts, trailing_comma)| BadArgs {
                    corpus,
                    parts,
                    trailing_comma,
                })
        })
}

fn lex(source: &str) -> TokenStream {
    source
        .parse()
        .unwrap_or_else(|error| panic!("`{source}` does not lex: {error}"))
}

fn render_value(value: &Value, wrap: Wrap) -> TokenStream {
    let tokens = lex(&value.source);
    match wrap {
        Wrap::Plain => tokens,
        Wrap::Paren => TokenTree::Group(Group::new(Delimiter::Parenthesis, tokens)).into(),
        Wrap::Invisible => TokenTree::Group(Group::new(Delimiter::None, tokens)).into(),
    }
}

fn render_args(case: &BadArgs) -> TokenStream {
    let mut stream = TokenStream::new();
    for (index, part) in case.parts.iter().enumerate() {
        if index > 0 {
            stream.extend(lex(","));
        }
        match part {
            Part::Limit(value, wrap) => stream.extend(render_value(value, *wrap)),
            Part::Opt(name, value, wrap) => {
                stream.extend(lex(&format!("{name} =")));
                stream.extend(render_value(value, *wrap));
            }
            Part::Unknown(name, value) => stream.extend(lex(&format!("{name} = {value}"))),
            Part::NoEq(name, value) => stream.extend(lex(&format!("{name} {value}"))),
            Part::NoValue(name) => stream.extend(lex(&format!("{name} ="))),
            Part::Comma => stream.extend(lex(",")),
        }
    }
    // One trailing comma is allowed; a lone comma is not (that is `Part::Comma`).
    if case.trailing_comma && !case.parts.is_empty() {
        stream.extend(lex(","));
    }
    stream
}

/// Every mistake in the case, as the start of the message it causes. The attribute reports
/// the first it meets, so it must answer with one of these; and with none, it must expand.
/// (Which one comes first is its business: these tests do not pin the order of the checks.)
fn expected_errors(case: &BadArgs) -> Vec<String> {
    let mut errors: Vec<String> = Vec::new();
    let mut limits = 0;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for part in &case.parts {
        match part {
            Part::Limit(value, _) => {
                limits += 1;
                errors.extend(value.error.clone());
            }
            Part::Opt(name, value, _) => {
                *counts.entry(name).or_default() += 1;
                errors.extend(value.error.clone());
            }
            Part::Unknown(name, _) => errors.push(format!(
                "{UNKNOWN}{name}`; expected one of: `limiter`, `max_wait`, `queue`, `key`, `name`"
            )),
            // `name` alone is an expression, so it is read as a positional limit: the
            // error is the missing comma after it, or the limit given twice.
            Part::NoEq(..) => errors.extend([NO_COMMA.to_owned(), LIMIT_TWICE.to_owned()]),
            Part::NoValue(name) => errors.push(
                match *name {
                    "name" => NOT_A_STRING,
                    _ => NO_EXPRESSION,
                }
                .to_owned(),
            ),
            Part::Comma => errors.push(NO_EXPRESSION.to_owned()),
        }
    }
    if limits > 1 {
        errors.push(LIMIT_TWICE.to_owned());
    }
    for (name, &count) in &counts {
        if count > 1 {
            errors.push(format!("`{name}` {SET_TWICE}"));
        }
    }
    let has = |name: &str| counts.contains_key(name);
    if has("limiter") {
        if limits > 0 {
            errors.push(LIMIT_WITH_LIMITER.to_owned());
        }
        if has("key") {
            errors.push(KEY_WITH_LIMITER.to_owned());
        }
        if has("name") {
            errors.push(NAME_WITH_LIMITER.to_owned());
        }
    } else if limits == 0 {
        errors.push(MISSING_LIMIT.to_owned());
    }
    if RETURNS_UNIT.contains(&case.corpus) {
        for name in ["max_wait", "queue"] {
            if has(name) {
                errors.push(format!("`{name}` {NEEDS_RESULT}"));
            }
        }
    }
    errors
}

/// The item errors, which these cases must never reach: their items are valid functions.
/// (Each starts with the attribute's name; no argument error does.)
fn is_item_error(message: &str) -> bool {
    message.starts_with("#[concurrency_limit]") || message.contains("can only be applied")
}

/// Checks one case (the contract of `outcome`, and that the answer is what its mistakes
/// call for); returns the error message, if any.
fn check_bad_args(case: &BadArgs) -> Option<String> {
    let args = render_args(case);
    let item = corpus(case.corpus);
    let result = outcome(&args, &item);
    let expected = expected_errors(case);
    let context = format!("\n  args: {args}\n  item: {item}\n  case: {case:?}");
    match &result {
        None => assert!(
            expected.is_empty(),
            "expanded despite {expected:#?}{context}"
        ),
        Some(message) => {
            assert!(
                !is_item_error(message),
                "a valid function was rejected, so the arguments were not checked: \
                 {message}{context}"
            );
            assert!(
                expected
                    .iter()
                    .any(|error| message.contains(error.as_str())),
                "error {message:?}, expected one of {expected:#?}{context}"
            );
        }
    }
    result
}

proptest! {
    #![proptest_config(config(1000))]

    /// Well-formed arguments with wrong names and values on unmutated functions: they reach
    /// the argument checks, and each fails with the error of one of its mistakes, or, with
    /// none, expands.
    #[test]
    fn bad_arguments_fail_with_an_argument_error(case in bad_args()) {
        check_bad_args(&case);
    }
}

/// The argument errors that `bad_args` must reach, by the start (or a part) of their message:
/// one for each path through `args.rs` and `validate.rs` that rejects arguments. (Which kind of
/// literal a limit or `queue` is, is pinned by `ARGUMENT_ERRORS` and `POLICY_CASES`.)
const REQUIRED_ERRORS: &[&str] = &[
    UNKNOWN,
    SET_TWICE,
    LIMIT_TWICE,
    TOO_LARGE,
    AT_LEAST_ONE,
    NEGATIVE_LIMIT,
    SUFFIXED_LIMIT,
    "the concurrency limit cannot be a",
    LIMIT_WITH_LIMITER,
    KEY_WITH_LIMITER,
    NAME_WITH_LIMITER,
    MISSING_LIMIT,
    "`max_wait` needs a function that returns `Result<T, E>`",
    "`queue` needs a function that returns `Result<T, E>`",
    NEGATIVE_QUEUE,
    "`queue` cannot be a",
    NOT_A_STRING,
    LIMITER_LITERAL,
    NO_EXPRESSION,
    NO_COMMA,
];

/// A message with the parts between backticks elided, to count kinds of error rather than
/// every option name and number.
fn error_kind(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(index, piece)| if index % 2 == 1 { "…" } else { piece })
        .collect::<Vec<_>>()
        .join("`")
}

/// Over a fixed-seed run of `bad_args`, every required argument error is reached, and some
/// cases expand: a generator that drifts away from an error path fails here, not silently.
/// `FUZZ_PRINT_ERRORS=1 cargo test -p limit-macro reach_every -- --nocapture` prints how often
/// each kind of error was reached.
#[test]
fn bad_arguments_reach_every_argument_error() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    const CASES: usize = 3000;
    let mut runner =
        TestRunner::new_with_rng(config(1), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = bad_args();
    let mut messages = std::collections::BTreeMap::<String, usize>::new();
    let mut expanded = 0;
    for _ in 0..CASES {
        let case = strategy
            .new_tree(&mut runner)
            .expect("the strategy generates")
            .current();
        match check_bad_args(&case) {
            Some(message) => *messages.entry(message).or_default() += 1,
            None => expanded += 1,
        }
    }
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for (message, count) in &messages {
        *kinds.entry(error_kind(message)).or_default() += count;
    }
    let missing: Vec<&str> = REQUIRED_ERRORS
        .iter()
        .copied()
        .filter(|required| !messages.keys().any(|message| message.contains(required)))
        .collect();
    assert!(
        missing.is_empty(),
        "never reached in {CASES} cases: {missing:#?}\nreached {} kinds: {kinds:#?}",
        kinds.len()
    );
    assert!(
        expanded >= CASES / 20,
        "only {expanded} of {CASES} cases expanded"
    );
    if std::env::var_os("FUZZ_PRINT_ERRORS").is_some() {
        println!(
            "{expanded} of {CASES} expanded; {} distinct messages, {} kinds:",
            messages.len(),
            kinds.len()
        );
        for (kind, count) in &kinds {
            println!("  {count:5}  {kind}");
        }
    }
}

/// Arguments and the error each causes on every function of the corpus.
const ARGUMENT_ERRORS: &[(&str, &str)] = &[
    ("", MISSING_LIMIT),
    (
        "limits = 5",
        "unknown option `limits`; expected one of: `limiter`, `max_wait`, `queue`, `key`, `name`",
    ),
    ("limit = 5", "unknown option `limit`"),
    ("5, max_wait_ms = 100", "unknown option `max_wait_ms`"),
    ("5, Queue = 10", "unknown option `Queue`"),
    (
        "5, timeout = Duration::from_secs(1)",
        "unknown option `timeout`",
    ),
    ("5, fn = 1", "unknown option `fn`"),
    ("5, limits = 1, limits = 2", "unknown option `limits`"),
    ("5, 6", LIMIT_TWICE),
    ("5, key", LIMIT_TWICE),
    ("5, queue 10", LIMIT_TWICE),
    (
        "5, name = \"a\", name = \"b\"",
        "`name` is set more than once",
    ),
    ("5, key = a, key = b", "`key` is set more than once"),
    (
        "limiter = A, limiter = B",
        "`limiter` is set more than once",
    ),
    // Repeats are found while parsing, before the missing `Result`.
    (
        "5, max_wait = A, max_wait = B",
        "`max_wait` is set more than once",
    ),
    ("5, queue = 1, queue = 2,", "`queue` is set more than once"),
    (
        "limiter = DATABASE, 5",
        "a positional limit cannot be combined with `limiter = DATABASE`",
    ),
    ("5, limiter = crate::db::POOL", LIMIT_WITH_LIMITER),
    (
        "limiter = DATABASE, key = user",
        "`key` cannot be combined with `limiter = DATABASE`",
    ),
    (
        "limiter = DATABASE, name = \"db\"",
        "`name` cannot be combined with `limiter = DATABASE`",
    ),
    ("name = \"api\"", MISSING_LIMIT),
    ("key = user, max_wait = TIMEOUT,", MISSING_LIMIT),
    ("0", AT_LEAST_ONE),
    ("(0)", AT_LEAST_ONE),
    ("0usize, name = \"x\"", AT_LEAST_ONE),
    (
        "-1",
        "the concurrency limit must be a positive integer, found `-1`",
    ),
    ("-(5)", NEGATIVE_LIMIT),
    (
        "2147483648",
        "the concurrency limit `2147483648` is too large: the maximum is 2147483647 \
         (`Limiter::MAX_LIMIT`)",
    ),
    ("18446744073709551615", TOO_LARGE),
    ("340282366920938463463374607431768211456", TOO_LARGE),
    (
        "5u8",
        "the concurrency limit is a `usize`, but `5u8` is a `u8`; write `5`",
    ),
    ("5i32", SUFFIXED_LIMIT),
    (
        "5.0",
        "the concurrency limit cannot be a floating-point literal",
    ),
    ("\"5\"", "the concurrency limit cannot be a string literal"),
    ("'5'", "the concurrency limit cannot be a character literal"),
    ("true", "the concurrency limit cannot be a boolean literal"),
    ("5, name = 5", NOT_A_STRING),
    ("5, name = api", NOT_A_STRING),
    (
        "5, name =",
        "unexpected end of input, expected string literal",
    ),
    ("limiter = 5", LIMITER_LITERAL),
    ("limiter = \"DATABASE\"", LIMITER_LITERAL),
    (
        "limiter =",
        "unexpected end of input, expected an expression",
    ),
    ("limiter = DATABASE.pool pool", NO_COMMA),
    (
        "5, key =",
        "unexpected end of input, expected an expression",
    ),
    ("5, key = , name = \"a\"", NO_EXPRESSION),
    ("5, queue =", NO_EXPRESSION),
    ("5,,", NO_EXPRESSION),
    (", 5", NO_EXPRESSION),
    (",", NO_EXPRESSION),
    ("queue 10", NO_COMMA),
    ("limiter DATABASE", NO_COMMA),
    ("5 6", NO_COMMA),
];

/// Arguments whose fate depends on the function: the error on one that returns something
/// (`None`: it expands, and the type system decides whether that is a fitting `Result`), and
/// the error on one that returns nothing.
const POLICY_CASES: &[(&str, Option<&str>, &str)] = &[
    (
        "5, max_wait = Duration::from_millis(100)",
        None,
        "`max_wait` needs a function that returns `Result<T, E>`",
    ),
    (
        "5, queue = 10",
        None,
        "`queue` needs a function that returns",
    ),
    (
        "5, queue = 0,",
        None,
        "`queue` needs a function that returns",
    ),
    (
        "limiter = DATABASE, queue = QUEUE",
        None,
        "`queue` needs a function that returns",
    ),
    (
        "5, max_wait = TIMEOUT, queue = 2, name = \"x\", key = id",
        None,
        NEEDS_RESULT,
    ),
    (
        "5, queue = -1",
        Some(
            "`queue` cannot be negative; expected the most calls that may wait at once: an \
             integer literal such as `queue = 100`",
        ),
        NEEDS_RESULT,
    ),
    (
        "5, queue = 1.5",
        Some("`queue` cannot be a floating-point literal"),
        NEEDS_RESULT,
    ),
    (
        "5, queue = \"5\"",
        Some("`queue` cannot be a string literal"),
        NEEDS_RESULT,
    ),
    (
        "5, queue = 5u8",
        Some("`queue` cannot be an integer literal of a type other than `usize`"),
        NEEDS_RESULT,
    ),
];

/// The tables above, on every function of the corpus: each argument error is reached
/// whatever the RNG does.
#[test]
fn argument_errors_on_every_item() {
    for (index, source) in CORPUS.iter().enumerate() {
        let item = corpus(index);
        let returns_something = !RETURNS_UNIT.contains(&index);
        let cases = ARGUMENT_ERRORS
            .iter()
            .map(|&(args, error)| (args, Some(error)))
            .chain(POLICY_CASES.iter().map(|&(args, on_result, on_other)| {
                (
                    args,
                    if returns_something {
                        on_result
                    } else {
                        Some(on_other)
                    },
                )
            }));
        for (args, expected) in cases {
            let result = outcome(&lex(args), &item);
            match (&result, expected) {
                (None, None) => {}
                (Some(message), Some(expected)) => assert!(
                    message.contains(expected),
                    "error {message:?}, expected {expected:?}\n  args: {args}\n  item: {source}"
                ),
                _ => panic!(
                    "got {result:?}, expected {expected:?}\n  args: {args}\n  item: {source}"
                ),
            }
        }
    }
}

/// `RETURNS_UNIT` names the right functions.
#[test]
fn returns_unit_lists_the_functions_returning_nothing() {
    for (index, source) in CORPUS.iter().enumerate() {
        let signature = source.split('{').next().unwrap_or_default();
        assert_eq!(
            RETURNS_UNIT.contains(&index),
            !signature.contains("->"),
            "{source}"
        );
    }
}

/// `RETURNS_RESULT` names the right functions.
#[test]
fn returns_result_lists_the_functions_returning_a_result() {
    for (index, source) in CORPUS.iter().enumerate() {
        let signature = source.split('{').next().unwrap_or_default();
        assert_eq!(
            RETURNS_RESULT.contains(&index),
            signature.contains("Result<"),
            "{source}"
        );
    }
}
