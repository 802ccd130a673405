//! Edition-2021 code annotated with `#[concurrency_limit]`.
//!
//! In edition 2021 a return-position `impl Trait` captures the function's type parameters
//! but not its elided (or unnamed) lifetimes, so the hand-written equivalent of an
//! `async fn` that borrows an argument does not compile:
//!
//! ```compile_fail,E0700
//! use std::future::Future;
//!
//! fn len(s: &str) -> impl Future<Output = usize> {
//!     async move { s.len() }
//! }
//! ```
//!
//! The attribute writes that very shape, but its `impl` token comes from the macro crate
//! (edition 2024), where every lifetime in scope is captured. That this crate compiles at
//! all is the proof; the tests in `tests/` check that the futures work and are limited.
//!
//! Every function below borrows at least one argument through an elided lifetime that its
//! future must keep alive until it finishes.

use std::fmt::Display;
use std::future::Future;

use limit_runtime::concurrency_limit;
pub use limit_suite::{Gauge, GaugeGuard};

/// Work that lets the other calls run while this one holds its permit.
pub async fn busy() {
    for _ in 0..3 {
        limit_suite::yield_now().await;
    }
}

/// Watches [`len`].
pub static LEN: Gauge = Gauge::new();
/// Watches [`Table::pick`].
pub static PICK: Gauge = Gauge::new();
/// Watches [`Table::count_between`].
pub static COUNT_BETWEEN: Gauge = Gauge::new();
/// Watches [`position`].
pub static POSITION: Gauge = Gauge::new();
/// Watches [`longer`].
pub static LONGER: Gauge = Gauge::new();
/// Watches [`Fields::next_field`].
pub static NEXT_FIELD: Gauge = Gauge::new();
/// Watches [`describe`].
pub static DESCRIBE: Gauge = Gauge::new();
/// Watches [`append`].
pub static APPEND: Gauge = Gauge::new();
/// Watches `<Table as Lookup>::lookup`.
pub static LOOKUP: Gauge = Gauge::new();

/// One elided lifetime in an argument.
#[concurrency_limit(2)]
pub async fn len(s: &str) -> usize {
    let _running = LEN.enter();
    busy().await;
    s.len()
}

/// A table of named values.
#[derive(Debug)]
pub struct Table {
    entries: Vec<(String, u32)>,
}

impl Table {
    /// A table holding `entries`.
    pub fn new(entries: &[(&str, u32)]) -> Self {
        Self {
            entries: entries
                .iter()
                .map(|(key, value)| ((*key).to_owned(), *value))
                .collect(),
        }
    }

    /// `&self` and a `&str`, both elided; the output borrows from `self`.
    #[concurrency_limit(2)]
    pub async fn pick(&self, key: &str) -> Option<&u32> {
        let _running = PICK.enter();
        busy().await;
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// `&self` and two `&str`: three elided lifetimes, an owned output.
    #[concurrency_limit(3)]
    pub async fn count_between(&self, from: &str, to: &str) -> usize {
        let _running = COUNT_BETWEEN.enter();
        busy().await;
        self.entries
            .iter()
            .filter(|(k, _)| from <= k.as_str() && k.as_str() < to)
            .count()
    }
}

/// A generic function with elided lifetimes.
#[concurrency_limit(2)]
pub async fn position<T: PartialEq>(items: &[T], wanted: &T) -> Option<usize> {
    let _running = POSITION.enter();
    busy().await;
    items.iter().position(|item| item == wanted)
}

/// Generic, with a named lifetime for the output and an elided one that the future
/// captures but the output does not.
#[concurrency_limit(2)]
pub async fn longer<'a, S: AsRef<str> + ?Sized>(a: &'a S, b: &S) -> &'a str {
    let _running = LONGER.enter();
    busy().await;
    if a.as_ref().len() >= b.as_ref().len() {
        a.as_ref()
    } else {
        ""
    }
}

/// Splits a borrowed line into fields.
#[derive(Debug)]
pub struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// Fields of `line`.
    pub fn new(line: &'a str) -> Self {
        Self { rest: line }
    }

    /// The impl's lifetime, an elided `&mut self` and an elided `&str`.
    #[concurrency_limit(2)]
    pub async fn next_field(&mut self, separator: &str) -> Option<&'a str> {
        let _running = NEXT_FIELD.enter();
        busy().await;
        if self.rest.is_empty() {
            return None;
        }
        let (field, rest) = self.rest.split_once(separator).unwrap_or((self.rest, ""));
        self.rest = rest;
        Some(field)
    }
}

/// An `impl Trait` argument next to an elided lifetime.
#[concurrency_limit(2)]
pub async fn describe(value: impl Display, prefix: &str) -> String {
    let _running = DESCRIBE.enter();
    busy().await;
    format!("{prefix}{value}")
}

/// A `&mut` argument and a `&str` one.
#[concurrency_limit(2)]
pub async fn append(out: &mut Vec<String>, item: &str) {
    let _running = APPEND.enter();
    busy().await;
    out.push(item.to_owned());
}

/// A trait method that promises a `Send` future, implemented with the attribute.
pub trait Lookup {
    /// The value of `key`, if any.
    fn lookup(&self, key: &str) -> impl Future<Output = Option<u32>> + Send;
}

impl Lookup for Table {
    #[concurrency_limit(2)]
    async fn lookup(&self, key: &str) -> Option<u32> {
        let _running = LOOKUP.enter();
        busy().await;
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| *value)
    }
}
