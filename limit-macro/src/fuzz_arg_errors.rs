//! The argument errors: well-formed arguments with wrong names and values, on unmutated
//! functions of the corpus (`fuzz_harness::CORPUS`), each knowing the error it must cause.
//!
//! Random token trees (`fuzz_tokens.rs`) almost never get past the argument parser's first
//! token, and a mutated item usually stops the attribute before it reads the arguments at all.
//! These cases are arguments as a user writes them, with the mistakes a user makes (unknown or
//! repeated options, limits out of range or of the wrong type, `limiter` with a limit, `queue`
//! without a `Result`, missing `=` or values, stray commas; `adaptive` with a limit or a
//! limiter, or given twice, and its bounds unknown, repeated, of the wrong type, out of range
//! or out of order; `overloaded` with a fixed limit), on functions that the attribute accepts:
//! so every error they cause is an argument error. Each case carries what it got wrong, and
//! `expected_error` works out, in the order the attribute checks things (the parser in
//! `args.rs`, left to right, then `validate.rs`), the one message it must answer with. So the
//! property is exact: a case with no mistake expands, and a case with mistakes fails with the
//! message of the first one the attribute meets, never with an item error. Every output also
//! meets the contract that `fuzz_harness::outcome` checks (no panic; an expansion, or the item
//! plus exactly one error).
//!
//! - `bad_arguments_fail_with_an_argument_error`: that property, on random cases of the
//!   strategy `bad_args` (1,000 by default, `PROPTEST_CASES=N` for more);
//! - `bad_arguments_reach_every_argument_error`: a fixed-seed run of `bad_args` must reach
//!   every argument error (`REQUIRED_ERRORS`), and expand often enough (3,000 cases, its own
//!   count, which `PROPTEST_CASES` does not change);
//! - `argument_errors_on_every_item`: tables of arguments (`ARGUMENT_ERRORS`, `POLICY_CASES`)
//!   pin each error on every function of the corpus, whatever the RNG does, and
//!   `ADAPTIVE_ACCEPTED` the forms of `adaptive` and `overloaded` that must expand.
//!
//! At full strength, together with `fuzz_tokens.rs`:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p limit-macro fuzz
//! ```
//!
//! (`fuzz_arg_errors` instead of `fuzz` runs this file alone.)

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use proptest::prelude::*;

use crate::args::{ADAPTIVE_PARAMS, OPTIONS as OPTION_NAMES};
use crate::fuzz_harness::{CORPUS, RETURNS_RESULT, RETURNS_UNIT, config, corpus, outcome};
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
/// `adaptive`'s errors.
const ADAPTIVE_TWICE: &str = "`adaptive` is given more than once";
const UNKNOWN_PARAMETER: &str = "unknown parameter `";
const ADAPTIVE_WITH_LIMIT: &str = "`adaptive` takes the place of the limit, and `";
const ADAPTIVE_WITH_LIMITER: &str = "`adaptive` cannot be combined with `limiter = ";
const MIN_ZERO: &str =
    "`min` of `adaptive` must be at least 1: a limit of 0 would never let a call run";
const BOUND_ZERO: &str =
    "an adaptive limit never goes to 0: `max` and `initial` must be at least 1";
const MIN_ABOVE_MAX: &str = "` of `adaptive` is above its `max = ";
const INITIAL_OUTSIDE: &str = "` of `adaptive` is outside [min, max] = [";
const BOUND_TOO_LARGE: &str = "` of `adaptive` is too large: the maximum is 2147483647";
const OVERLOADED_WITH_FIXED: &str = "`overloaded` needs an adaptive limit";
/// A parameter of `adaptive` that is not a name; syn's, for one that has no `=`.
const NO_IDENT: &str = "`adaptive` takes named bounds: expected one of `initial`, `min`, `max`";
const NO_EQ: &str = "expected `=`";

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

/// Any `usize` expression is a weight to the attribute (the type system checks the type).
const WEIGHTS: Values = &[
    ("1", None),
    ("0", None),
    ("body.len()", None),
    ("self.cost", None),
    ("usize::from(n)", None),
    ("(a + b) << 10", None),
];

/// Any expression is a predicate to the attribute (the type system checks that it is a
/// `fn(&Output) -> bool`).
const OVERLOADEDS: Values = &[
    ("is_overloaded", None),
    ("Self::overloaded", None),
    ("crate::policy::overloaded", None),
    ("|result: &Result<u32, Error>| result.is_err()", None),
    ("|_| false", None),
    ("policy.check()", None),
];

/// What the attribute makes of a bound of `adaptive(…)` (`literal_bound` in `validate.rs`).
#[derive(Clone, Copy, Debug)]
enum Bound {
    /// An integer literal of that value, within `MAX_LIMIT`: checked against the others.
    Int(u128),
    /// An expression: checked when the limiter is made, not by the attribute.
    Expr,
    /// A literal above `MAX_LIMIT` (or above any integer type).
    TooLarge,
    /// A negation, of a literal or not.
    Negative,
    /// A literal that is not a `usize` integer, described as the message does.
    NotAnInteger(&'static str),
}

/// Bounds as source, with what the attribute makes of them.
const BOUNDS: &[(&str, Bound)] = &[
    ("1", Bound::Int(1)),
    ("2", Bound::Int(2)),
    ("4", Bound::Int(4)),
    ("8usize", Bound::Int(8)),
    ("0x10", Bound::Int(16)),
    ("64", Bound::Int(64)),
    ("999", Bound::Int(999)),
    ("1_000", Bound::Int(1000)),
    ("1001", Bound::Int(1001)),
    ("5000", Bound::Int(5000)),
    ("2147483647", Bound::Int(2_147_483_647)),
    ("0", Bound::Int(0)),
    ("0usize", Bound::Int(0)),
    ("0x0", Bound::Int(0)),
    ("MAX", Bound::Expr),
    ("Self::MIN", Bound::Expr),
    ("floor()", Bound::Expr),
    ("config.max", Bound::Expr),
    ("2147483648", Bound::TooLarge),
    ("0x80000000", Bound::TooLarge),
    ("18446744073709551616usize", Bound::TooLarge),
    (
        "99999999999999999999999999999999999999999999",
        Bound::TooLarge,
    ),
    ("-1", Bound::Negative),
    ("-0", Bound::Negative),
    ("-(3)", Bound::Negative),
    ("-MAX", Bound::Negative),
    ("-5.0", Bound::Negative),
    ("6.5", Bound::NotAnInteger("a floating-point literal")),
    ("1e3", Bound::NotAnInteger("a floating-point literal")),
    ("\"64\"", Bound::NotAnInteger("a string literal")),
    (
        "8u8",
        Bound::NotAnInteger("an integer literal of a type other than `usize`"),
    ),
    (
        "0i32",
        Bound::NotAnInteger("an integer literal of a type other than `usize`"),
    ),
    ("true", Bound::NotAnInteger("a boolean literal")),
    ("'x'", Bound::NotAnInteger("a character literal")),
    ("b'x'", Bound::NotAnInteger("a byte literal")),
];

/// Names close to a parameter of `adaptive`'s, as a user might misremember them.
const NEAR_MISS_PARAMS: &[&str] = &[
    "start",
    "initial_limit",
    "init",
    "minimum",
    "maximum",
    "min_limit",
    "max_limit",
    "Max",
    "MIN",
    "limit",
    "floor",
    "ceiling",
    "target",
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
    /// `adaptive` in the place of the limit: alone (`None`), or with its parameters in
    /// parentheses, and a trailing comma inside them if `true`.
    Adaptive(Option<Vec<Param>>, bool),
}

/// A parameter of `adaptive(…)`.
#[derive(Clone, Debug)]
enum Param {
    /// `initial`, `min` or `max` `= value`.
    Bound(&'static str, String, Bound, Wrap),
    /// `name = 1` with a name `adaptive` does not know.
    Unknown(String),
    /// `min 5`: the `=` forgotten.
    NoEq(&'static str),
    /// `min =` and nothing.
    NoValue(&'static str),
    /// A value without a name: `adaptive(64)`.
    Positional,
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
        "weight" => plain(WEIGHTS),
        "name" => plain(NAMES),
        "overloaded" => plain(OVERLOADEDS),
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
    // `adaptive = …` has an error of its own (it belongs in the place of the limit).
    .prop_filter("an option's name", |name| {
        !OPTION_NAMES.contains(&name.as_str()) && name != "adaptive"
    })
}

/// A bound of `adaptive(…)`: from the table, or any integer, small (so that bounds are
/// often out of order) or beyond `MAX_LIMIT`.
fn bound() -> impl Strategy<Value = (String, Bound)> {
    prop_oneof![
        4 => prop::sample::select(BOUNDS).prop_map(|(source, bound)| (source.to_owned(), bound)),
        3 => (0..=2000_u128).prop_map(|n| (n.to_string(), Bound::Int(n))),
        1 => (1..=MAX_LIMIT).prop_map(|n| (n.to_string(), Bound::Int(n))),
        1 => (MAX_LIMIT + 1..=u128::MAX).prop_map(|n| (n.to_string(), Bound::TooLarge)),
    ]
}

fn bound_param(name: &'static str) -> impl Strategy<Value = Param> {
    (bound(), wrap())
        .prop_map(move |((source, bound), wrap)| Param::Bound(name, source, bound, wrap))
}

/// A mistake among the parameters of `adaptive(…)`, or a bound given a second time.
fn param_mistake() -> BoxedStrategy<Param> {
    let known = prop::sample::select(ADAPTIVE_PARAMS);
    prop_oneof![
        3 => prop_oneof![
            3 => prop::sample::select(NEAR_MISS_PARAMS).prop_map(str::to_owned),
            1 => "[a-z][a-z0-9_]{0,8}",
        ]
        .prop_filter("a parameter's name", |name| {
            !ADAPTIVE_PARAMS.contains(&name.as_str())
        })
        .prop_map(Param::Unknown),
        1 => known.clone().prop_map(Param::NoEq),
        1 => known.clone().prop_map(Param::NoValue),
        1 => Just(Param::Positional),
        3 => known.prop_flat_map(bound_param),
    ]
    .boxed()
}

/// `adaptive`, alone or with any of its bounds in any order, and sometimes a mistake among
/// them.
///
/// Boxed, as are its bounds: the value trees of unions of unboxed strategies are large, and a
/// debug build's test thread (2 MiB of stack) overflows on them.
fn adaptive() -> BoxedStrategy<Part> {
    let params = (
        prop::option::of(bound_param("initial")),
        prop::option::of(bound_param("min")),
        prop::option::of(bound_param("max")),
        // A mistake in one case of four: most cases then reach the checks of the bounds.
        prop::option::weighted(0.25, param_mistake()),
    )
        .prop_flat_map(|(initial, min, max, mistake)| {
            let params: Vec<Param> = [initial, min, max, mistake].into_iter().flatten().collect();
            Just(params).prop_shuffle()
        });
    prop_oneof![
        1 => Just(Part::Adaptive(None, false)),
        4 => (params, any::<bool>()).prop_map(|(params, trailing)| {
            Part::Adaptive(Some(params), trailing)
        }),
    ]
    .boxed()
}

/// A part added to a well-formed list: usually a mistake, sometimes a second copy of an
/// option, a limit or `adaptive` (a mistake only if the list already has one, or `adaptive`
/// with a limit, which `expected_error` works out).
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
        2 => (limit_value(), wrap())
            .prop_map(|(value, wrap)| Part::Limit(value, wrap))
            .boxed(),
        1 => adaptive(),
    ]
}

/// Arguments as a user writes them: a limit, `adaptive` or a shared limiter (or, sometimes,
/// none of them), options with valid or invalid values, and up to two extra parts, in any
/// order. A quarter of the cases are valid but for `queue`, on a function that returns a
/// `Result`: its checks come last, so any other mistake would hide them; and a quarter are
/// `adaptive` with valid options, so that its bounds are the only things that can be wrong.
fn bad_args() -> impl Strategy<Value = BadArgs> {
    prop_oneof![2 => any_mistakes(), 1 => only_queue_wrong(), 1 => only_bounds_wrong()]
}

fn any_mistakes() -> impl Strategy<Value = BadArgs> {
    let source = prop_oneof![
        5 => (limit_value(), wrap()).prop_map(|(value, wrap)| vec![Part::Limit(value, wrap)]),
        2 => values(LIMITERS).prop_map(|value| vec![Part::Opt("limiter", value, Wrap::Plain)]),
        2 => adaptive().prop_map(|part| vec![part]),
        1 => Just(Vec::new()),
    ];
    let options = (
        prop::option::weighted(0.25, option_value("name")),
        prop::option::weighted(0.25, option_value("key")),
        prop::option::weighted(0.3, option_value("max_wait")),
        prop::option::weighted(0.3, option_value("queue")),
        prop::option::weighted(0.2, option_value("weight")),
        prop::option::weighted(0.25, option_value("overloaded")),
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
        |(
            corpus,
            source,
            (name, key, max_wait, queue, weight, overloaded),
            extras,
            trailing_comma,
        )| {
            let mut parts = source;
            parts.extend(
                [name, key, max_wait, queue, weight, overloaded]
                    .into_iter()
                    .flatten(),
            );
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
        1 => Just(Part::Adaptive(None, false)),
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

/// `adaptive`, its bounds valid or not, with valid options (`max_wait` and `queue` only on a
/// function that returns a `Result`): only the bounds can be wrong.
fn only_bounds_wrong() -> impl Strategy<Value = BadArgs> {
    let options = (
        prop::option::of(
            valid_values(NAMES).prop_map(|value| Part::Opt("name", value, Wrap::Plain)),
        ),
        prop::option::of(valid_values(KEYS).prop_map(|value| Part::Opt("key", value, Wrap::Plain))),
        prop::option::of(
            valid_values(MAX_WAITS).prop_map(|value| Part::Opt("max_wait", value, Wrap::Plain)),
        ),
        prop::option::of(
            valid_values(OVERLOADEDS).prop_map(|value| Part::Opt("overloaded", value, Wrap::Plain)),
        ),
    );
    (
        prop::sample::select(RETURNS_RESULT),
        adaptive(),
        options,
        any::<bool>(),
    )
        .prop_flat_map(
            |(corpus, adaptive, (name, key, max_wait, overloaded), trailing_comma)| {
                let mut parts = vec![adaptive];
                parts.extend([name, key, max_wait, overloaded].into_iter().flatten());
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
            Part::Adaptive(params, trailing) => {
                stream.extend(lex("adaptive"));
                if let Some(params) = params {
                    stream.extend([TokenTree::Group(Group::new(
                        Delimiter::Parenthesis,
                        render_params(params, *trailing),
                    ))]);
                }
            }
        }
    }
    // One trailing comma is allowed; a lone comma is not (that is `Part::Comma`).
    if case.trailing_comma && !case.parts.is_empty() {
        stream.extend(lex(","));
    }
    stream
}

fn render_params(params: &[Param], trailing_comma: bool) -> TokenStream {
    let mut stream = TokenStream::new();
    for (index, param) in params.iter().enumerate() {
        if index > 0 {
            stream.extend(lex(","));
        }
        match param {
            Param::Bound(name, source, _, wrap) => {
                stream.extend(lex(&format!("{name} =")));
                stream.extend(render_value(
                    &Value {
                        source: source.clone(),
                        error: None,
                    },
                    *wrap,
                ));
            }
            Param::Unknown(name) => stream.extend(lex(&format!("{name} = 1"))),
            Param::NoEq(name) => stream.extend(lex(&format!("{name} 5"))),
            Param::NoValue(name) => stream.extend(lex(&format!("{name} ="))),
            Param::Positional => stream.extend(lex("64")),
        }
    }
    if trailing_comma && !params.is_empty() {
        stream.extend(lex(","));
    }
    stream
}

/// The error the attribute must answer with (all of its message, or a part that tells it
/// from every other), or `None` if the case has no mistake: the first mistake in the order
/// the attribute checks things. The parser (`args.rs`) reads the parts left to right and
/// stops at the first part it cannot read; then `validate.rs` checks where the permits come
/// from (`adaptive`, `limiter`, or a limit), `overloaded`, and last `max_wait` and `queue`.
fn expected_error(case: &BadArgs) -> Option<String> {
    parse_error(&case.parts).or_else(|| validation_error(case))
}

/// "unknown option `name`; expected one of: …", with every option.
fn unknown_option(name: &str) -> String {
    format!(
        "{UNKNOWN}{name}`; expected one of: {}",
        OPTION_NAMES
            .iter()
            .map(|option| format!("`{option}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The first part the parser rejects, and why.
fn parse_error(parts: &[Part]) -> Option<String> {
    let mut limits = 0;
    let mut options = std::collections::BTreeSet::<&str>::new();
    let mut adaptive = false;
    for part in parts {
        match part {
            Part::Limit(..) => {
                if limits > 0 {
                    return Some(LIMIT_TWICE.to_owned());
                }
                limits += 1;
            }
            Part::Opt(name, value, _) => {
                // The value is read first: only `name`'s can fail to parse (it must be a
                // string literal); every other value is an expression, checked later.
                if *name == "name" && value.error.is_some() {
                    return value.error.clone();
                }
                if !options.insert(name) {
                    return Some(format!("`{name}` {SET_TWICE}"));
                }
            }
            Part::Unknown(name, _) => return Some(unknown_option(name)),
            // `name` alone is an expression, so it is read as a positional limit: the limit
            // given twice, or else the missing comma after it.
            Part::NoEq(..) => {
                return Some(if limits > 0 { LIMIT_TWICE } else { NO_COMMA }.to_owned());
            }
            Part::NoValue(name) => {
                return Some(
                    if *name == "name" {
                        NOT_A_STRING
                    } else {
                        NO_EXPRESSION
                    }
                    .to_owned(),
                );
            }
            Part::Comma => return Some(NO_EXPRESSION.to_owned()),
            Part::Adaptive(params, _) => {
                if let Some(error) = params.as_deref().and_then(param_error) {
                    return Some(error);
                }
                if adaptive {
                    return Some(ADAPTIVE_TWICE.to_owned());
                }
                adaptive = true;
            }
        }
    }
    None
}

/// The first parameter of `adaptive(…)` that the parser rejects, and why.
fn param_error(params: &[Param]) -> Option<String> {
    let mut given = std::collections::BTreeSet::<&str>::new();
    for param in params {
        match param {
            Param::Bound(name, ..) => {
                if !given.insert(name) {
                    return Some(format!("`{name}` {SET_TWICE}"));
                }
            }
            Param::Unknown(name) => {
                return Some(format!(
                    "{UNKNOWN_PARAMETER}{name}` of `adaptive`; expected one of: `initial`, \
                     `min`, `max`"
                ));
            }
            Param::NoEq(_) => return Some(NO_EQ.to_owned()),
            Param::NoValue(_) => return Some(NO_EXPRESSION.to_owned()),
            Param::Positional => return Some(NO_IDENT.to_owned()),
        }
    }
    None
}

/// The first error of `validate.rs`, on arguments that parse.
fn validation_error(case: &BadArgs) -> Option<String> {
    let mut limit = None;
    let mut options = std::collections::BTreeMap::<&str, &Value>::new();
    let mut adaptive = None;
    for part in &case.parts {
        match part {
            Part::Limit(value, _) => limit = Some(value),
            Part::Opt(name, value, _) => {
                options.insert(name, value);
            }
            Part::Adaptive(params, _) => adaptive = Some(params.as_deref().unwrap_or_default()),
            _ => unreachable!("a part that does not parse: {part:?}"),
        }
    }
    let limiter = options.get("limiter");
    if let Some(params) = adaptive {
        if limiter.is_some() {
            return Some(ADAPTIVE_WITH_LIMITER.to_owned());
        }
        if limit.is_some() {
            return Some(ADAPTIVE_WITH_LIMIT.to_owned());
        }
        if let Some(error) = bounds_error(params) {
            return Some(error);
        }
    } else if let Some(limiter) = limiter {
        if limit.is_some() {
            return Some(LIMIT_WITH_LIMITER.to_owned());
        }
        if options.contains_key("key") {
            return Some(KEY_WITH_LIMITER.to_owned());
        }
        if options.contains_key("name") {
            return Some(NAME_WITH_LIMITER.to_owned());
        }
        if let Some(error) = &limiter.error {
            return Some(error.clone());
        }
    } else {
        let Some(limit) = limit else {
            return Some(MISSING_LIMIT.to_owned());
        };
        if let Some(error) = &limit.error {
            return Some(error.clone());
        }
        if options.contains_key("overloaded") {
            return Some(OVERLOADED_WITH_FIXED.to_owned());
        }
    }
    if RETURNS_UNIT.contains(&case.corpus) {
        for name in ["max_wait", "queue"] {
            if options.contains_key(name) {
                return Some(format!("`{name}` {NEEDS_RESULT}"));
            }
        }
    }
    options.get("queue").and_then(|queue| queue.error.clone())
}

/// The first error in the bounds of `adaptive(…)` (`adaptive_bounds` in `validate.rs`), on
/// parameters that parse: each distinct.
fn bounds_error(params: &[Param]) -> Option<String> {
    let bound = |wanted: &str| {
        params.iter().find_map(|param| match param {
            Param::Bound(name, _, bound, _) if *name == wanted => Some(*bound),
            _ => None,
        })
    };
    let expected = |name: &str| format!("expected a positive integer such as `{name} = 8`");
    for name in ADAPTIVE_PARAMS {
        match bound(name) {
            Some(Bound::TooLarge) => {
                return Some(format!("`{name}{BOUND_TOO_LARGE} (`Limiter::MAX_LIMIT`)"));
            }
            Some(Bound::Negative) => {
                return Some(format!("`{name}` cannot be negative; {}", expected(name)));
            }
            Some(Bound::NotAnInteger(what)) => {
                return Some(format!("`{name}` cannot be {what}; {}", expected(name)));
            }
            Some(Bound::Int(_) | Bound::Expr) | None => {}
        }
    }
    let literal = |name: &str| match bound(name) {
        Some(Bound::Int(value)) => Some(value),
        _ => None,
    };
    let (initial, min, max) = (literal("initial"), literal("min"), literal("max"));
    if min == Some(0) {
        return Some(MIN_ZERO.to_owned());
    }
    if max == Some(0) || initial == Some(0) {
        return Some(BOUND_ZERO.to_owned());
    }
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Some(format!("`min = {min}{MIN_ABOVE_MAX}{max}`"));
    }
    // The bounds `initial` must be within: the literals given, and the defaults for those not
    // given (`min` 1, `max` 1000 or `min` if higher); an expression is not checked.
    let (min_given, max_given) = (bound("min").is_some(), bound("max").is_some());
    let known_min = if min_given { min } else { Some(1) };
    let known_max = if max_given {
        max
    } else {
        known_min.map(|min| min.max(1000))
    };
    let initial = initial?;
    let below = known_min.is_some_and(|min| initial < min);
    let above = known_max.is_some_and(|max| initial > max);
    if !(below || above) {
        return None;
    }
    let show = |value: Option<u128>, given: bool| match value {
        Some(value) if given => value.to_string(),
        Some(value) => format!("{value} (the default)"),
        None => "?".to_owned(),
    };
    Some(format!(
        "`initial = {initial}{INITIAL_OUTSIDE}{}, {}]: an adaptive limit starts within its \
         bounds",
        show(known_min, min_given),
        show(known_max, max_given),
    ))
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
    let expected = expected_error(case);
    let context = format!("\n  args: {args}\n  item: {item}\n  case: {case:?}");
    match (&result, &expected) {
        (None, None) => {}
        (None, Some(expected)) => panic!("expanded despite {expected:?}{context}"),
        (Some(message), expected) => {
            assert!(
                !is_item_error(message),
                "a valid function was rejected, so the arguments were not checked: \
                 {message}{context}"
            );
            assert!(
                expected
                    .as_ref()
                    .is_some_and(|expected| message.contains(expected.as_str())),
                "error {message:?}, expected {expected:?}{context}"
            );
        }
    }
    result
}

proptest! {
    #![proptest_config(config(1000))]

    /// Well-formed arguments with wrong names and values on unmutated functions: they reach
    /// the argument checks, and each fails with the error of the first of its mistakes that
    /// the attribute meets, or, with none, expands.
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
    "`overloaded` is set more than once",
    OVERLOADED_WITH_FIXED,
    ADAPTIVE_TWICE,
    ADAPTIVE_WITH_LIMIT,
    ADAPTIVE_WITH_LIMITER,
    "` of `adaptive`; expected one of: `initial`, `min`, `max`",
    "`max` is set more than once",
    NO_EQ,
    NO_IDENT,
    MIN_ZERO,
    BOUND_ZERO,
    MIN_ABOVE_MAX,
    INITIAL_OUTSIDE,
    // `initial` outside bounds that are the defaults, and outside bounds given.
    "(the default)",
    "]: an adaptive limit starts within its bounds",
    BOUND_TOO_LARGE,
    "cannot be negative; expected a positive integer such as",
    "literal; expected a positive integer such as",
    "literal of a type other than `usize`; expected a positive integer such as",
];

/// A message with the parts between backticks elided, and every other number written `N`, to
/// count kinds of error rather than every option name and number.
fn error_kind(message: &str) -> String {
    let elided = message
        .split('`')
        .enumerate()
        .map(|(index, piece)| if index % 2 == 1 { "…" } else { piece })
        .collect::<Vec<_>>()
        .join("`");
    let mut kind = String::with_capacity(elided.len());
    for c in elided.chars() {
        if !c.is_ascii_digit() {
            kind.push(c);
        } else if !kind.ends_with('N') {
            kind.push('N');
        }
    }
    kind
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
        "unknown option `limits`; expected one of: `limiter`, `max_wait`, `queue`, `key`, \
         `weight`, `name`, `overloaded`",
    ),
    // `adaptive` is not an option: it takes the place of the limit.
    ("adaptive = 5", "`adaptive` is not an option with a value"),
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
    // `overloaded`.
    (
        "5, overloaded = is_overloaded",
        "`overloaded` needs an adaptive limit, which backs off when the downstream says it is \
         overloaded: write `#[concurrency_limit(adaptive, overloaded = …)]`, or use a limiter \
         made by `Limiter::adaptive` with `limiter = …`",
    ),
    (
        "MAX_JOBS, key = id, overloaded = |_| false",
        OVERLOADED_WITH_FIXED,
    ),
    ("overloaded = is_overloaded", MISSING_LIMIT),
    ("0, overloaded = is_overloaded", AT_LEAST_ONE),
    (
        "adaptive, overloaded = a, overloaded = b",
        "`overloaded` is set more than once",
    ),
    ("adaptive, overloaded =", NO_EXPRESSION),
    // `adaptive` where it does not belong.
    (
        "5, adaptive",
        "`adaptive` takes the place of the limit, and `5` is given too: keep one, `adaptive` \
         for a limit that follows the downstream, or `5` for a fixed one",
    ),
    ("adaptive(max = 8), MAX_JOBS", ADAPTIVE_WITH_LIMIT),
    ("adaptive, 0", ADAPTIVE_WITH_LIMIT),
    (
        "adaptive, limiter = DATABASE",
        "`adaptive` cannot be combined with `limiter = DATABASE`: the limiter decides whether \
         it adapts; make it with `Limiter::adaptive(Adaptive::new())` and its calls adapt it",
    ),
    (
        "limiter = DATABASE, adaptive(max = 8), 5",
        ADAPTIVE_WITH_LIMITER,
    ),
    ("adaptive(min = 0), limiter = 5", ADAPTIVE_WITH_LIMITER),
    ("adaptive, adaptive", ADAPTIVE_TWICE),
    (
        "adaptive(max = 8), name = \"x\", adaptive(max = 8)",
        ADAPTIVE_TWICE,
    ),
    // A repeat is found only once the second `adaptive` is read.
    ("adaptive, adaptive(min = 1 max = 2)", NO_COMMA),
    ("adaptive 5", NO_COMMA),
    // Its parameters.
    (
        "adaptive(start = 4)",
        "unknown parameter `start` of `adaptive`; expected one of: `initial`, `min`, `max`",
    ),
    ("adaptive(max = 8, limit = 4)", "unknown parameter `limit`"),
    ("adaptive(max = 8, max = 16)", "`max` is set more than once"),
    (
        "adaptive(initial = 1, initial = x)",
        "`initial` is set more than once",
    ),
    ("adaptive(64)", NO_IDENT),
    ("adaptive(min 1)", NO_EQ),
    ("adaptive(min = )", NO_EXPRESSION),
    ("adaptive(min = 1,, max = 2)", NO_IDENT),
    ("adaptive(min = 1 max = 2)", NO_COMMA),
    // Its bounds, in the order `validate.rs` checks them.
    ("adaptive(min = 0)", MIN_ZERO),
    ("adaptive(min = (0), max = 0)", MIN_ZERO),
    ("adaptive(max = 0)", BOUND_ZERO),
    ("adaptive(initial = 0usize)", BOUND_ZERO),
    ("adaptive(initial = 0, max = 0x0)", BOUND_ZERO),
    (
        "adaptive(min = 10, max = 5)",
        "`min = 10` of `adaptive` is above its `max = 5`",
    ),
    (
        "adaptive(max = 5, initial = 100, min = 10)",
        "`min = 10` of `adaptive` is above its `max = 5`",
    ),
    (
        "adaptive(initial = 100, min = 1, max = 64)",
        "`initial = 100` of `adaptive` is outside [min, max] = [1, 64]: an adaptive limit starts \
         within its bounds",
    ),
    (
        "adaptive(initial = 5000)",
        "`initial = 5000` of `adaptive` is outside [min, max] = [1 (the default), 1000 (the \
         default)]",
    ),
    (
        "adaptive(initial = 2, min = 8)",
        "`initial = 2` of `adaptive` is outside [min, max] = [8, 1000 (the default)]",
    ),
    (
        "adaptive(initial = 3000, min = 2000)",
        "`initial = 3000` of `adaptive` is outside [min, max] = [2000, 2000 (the default)]",
    ),
    (
        "adaptive(initial = 0x10, max = 8)",
        "`initial = 16` of `adaptive` is outside [min, max] = [1 (the default), 8]",
    ),
    (
        "adaptive(initial = 1, min = 2, max = MAX)",
        "`initial = 1` of `adaptive` is outside [min, max] = [2, ?]",
    ),
    (
        "adaptive(max = 6.5)",
        "`max` cannot be a floating-point literal; expected a positive integer such as \
         `max = 8`, or an expression of type `usize`",
    ),
    ("adaptive(max = \"64\")", "`max` cannot be a string literal"),
    (
        "adaptive(initial = 4u8)",
        "`initial` cannot be an integer literal of a type other than `usize`",
    ),
    (
        "adaptive(min = -1)",
        "`min` cannot be negative; expected a positive integer such as `min = 8`",
    ),
    ("adaptive(min = -MIN)", "`min` cannot be negative"),
    (
        "adaptive(max = 2147483648)",
        "`max` of `adaptive` is too large: the maximum is 2147483647 (`Limiter::MAX_LIMIT`)",
    ),
    (
        "adaptive(min = 340282366920938463463374607431768211456)",
        "`min` of `adaptive` is too large",
    ),
    // Each bound's type before any comparison, `initial` first.
    (
        "adaptive(min = 0, initial = -1)",
        "`initial` cannot be negative",
    ),
    (
        "adaptive(max = 1.5, min = 2147483648)",
        "`min` of `adaptive` is too large",
    ),
];

/// Arguments with `adaptive` or `overloaded` that expand on every function of the corpus.
const ADAPTIVE_ACCEPTED: &[&str] = &[
    "adaptive",
    "adaptive,",
    "adaptive()",
    "adaptive(initial = 4, min = 1, max = 256)",
    "adaptive(max = (8), min = (1),)",
    "name = \"x\", adaptive(max = 64), key = 1, weight = 2",
    "adaptive(min = 2000)",
    "adaptive(initial = 1000)",
    "adaptive(initial = 2147483647, min = 2147483647)",
    // Bounds that are expressions are checked when the limiter is made.
    "adaptive(initial = 5000, max = MAX)",
    "adaptive(initial = 1, min = MIN)",
    "adaptive(min = MIN, max = 0x10usize)",
    "adaptive, overloaded = is_overloaded",
    "adaptive(max = 4), overloaded = |result: &Result<u32, Error>| result.is_err()",
    "limiter = DATABASE, overloaded = |_| false",
    "limiter = crate::POOL, overloaded = Self::overloaded",
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
/// whatever the RNG does, and each accepted form of `adaptive` expands.
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
        for args in ADAPTIVE_ACCEPTED {
            assert_eq!(
                outcome(&lex(args), &item),
                None,
                "\n  args: {args}\n  item: {source}"
            );
        }
    }
}
