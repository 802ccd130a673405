//! What the two fuzzers of the attribute share, written once: the corpus of functions the
//! attribute accepts (`CORPUS`, and which of them return a `Result` or nothing), [`outcome`],
//! which runs [`expand_attribute`] and checks the contract every output must meet, and
//! [`config`], the proptest configuration (each test's case count, which `PROPTEST_CASES`
//! overrides).
//!
//! The contract, on every input:
//!
//! - the attribute never panics (a panic in a proc macro is an ICE-like "proc macro panicked"
//!   error with no span, the opposite of the one clear error the crate promises);
//! - it either fails cleanly, emitting the item exactly as written followed by exactly one
//!   `::core::compile_error!("…")`, or succeeds with an expansion that contains no error and
//!   parses as one function item, no longer `async`, with the same name;
//! - when the fast reader (`scan.rs`) takes the item, the expansion is the one the reference
//!   reader (syn, `item::parse`) gives, token for token (`>>` and `> >` count as the same:
//!   syn prints each `>` of a type apart). So the fast reader accepts nothing syn rejects, and
//!   reads what it accepts as syn does.
//!
//! `SHAPES` are functions in the fast reader's grammar, which the fuzzers mutate too, and
//! `NOT_SCANNED` some it leaves to syn; this file's tests check that each goes its way.
//!
//! The fuzzers are `fuzz_tokens.rs` (random token trees and mutated items) and
//! `fuzz_arg_errors.rs` (well-formed arguments with wrong names and values, each knowing the
//! error it must cause). This file's own tests check that `RETURNS_RESULT` and `RETURNS_UNIT`
//! name the right functions of the corpus.
//!
//! They live inside the crate because a proc-macro crate can export only macros:
//! `expand_attribute` is unreachable from an integration test. `proc_macro2` falls back to its
//! own implementation outside a macro invocation, so they run as plain unit tests.
//!
//! The three modules' names all contain `fuzz`, so one command runs all of them at full
//! strength:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p limit-macro fuzz
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use proptest::prelude::ProptestConfig;

use crate::expand_attribute;

// ---------------------------------------------------------------------------------------
// The corpus: valid functions, which `fuzz_tokens` mutates and `fuzz_arg_errors` keeps whole.

/// Functions the attribute accepts, in the shapes the README lists.
pub(crate) const CORPUS: &[&str] = &[
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
pub(crate) const RETURNS_RESULT: &[usize] = &[2, 11, 12];

/// The functions of `CORPUS` that return nothing: the only ones on which the attribute itself
/// rejects `max_wait` and `queue` (any other return type is left to the type system).
pub(crate) const RETURNS_UNIT: &[usize] = &[1, 8, 9];

/// Functions in the fast reader's grammar (see `scan.rs`): each is read without syn, to the
/// same expansion.
pub(crate) const SHAPES: &[&str] = &[
    "async fn unit() {}",
    "pub async fn load<T: Display>(store: &Store, id: u64, tag: T) -> Result<String, Error> { let row = store.get(id).await?; if row.is_empty() { return Err(Error::Invalid(format!(\"{tag}: empty\"))); } Ok(format!(\"{tag}/{row}\")) }",
    "pub(crate) async fn count<K: AsRef<str>>(store: &Store, keys: &[K], limit: usize,) -> Result<usize, Error> { Ok(keys.len().min(limit)) }",
    "async fn pick<'a>(store: &'a Store, ids: Vec<u64>, sep: &str) -> Result<Vec<&'a str>, Error> { Ok(Vec::new()) }",
    "async fn total<I>(store: &Store, ids: I) -> Result<u64, Error> where I: IntoIterator<Item = u64> + Send, I::IntoIter: Send, { Ok(0) }",
    "#[must_use] #[doc = \"docs\"] #[cfg_attr(test, allow(dead_code))] pub(super) async fn get<'a, 'b: 'a, T: ?Sized + Sync + 'b,>(&'a self, key: &'b T) -> Option<&'a str> { None }",
    "async fn take(mut self, mut buf: Vec<u8>) -> (usize, Vec<u8>) { buf.push(1); (buf.len(), buf) }",
    "async fn update(&mut self, delta: i64) -> () { self.total += delta; }",
    "async fn nested(x: ((),), y: (u8)) -> (()) {}",
    "pub(self) async fn paths(a: ::std::collections::HashMap<String, Vec<Option<u8>>>, b: crate::a::B, c: self::C, d: super::D<'static, u8>, e: Self) -> Self::Out { todo!() }",
    "async fn slices(a: &[&'static str], b: &mut [u8], c: &&u8, d: &'static mut Box<[u8]>) -> Box<[u8]> { a.len(); Box::new([]) }",
    "#[tracing::instrument(skip_all)] async fn traced(&self, x: u8) -> u8 { x }",
    "async fn r#async(r#type: u8) -> u8 { r#type }",
    "async fn bounds<'a, T>(x: &'a T) -> Vec<T> where T: Clone + 'static + std::fmt::Debug, 'a: 'a + 'static { vec![x.clone()] }",
    "async fn by_value(self) -> usize { let returned = 1; returned }",
    "#[::core::prelude::v1::must_use] async fn uses_return_later() -> Result<(), Error> { let f = || { return 1; }; f(); Ok(()) }",
];

/// Functions the attribute accepts that the fast reader leaves to syn: another shape, or an
/// inner attribute.
pub(crate) const NOT_SCANNED: &[&str] = &[
    "async fn patterns((a, b): (u8, u8), _: Token) -> u16 { u16::from(a) + u16::from(b) }",
    "async fn returns_impl() -> impl Iterator<Item = u8> { 0..3 }",
    "async fn inner_attrs() { #![allow(unused)] let x = 1; }",
    "async fn consume(self: Arc<Self>) {}",
    "async unsafe fn raw(p: *const u8) -> u8 { unsafe { *p } }",
    "async fn array(a: [u8; 4]) -> [u8; 4] { a }",
    "async fn dyn_box() -> Box<dyn std::error::Error + Send> { todo!() }",
    "async fn callback(f: impl Fn(u8) -> u8) -> u8 { f(1) }",
    "async fn qualified<T: Iterator>(x: <T as Iterator>::Item) {}",
    "async fn late_lifetime<T, 'a>(x: &'a T) {}",
    "pub(in crate::a) async fn restricted() {}",
    "async fn cfg_param(#[cfg(test)] x: u8) {}",
    "async fn const_generic<const N: usize>(x: [u8; N]) {}",
    "async fn turbofish(x: Vec::<u8>) {}",
    "async fn macro_type(x: ty!()) {}",
    "async fn wild(_: u8) {}",
    "async fn late_lifetime_argument(x: Cow<str, 'static>) {}",
];

/// The expansion's tokens as text, with `>>` and `> >` alike: every punctuation apart.
fn normalized(stream: TokenStream) -> String {
    let mut text = String::new();
    for token in stream {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("«", "»"),
                };
                text += open;
                text += &normalized(group.stream());
                text += close;
            }
            TokenTree::Punct(punct) => text.push(punct.as_char()),
            other => text += &other.to_string(),
        }
        text.push(' ');
    }
    text
}

/// When the fast reader takes the item, the reference reader expands it to the same tokens,
/// and the attribute's output is that expansion.
fn check_fast_path(args: &TokenStream, item: &TokenStream, output: &TokenStream, context: &str) {
    let Some(fast) = crate::fast_path(args, item) else {
        return;
    };
    let reference = crate::reference_path(args.clone(), item.clone());
    assert_eq!(
        normalized(fast.clone()),
        normalized(reference),
        "the fast reader and syn expand the item differently{context}"
    );
    assert_eq!(fast.to_string(), output.to_string(), "{context}");
}

pub(crate) fn corpus(index: usize) -> TokenStream {
    CORPUS[index].parse().expect("the corpus lexes")
}

// ---------------------------------------------------------------------------------------
// The contract.

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

/// Runs the attribute and checks its contract; returns `None` if it expanded, else the message
/// of its one `compile_error!`.
pub(crate) fn outcome(args: &TokenStream, item: &TokenStream) -> Option<String> {
    let output = catch_unwind(AssertUnwindSafe(|| {
        expand_attribute(args.clone(), item.clone())
    }))
    .unwrap_or_else(|_| panic!("expand_attribute panicked\n  args: {args}\n  item: {item}"));
    let context = format!("\n  args: {args}\n  item: {item}\n  output: {output}");
    check_fast_path(args, item, &output, &context);

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

pub(crate) fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // No regression file in the source tree: a failure prints its minimal input.
        failure_persistence: None,
        ..ProptestConfig::default()
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

/// Arguments of every kind, valid or not on a given function, for `each_shape_goes_its_way`:
/// the checks that read the signature (a borrowed limiter, a limit that reads an argument, a
/// policy on a function returning nothing, a weight, an adaptive limit and `overloaded`, whose
/// calls are samples) must see through either reader alike.
const ARGUMENT_KINDS: &[&str] = &[
    "5",
    "MAX_JOBS, name = \"jobs\", key = 1",
    "limiter = DATABASE",
    "4, weight = 2",
    "4, weight = buf.len(), max_wait = Duration::from_secs(1)",
    "4, queue = 0",
    "4, key = id, max_wait = timeout",
    "limiter = &self.limiter",
    "limiter = self.limits.clone()",
    "limiter = &store",
    "limiter = &buf",
    "limiter = &key",
    "limiter = &a",
    "limiter = store",
    "limiter = x",
    "self.limit",
    "id",
    "r#type",
    "adaptive",
    "adaptive(initial = 2, max = 8), name = \"a\", key = id",
    "adaptive(min = 1,), weight = buf.len(), overloaded = is_overloaded",
    "adaptive, max_wait = Duration::from_secs(1), queue = 4",
    "name = \"first\", adaptive(max = MAX)",
    "adaptive(max = store)",
    "adaptive(min = 0)",
    "5, adaptive",
    "5, overloaded = is_overloaded",
    "limiter = DATABASE, overloaded = |_| false",
    "limiter = &self.limiter, overloaded = Self::overloaded",
];

/// Every function of `SHAPES` goes the fast way, to the reference's expansion, under each kind
/// of arguments (`outcome` compares the two); every one of `NOT_SCANNED` goes syn's.
#[test]
fn each_shape_goes_its_way() {
    for source in SHAPES {
        let item: TokenStream = source.parse().expect("the shape lexes");
        assert!(
            crate::scan::function(&item).is_some(),
            "not scanned: {source}"
        );
        let args: TokenStream = "5".parse().unwrap();
        assert!(crate::fast_path(&args, &item).is_some(), "{source}");
        for args in ARGUMENT_KINDS {
            outcome(&args.parse().expect("the arguments lex"), &item);
        }
    }
    for source in NOT_SCANNED {
        let item: TokenStream = source.parse().expect("the function lexes");
        assert!(crate::scan::function(&item).is_none(), "scanned: {source}");
        assert_eq!(outcome(&"5".parse().unwrap(), &item), None, "{source}");
    }
}

/// The fast reader's keywords are the words syn does not take as an identifier.
#[test]
fn the_fast_reader_knows_syns_keywords() {
    let words = [
        "_",
        "abstract",
        "as",
        "async",
        "auto",
        "await",
        "become",
        "box",
        "break",
        "const",
        "continue",
        "crate",
        "default",
        "do",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro",
        "macro_rules",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "pub",
        "raw",
        "ref",
        "return",
        "safe",
        "Self",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "union",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
        "x",
        "T",
        "r#fn",
        "Result",
        "async_trait",
        "selfish",
        "types",
    ];
    for word in words {
        assert_eq!(
            crate::scan::is_keyword(word),
            syn::parse_str::<syn::Ident>(word).is_err(),
            "{word}"
        );
    }
}
