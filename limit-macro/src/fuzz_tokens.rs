//! The token fuzzer: property tests of the whole attribute,
//! [`expand_attribute`](crate::expand_attribute), on random input: random token trees as the
//! arguments, and as the item either a valid `async fn` from the corpus
//! (`fuzz_harness::CORPUS`, or one of the shapes the fast reader reads, `fuzz_harness::SHAPES`)
//! mutated at random (tokens dropped, duplicated, swapped, replaced, inserted, at any depth)
//! or a fully random token stream.
//!
//! What this proves, on every input tried: the attribute meets the contract that
//! `fuzz_harness::outcome` checks. It never panics, and it either fails cleanly, emitting the
//! item exactly as written followed by exactly one `::core::compile_error!("…")`, or succeeds
//! with an expansion that contains no error and parses as one function item, no longer
//! `async`, with the same name; and an item the fast reader takes expands as syn reads it.
//!
//! And on well-formed arguments over the unmutated corpus, it always succeeds, so the
//! success branch above is exercised and not only the error branch.
//!
//! Random arguments rarely get past the first token, and a mutated item usually fails before
//! the arguments are read: the argument errors are reached, each on purpose, by
//! `fuzz_arg_errors.rs`.
//!
//! A few thousand cases by default (seconds in a debug build); `PROPTEST_CASES=N` for more.
//! At full strength, together with `fuzz_arg_errors.rs`:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p limit-macro fuzz
//! ```
//!
//! (`fuzz_tokens` instead of `fuzz` runs this file alone.)

use std::fmt::Write as _;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;

use crate::fuzz_harness::{CORPUS, SHAPES, config, corpus, outcome};

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
    "weight",
    "overloaded",
    "adaptive",
    "initial",
    "min",
    "max",
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
// Items: the corpus of valid functions and the fast reader's shapes (in `fuzz_harness`),
// mutated.

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
        source: &'static str,
        mutations: Vec<Located>,
    },
    Random(Vec<Tok>),
}

fn item() -> impl Strategy<Value = Item> {
    let source = prop_oneof![prop::sample::select(CORPUS), prop::sample::select(SHAPES),];
    prop_oneof![
        4 => (source, prop::collection::vec(mutation(), 0..4))
            .prop_map(|(source, mutations)| Item::Mutated { source, mutations }),
        1 => toks(12).prop_map(Item::Random),
    ]
}

fn render_item(item: &Item) -> TokenStream {
    match item {
        Item::Mutated { source, mutations } => {
            let item = source.parse().expect("the corpus lexes");
            mutations.iter().fold(item, |stream, located| {
                mutate(stream, &located.path, &located.mutation)
            })
        }
        Item::Random(toks) => render(toks),
    }
}

/// Arguments: mostly random token trees, sometimes well-formed options with random values, or
/// `adaptive` with random parameters, so that the option parser and the validation behind it
/// are reached, not only the first token's rejection.
fn args() -> impl Strategy<Value = Vec<Tok>> {
    let option = (
        prop::sample::select(crate::args::OPTIONS),
        prop::collection::vec(tok(), 1..3),
    )
        .prop_map(|(name, value)| {
            let mut toks = vec![Tok::Ident(name.to_owned()), Tok::Punct('=', Spacing::Alone)];
            toks.extend(value);
            toks
        });
    // `adaptive`, alone, or with parameters: `name = value` pairs with random values, or
    // random tokens.
    let param = (
        prop::sample::select(&["initial", "min", "max", "start"][..]),
        prop::collection::vec(tok(), 1..3),
    )
        .prop_map(|(name, value)| {
            let mut toks = vec![Tok::Ident(name.to_owned()), Tok::Punct('=', Spacing::Alone)];
            toks.extend(value);
            toks
        });
    let params = prop_oneof![
        3 => prop::collection::vec(param, 0..4).prop_map(|params| {
            let mut toks = Vec::new();
            for (index, param) in params.into_iter().enumerate() {
                if index > 0 {
                    toks.push(Tok::Punct(',', Spacing::Alone));
                }
                toks.extend(param);
            }
            toks
        }),
        1 => toks(4),
    ];
    let adaptive = prop::option::of(params).prop_map(|params| {
        let mut toks = vec![Tok::Ident("adaptive".to_owned())];
        toks.extend(params.map(|params| Tok::Group(Delimiter::Parenthesis, params)));
        toks
    });
    let positional = prop::collection::vec(tok(), 1..3);
    let list = prop::collection::vec(
        prop_oneof![3 => option, 1 => adaptive, 3 => positional],
        0..4,
    )
    .prop_map(|parts| {
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

/// Runs the attribute and checks its contract; returns whether it succeeded.
fn check(args: &TokenStream, item: &TokenStream) -> bool {
    outcome(args, item).is_none()
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
    // `adaptive`, with bounds that are valid whatever the others: `initial` within `[1, 1000]`
    // unless `max` is an expression, and `min <= max`.
    let adaptive = (
        prop::option::of(1..=1000_u32),
        prop::option::of(1..=1000_u32),
        prop::option::of(prop_oneof![
            (1000..=2_147_483_647_u32).prop_map(|n| n.to_string()),
            Just("MAX".to_owned()),
        ]),
        any::<bool>(),
    )
        .prop_map(|(initial, min, max, parens)| {
            let min = min.map(|min| min.min(initial.unwrap_or(min)));
            let params: Vec<String> = [
                initial.map(|n| format!("initial = {n}")),
                min.map(|n| format!("min = {n}")),
                max.map(|n| format!("max = {n}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            if params.is_empty() && !parens {
                "adaptive".to_owned()
            } else {
                format!("adaptive({})", params.join(", "))
            }
        });
    let adaptive = (
        adaptive,
        prop::option::of("[a-z][a-z-]{0,8}"),
        prop::option::of(Just("key = x.clone()")),
        prop::option::of(Just("weight = 2")),
        prop::option::of(prop_oneof![
            Just("overloaded = is_overloaded"),
            Just("overloaded = |_| false"),
        ]),
    )
        .prop_map(|(mut args, name, key, weight, overloaded)| {
            if let Some(name) = name {
                let _ = write!(args, ", name = {name:?}");
            }
            for option in [key, weight, overloaded].into_iter().flatten() {
                args += ", ";
                args += option;
            }
            args
        });
    prop_oneof![
        3 => own,
        2 => adaptive,
        1 => Just("limiter = DATABASE".to_owned()),
        1 => Just("limiter = crate::db::POOL,".to_owned()),
        1 => Just("limiter = DATABASE, overloaded = Self::overloaded".to_owned()),
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
