//! The expansion is lint-clean: annotated code of every common shape compiles under
//! `deny(warnings)` and clippy's `all` and `pedantic` groups (CI runs clippy on this file).
//! Whatever fires here, fires on code the user did not write.
#![deny(warnings)]
#![deny(clippy::all, clippy::pedantic)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::error::Error;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::marker::PhantomPinned;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::future::join_all;
use limit_runtime::concurrency_limit;
use limit_suite::Gauge;

const MAX_JOBS: usize = 3;

fn max_jobs() -> usize {
    MAX_JOBS
}

static JOBS: Gauge = Gauge::new();
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// A plain free function with a literal limit.
#[concurrency_limit(2)]
async fn literal_limit(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n + 1
}

/// The limit from a constant; an argument the body never uses.
#[concurrency_limit(MAX_JOBS)]
async fn const_limit(_unused: String, n: usize) -> usize {
    let _running = JOBS.enter();
    tokio::task::yield_now().await;
    n * 2
}

/// The limit from a function call.
#[concurrency_limit(max_jobs())]
async fn call_limit(n: usize) {
    tokio::task::yield_now().await;
    TOTAL.fetch_add(n, Ordering::SeqCst);
}

/// The limit from a block.
#[concurrency_limit({ MAX_JOBS + 1 })]
async fn block_limit() -> usize {
    tokio::task::yield_now().await;
    4
}

/// `_` and underscore-prefixed arguments, kept alive to the end of the call.
#[concurrency_limit(2, name = "lints::underscores")]
async fn underscores(_: Vec<u8>, _guard: Arc<()>, n: u8) -> u8 {
    tokio::task::yield_now().await;
    n
}

/// `mut` arguments.
#[concurrency_limit(2)]
async fn mut_args(mut values: Vec<u32>, mut extra: u32) -> Vec<u32> {
    tokio::task::yield_now().await;
    extra += 1;
    values.push(extra);
    values
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    x: i64,
    y: i64,
}

/// Pattern arguments: tuple, struct, tuple struct, with `mut` and `_` inside.
#[concurrency_limit(2)]
async fn patterns(
    (a, b): (i64, i64),
    Point { x, mut y }: Point,
    Meters(m): Meters,
    (_, keep): (Arc<()>, i64),
) -> i64 {
    tokio::task::yield_now().await;
    y += 1;
    a + b + x + y + m + keep
}

#[derive(Debug, Clone, Copy)]
struct Meters(i64);

/// Generic, with a `where` clause and a borrowed argument with an elided lifetime.
#[concurrency_limit(2)]
async fn count_by<K, V>(items: &[V], key: impl Fn(&V) -> K) -> HashMap<K, usize>
where
    K: Eq + Hash,
{
    tokio::task::yield_now().await;
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(key(item)).or_insert(0) += 1;
    }
    counts
}

/// The answer, which the caller must not ignore.
#[must_use]
#[concurrency_limit(2)]
async fn must_use_answer() -> u32 {
    tokio::task::yield_now().await;
    42
}

#[derive(Debug)]
enum LintError {
    Parse(std::num::ParseIntError),
    Limit(limit_runtime::LimitError),
}

impl From<limit_runtime::LimitError> for LintError {
    fn from(error: limit_runtime::LimitError) -> Self {
        Self::Limit(error)
    }
}

impl From<std::num::ParseIntError> for LintError {
    fn from(error: std::num::ParseIntError) -> Self {
        Self::Parse(error)
    }
}

/// `?` and early return.
#[concurrency_limit(2)]
async fn parse(text: &str) -> Result<u32, LintError> {
    tokio::task::yield_now().await;
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()?)
}

#[derive(Debug, Default)]
struct Cache {
    hits: u64,
    name: String,
}

impl Cache {
    #[concurrency_limit(2)]
    async fn name(&self) -> &str {
        tokio::task::yield_now().await;
        self.name.as_str()
    }

    #[concurrency_limit(2)]
    async fn hit(&mut self, _reason: &str) -> u64 {
        tokio::task::yield_now().await;
        self.hits += 1;
        self.hits
    }

    #[concurrency_limit(2)]
    async fn into_hits(self) -> u64 {
        tokio::task::yield_now().await;
        self.hits
    }

    #[concurrency_limit(2)]
    async fn renamed(mut self, name: String) -> Self {
        tokio::task::yield_now().await;
        self.name = name;
        self
    }

    #[concurrency_limit(2)]
    async fn shared(self: Arc<Self>) -> u64 {
        tokio::task::yield_now().await;
        self.hits
    }

    #[concurrency_limit(2)]
    async fn lookup<'k, K: Debug + ?Sized>(&self, key: &'k K) -> (&str, &'k K) {
        tokio::task::yield_now().await;
        (self.name.as_str(), key)
    }
}

#[async_trait]
trait Backend {
    async fn fetch(&self, key: &str) -> usize;

    #[concurrency_limit(2)]
    async fn fetch_twice(&self, key: &str) -> usize {
        self.fetch(key).await + self.fetch(key).await
    }
}

struct Remote;

#[async_trait]
impl Backend for Remote {
    #[concurrency_limit(2)]
    async fn fetch(&self, key: &str) -> usize {
        tokio::task::yield_now().await;
        key.len()
    }
}

#[async_trait(?Send)]
trait LocalBackend {
    async fn fetch_local(&self, _unused: u8, (a, b): (usize, usize)) -> usize;
}

#[async_trait(?Send)]
impl LocalBackend for Remote {
    #[concurrency_limit(1)]
    async fn fetch_local(&self, _unused: u8, (a, b): (usize, usize)) -> usize {
        tokio::task::yield_now().await;
        a + b
    }
}

trait Native {
    fn size(&self) -> impl Future<Output = usize> + Send;
}

impl Native for Remote {
    #[concurrency_limit(2)]
    async fn size(&self) -> usize {
        tokio::task::yield_now().await;
        7
    }
}

/// `impl Trait` arguments and return type; an `#[instrument]` above the attribute.
#[tracing::instrument(skip(items))]
#[concurrency_limit(2)]
async fn joined(items: impl IntoIterator<Item = u32>, separator: &str) -> impl Display {
    tokio::task::yield_now().await;
    items
        .into_iter()
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(separator)
}

/// `Box<dyn Error>` errors through `?`; an `#[instrument]` below the attribute.
#[concurrency_limit(2)]
#[tracing::instrument(err)]
async fn boxed_error(text: &str) -> Result<u32, Box<dyn Error + Send + Sync>> {
    tokio::task::yield_now().await;
    Ok(text.parse::<u32>()?)
}

/// Recursion through `Box::pin`, below the limit.
#[concurrency_limit(8)]
async fn depth(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    1 + Box::pin(depth(n - 1)).await
}

/// An inner attribute at the top of the body.
#[concurrency_limit(2)]
async fn inner_attribute(n: u32) -> u32 {
    #![allow(clippy::cast_possible_truncation)]
    tokio::task::yield_now().await;
    u64::from(n) as u32
}

/// Deprecated, and still callable where that is allowed.
#[deprecated(note = "use `literal_limit`")]
#[concurrency_limit(2)]
async fn deprecated_fn() -> u32 {
    tokio::task::yield_now().await;
    1
}

struct Pinned {
    value: u32,
    _pin: PhantomPinned,
}

impl Pinned {
    #[concurrency_limit(2)]
    async fn value(self: Pin<&mut Self>, add: u32) -> u32 {
        tokio::task::yield_now().await;
        self.value + add
    }
}

struct View<'a, T> {
    items: &'a [T],
}

impl<'a, T: Clone + Send + Sync> View<'a, T> {
    #[concurrency_limit(2)]
    async fn first_matching<U>(&self, wanted: U) -> Option<&'a T>
    where
        T: PartialEq<U>,
        U: Send,
    {
        tokio::task::yield_now().await;
        self.items.iter().find(|item| **item == wanted)
    }
}

struct Label(String);

/// Bodies whose value comes from `return` (including a body that diverges), and a
/// coercion through `return`.
#[concurrency_limit(2)]
#[allow(clippy::needless_return)] // the tail `return` is the shape under test
async fn returns(flag: bool, label: &Label) -> &str {
    if flag {
        return &label.0;
    }
    return "no";
}

#[concurrency_limit(2)]
async fn never_finishes(flag: bool) -> u32 {
    if flag {
        return 1;
    }
    loop {
        tokio::task::yield_now().await;
    }
}

/// Weighted calls of every return shape: a `Result` that carries the refusal, an `io::Result`,
/// a plain value (too heavy panics where the call is made), an `impl Trait` output, and a
/// method whose weight reads `self`.
#[concurrency_limit(64, weight = body.len())]
async fn weighted_result(body: &[u8]) -> Result<usize, LintError> {
    Ok(body.len())
}

#[concurrency_limit(64, weight = body.len())]
async fn weighted_io(body: Vec<u8>) -> std::io::Result<usize> {
    Ok(body.len())
}

#[concurrency_limit(64, weight = usize::from(n))]
async fn weighted_plain(n: u8) -> u8 {
    n
}

#[concurrency_limit(64, weight = items.len())]
async fn weighted_opaque(items: Vec<u32>) -> impl Display {
    items.len()
}

#[concurrency_limit(64, weight = 0)]
async fn weightless() {}

struct Uploader {
    cost: usize,
}

impl Uploader {
    #[concurrency_limit(8, weight = self.cost)]
    async fn upload(&self, bytes: &[u8]) -> usize {
        bytes.len() * self.cost
    }
}

#[async_trait]
trait Sink {
    async fn write(&self, bytes: Vec<u8>) -> Result<usize, LintError>;
}

#[async_trait]
impl Sink for Uploader {
    #[concurrency_limit(16, weight = bytes.len(), max_wait = std::time::Duration::ZERO)]
    async fn write(&self, bytes: Vec<u8>) -> Result<usize, LintError> {
        Ok(bytes.len())
    }
}

// Adaptive limits: every shape whose expansion differs (a sampled call's `start` and
// `complete`, the `async` block around a body that may leave early, `overloaded`).

fn is_limit_error(result: &Result<u32, LintError>) -> bool {
    matches!(result, Err(LintError::Limit(_)))
}

#[concurrency_limit(adaptive)]
async fn adaptive_plain(n: u32) -> u32 {
    n + 1
}

#[concurrency_limit(adaptive(initial = 2, min = 1, max = MAX_JOBS), name = "lints-adaptive")]
async fn adaptive_unit() {}

#[concurrency_limit(adaptive(max = 8), overloaded = is_limit_error)]
async fn adaptive_early(text: &str) -> Result<u32, LintError> {
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()?)
}

#[concurrency_limit(adaptive, key = n % 2, weight = 1, max_wait = std::time::Duration::ZERO, overloaded = Result::is_err)]
async fn adaptive_everything(n: u32) -> Result<u32, LintError> {
    Ok(n)
}

#[concurrency_limit(adaptive)]
async fn adaptive_never(flag: bool) -> u32 {
    if flag {
        return 1;
    }
    loop {
        tokio::task::yield_now().await;
    }
}

static ADAPTIVE: limit_runtime::Limiter =
    limit_runtime::Limiter::adaptive(limit_runtime::Adaptive::new().max(16));

#[concurrency_limit(limiter = ADAPTIVE, overloaded = |output: &u32| *output == 0)]
async fn adaptive_shared(n: u32) -> u32 {
    n
}

struct AdaptiveService {
    limiter: limit_runtime::Limiter,
}

impl AdaptiveService {
    #[concurrency_limit(limiter = &self.limiter)]
    async fn call(&self, n: u32) -> u32 {
        n
    }
}

#[tokio::test]
async fn adaptive_shapes_compile_without_warnings_and_run() {
    assert_eq!(adaptive_plain(1).await, 2);
    adaptive_unit().await;
    assert_eq!(adaptive_early("").await.ok(), Some(0));
    assert_eq!(adaptive_early("7").await.ok(), Some(7));
    assert!(adaptive_early("x").await.is_err());
    assert_eq!(adaptive_everything(3).await.ok(), Some(3));
    assert_eq!(adaptive_never(true).await, 1);
    assert_eq!(adaptive_shared(5).await, 5);
    let service = AdaptiveService {
        limiter: limit_runtime::Limiter::adaptive(limit_runtime::Adaptive::new()),
    };
    assert_eq!(service.call(4).await, 4);
    assert_eq!(
        service.limiter.stats().adaptive.map(|stats| stats.samples),
        Some(1)
    );
}

#[tokio::test]
async fn weighted_shapes_compile_without_warnings_and_run() {
    assert_eq!(weighted_result(b"abc").await.ok(), Some(3));
    let Err(LintError::Limit(too_heavy)) = weighted_result(&[0; 65]).await else {
        panic!("a weight of 65 is above the limit of 64");
    };
    assert_eq!(too_heavy.limit(), 64);
    assert_eq!(weighted_io(vec![0; 4]).await.ok(), Some(4));
    assert_eq!(weighted_plain(5).await, 5);
    assert_eq!(weighted_opaque(vec![1, 2]).await.to_string(), "2");
    weightless().await;
    let uploader = Uploader { cost: 2 };
    assert_eq!(uploader.upload(b"ab").await, 4);
    assert_eq!(uploader.write(vec![1]).await.ok(), Some(1));
}

#[tokio::test]
async fn annotated_shapes_compile_without_warnings_and_run() {
    let label = Label(String::from("yes"));
    assert_eq!(returns(true, &label).await, "yes");
    assert_eq!(returns(false, &label).await, "no");
    assert_eq!(never_finishes(true).await, 1);
    assert_eq!(literal_limit(1).await, 2);
    let doubled = join_all((0..9).map(|n| const_limit(String::new(), n))).await;
    assert_eq!(doubled, (0..9).map(|n| n * 2).collect::<Vec<_>>());
    assert_eq!(JOBS.peak(), MAX_JOBS);
    join_all((1..=4).map(call_limit)).await;
    assert_eq!(TOTAL.load(Ordering::SeqCst), 10);
    assert_eq!(block_limit().await, 4);

    let guard = Arc::new(());
    assert_eq!(underscores(vec![1], Arc::clone(&guard), 5).await, 5);
    assert_eq!(Arc::strong_count(&guard), 1);
    assert_eq!(mut_args(vec![1], 1).await, vec![1, 2]);
    let total = patterns((1, 2), Point { x: 3, y: 4 }, Meters(5), (guard, 6)).await;
    assert_eq!(total, 22);
    let words = ["a", "bb", "cc"];
    let counts = count_by(&words, |w| w.len()).await;
    assert_eq!(counts[&2], 2);
    assert_eq!(must_use_answer().await, 42);
    assert_eq!(parse("12").await.ok(), Some(12));
    assert_eq!(parse("").await.ok(), Some(0));
    let Err(LintError::Parse(error)) = parse("x").await else {
        panic!("`x` is not a number");
    };
    assert_eq!(error.kind(), &std::num::IntErrorKind::InvalidDigit);

    let mut cache = Cache::default();
    assert_eq!(cache.hit("first").await, 1);
    let cache = cache.renamed(String::from("c")).await;
    assert_eq!(cache.name().await, "c");
    let key = String::from("k");
    assert_eq!(cache.lookup(key.as_str()).await, ("c", "k"));
    let cache = Arc::new(cache);
    assert_eq!(Arc::clone(&cache).shared().await, 1);
    let cache = Arc::try_unwrap(cache).unwrap_or_default();
    assert_eq!(cache.into_hits().await, 1);

    assert_eq!(Remote.fetch("abc").await, 3);
    assert_eq!(Remote.fetch_twice("ab").await, 4);
    assert_eq!(Remote.fetch_local(0, (1, 2)).await, 3);
    assert_eq!(tokio::spawn(Remote.size()).await.ok(), Some(7));

    assert_eq!(joined([1, 2, 3], "-").await.to_string(), "1-2-3");
    assert_eq!(boxed_error("5").await.ok(), Some(5));
    assert!(boxed_error("x").await.is_err());
    assert_eq!(depth(3).await, 3);
    assert_eq!(inner_attribute(9).await, 9);
    #[allow(deprecated)]
    let deprecated = deprecated_fn().await;
    assert_eq!(deprecated, 1);
    let mut pinned = pin!(Pinned {
        value: 1,
        _pin: PhantomPinned,
    });
    assert_eq!(pinned.as_mut().value(2).await, 3);
    let numbers = [1, 2, 3];
    let view = View { items: &numbers };
    assert_eq!(view.first_matching(2).await, Some(&2));
}
