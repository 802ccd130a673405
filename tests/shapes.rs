//! Every shape of function that `#[concurrency_limit]` accepts: it must compile, keep the
//! meaning of the `async fn` it replaces (values, lifetimes, drop order), and be limited.
//!
//! Each annotated function has its own limit, shared by every caller in this process, so
//! each one (and the `Gauge` that watches its body) belongs to exactly one test: tests run
//! in parallel and a shared function would let one test's calls count in another's peak.
//! Bodies yield a few times while they hold their permit, and all calls are polled together
//! in one task, so the first `N` calls are inside their bodies at once: the peak is exactly
//! `N` when the limit holds, and more than `N` when it does not.

use std::error::Error;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::{Pin, pin};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use limit_runtime::concurrency_limit;
use limit_suite::Gauge;
use tokio::sync::oneshot;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

/// Long enough for any correct run; a hang means the limit deadlocked.
const TIMEOUT: Duration = Duration::from_secs(30);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("the calls did not finish: the limit deadlocked")
}

/// Polls every future together in this task until all are done.
async fn together<F: Future>(calls: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    within(join_all(calls)).await
}

/// Work that gives the other calls a chance to run while this one holds its permit.
async fn busy() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// The bodies that `gauge` watched all finished, and at most `limit` of them (and at some
/// moment exactly `limit`) ran at once.
#[track_caller]
fn assert_limited(gauge: &Gauge, limit: usize) {
    assert_eq!(gauge.current(), 0, "a body is still counted as running");
    assert_eq!(
        gauge.peak(),
        limit,
        "the peak of bodies running at once must be the limit"
    );
}

// ---------------------------------------------------------------------------------------
// Free functions of every visibility
// ---------------------------------------------------------------------------------------

static PUB_FN: Gauge = Gauge::new();
static PUB_CRATE_FN: Gauge = Gauge::new();
static PRIVATE_FN: Gauge = Gauge::new();

/// A documented public function.
#[concurrency_limit(3)]
pub async fn pub_fn(x: u32) -> u32 {
    let _running = PUB_FN.enter();
    busy().await;
    x * 2
}

#[concurrency_limit(2)]
pub(crate) async fn pub_crate_fn(x: u32) -> u32 {
    let _running = PUB_CRATE_FN.enter();
    busy().await;
    x + 1
}

#[concurrency_limit(1)]
async fn private_fn(x: u32) -> u32 {
    let _running = PRIVATE_FN.enter();
    busy().await;
    x
}

mod outer {
    pub mod inner {
        use limit_runtime::concurrency_limit;
        use limit_suite::Gauge;

        pub static PUB_SUPER_FN: Gauge = Gauge::new();
        pub static PUB_IN_FN: Gauge = Gauge::new();

        #[concurrency_limit(4)]
        pub(super) async fn pub_super_fn(x: u32) -> u32 {
            let _running = PUB_SUPER_FN.enter();
            super::super::busy().await;
            x + 100
        }

        #[concurrency_limit(2)]
        pub(in crate::outer) async fn pub_in_fn(x: u32) -> u32 {
            let _running = PUB_IN_FN.enter();
            super::super::busy().await;
            x + 200
        }
    }

    pub async fn call_restricted(x: u32) -> (u32, u32) {
        (inner::pub_super_fn(x).await, inner::pub_in_fn(x).await)
    }

    pub async fn many_restricted() -> (Vec<u32>, Vec<u32>) {
        let a = super::together((0..12).map(inner::pub_super_fn)).await;
        let b = super::together((0..8).map(inner::pub_in_fn)).await;
        (a, b)
    }
}

#[tokio::test]
async fn free_functions_of_every_visibility_return_their_values_and_are_limited() {
    assert_eq!(
        together((0..12).map(pub_fn)).await,
        (0..12).map(|x| x * 2).collect::<Vec<_>>()
    );
    assert_limited(&PUB_FN, 3);

    assert_eq!(
        together((0..8).map(pub_crate_fn)).await,
        (1..9).collect::<Vec<_>>()
    );
    assert_limited(&PUB_CRATE_FN, 2);

    assert_eq!(
        together((0..4).map(private_fn)).await,
        (0..4).collect::<Vec<_>>()
    );
    assert_limited(&PRIVATE_FN, 1);

    let (a, b) = outer::many_restricted().await;
    assert_eq!(a, (100..112).collect::<Vec<_>>());
    assert_eq!(b, (200..208).collect::<Vec<_>>());
    assert_limited(&outer::inner::PUB_SUPER_FN, 4);
    assert_limited(&outer::inner::PUB_IN_FN, 2);
    assert_eq!(outer::call_restricted(1).await, (101, 201));
}

static SPAWNED: Gauge = Gauge::new();
static SPAWNED_BARRIER: LazyLock<tokio::sync::Barrier> =
    LazyLock::new(|| tokio::sync::Barrier::new(3));

/// Every body waits until 3 bodies are inside: with a limit of 3 that only works if
/// exactly 3 run at once.
#[concurrency_limit(3)]
async fn spawned(x: u64) -> u64 {
    let _running = SPAWNED.enter();
    SPAWNED_BARRIER.wait().await;
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spawned_calls_on_a_multi_threaded_runtime_are_limited() {
    let handles: Vec<_> = (0..30).map(|x| tokio::spawn(spawned(x))).collect();
    let results = together(handles).await;
    let sum: u64 = results.into_iter().map(Result::unwrap).sum();
    assert_eq!(sum, (0..30).sum());
    assert_limited(&SPAWNED, 3);
}

// ---------------------------------------------------------------------------------------
// Inherent methods with every receiver
// ---------------------------------------------------------------------------------------

static BY_REF: Gauge = Gauge::new();
static BY_MUT: Gauge = Gauge::new();
static BY_VALUE: Gauge = Gauge::new();
static BY_MUT_VALUE: Gauge = Gauge::new();
static BY_ARC: Gauge = Gauge::new();
static BY_BOX: Gauge = Gauge::new();
static BY_PIN: Gauge = Gauge::new();

#[derive(Debug, Clone, PartialEq)]
struct Account {
    id: u32,
    hits: u32,
}

impl Account {
    fn new(id: u32) -> Self {
        Self { id, hits: 0 }
    }

    #[concurrency_limit(2)]
    async fn by_ref(&self) -> u32 {
        let _running = BY_REF.enter();
        busy().await;
        self.id
    }

    #[concurrency_limit(2)]
    async fn by_mut(&mut self, add: u32) -> u32 {
        let _running = BY_MUT.enter();
        busy().await;
        self.hits += add;
        self.hits
    }

    #[concurrency_limit(3)]
    async fn by_value(self) -> u32 {
        let _running = BY_VALUE.enter();
        busy().await;
        self.id
    }

    #[concurrency_limit(2)]
    async fn by_mut_value(mut self) -> Self {
        let _running = BY_MUT_VALUE.enter();
        busy().await;
        self.hits += 10;
        self
    }

    #[concurrency_limit(2)]
    async fn by_arc(self: Arc<Self>) -> u32 {
        let _running = BY_ARC.enter();
        busy().await;
        self.id + 1000
    }

    #[concurrency_limit(2)]
    async fn by_box(self: Box<Self>) -> u32 {
        let _running = BY_BOX.enter();
        busy().await;
        self.id + 2000
    }
}

/// A `!Unpin` type, so that `self: Pin<&mut Self>` is the only way to reach it mutably.
struct Pinned {
    id: u32,
    _pin: PhantomPinned,
}

impl Pinned {
    #[concurrency_limit(2)]
    async fn by_pin(self: Pin<&mut Self>, add: u32) -> u32 {
        let _running = BY_PIN.enter();
        busy().await;
        self.id + add
    }
}

#[tokio::test]
async fn methods_taking_self_by_reference_share_one_limit_across_receivers() {
    let accounts: Vec<Account> = (0..8).map(Account::new).collect();
    assert_eq!(
        together(accounts.iter().map(Account::by_ref)).await,
        (0..8).collect::<Vec<_>>()
    );
    assert_limited(&BY_REF, 2);
}

#[tokio::test]
async fn methods_taking_mut_self_by_reference_share_one_limit_and_mutate() {
    let mut accounts: Vec<Account> = (0..8).map(Account::new).collect();
    let results = together(accounts.iter_mut().map(|a| a.by_mut(5))).await;
    assert_eq!(results, vec![5; 8]);
    assert!(accounts.iter().all(|a| a.hits == 5));
    assert_limited(&BY_MUT, 2);
}

#[tokio::test]
async fn methods_taking_self_by_value_share_one_limit() {
    assert_eq!(
        together((0..9).map(|id| Account::new(id).by_value())).await,
        (0..9).collect::<Vec<_>>()
    );
    assert_limited(&BY_VALUE, 3);
}

#[tokio::test]
async fn methods_taking_mut_self_by_value_share_one_limit_and_return_the_changed_value() {
    let results = together((0..6).map(|id| Account::new(id).by_mut_value())).await;
    assert_eq!(
        results,
        (0..6)
            .map(|id| Account { id, hits: 10 })
            .collect::<Vec<_>>()
    );
    assert_limited(&BY_MUT_VALUE, 2);
}

#[tokio::test]
async fn methods_taking_arc_self_share_one_limit() {
    let shared = Arc::new(Account::new(7));
    let calls = (0..3)
        .map(|_| Arc::clone(&shared).by_arc())
        .chain((0..3).map(|id| Arc::new(Account::new(id)).by_arc()));
    assert_eq!(
        together(calls).await,
        vec![1007, 1007, 1007, 1000, 1001, 1002]
    );
    assert_eq!(Arc::strong_count(&shared), 1, "every Arc<Self> was dropped");
    assert_limited(&BY_ARC, 2);
}

#[tokio::test]
async fn methods_taking_boxed_self_share_one_limit() {
    assert_eq!(
        together((0..6).map(|id| Box::new(Account::new(id)).by_box())).await,
        (2000..2006).collect::<Vec<_>>()
    );
    assert_limited(&BY_BOX, 2);
}

#[tokio::test]
async fn methods_taking_pinned_mut_self_share_one_limit() {
    let mut values: Vec<Pin<Box<Pinned>>> = (0..6)
        .map(|id| {
            Box::pin(Pinned {
                id,
                _pin: PhantomPinned,
            })
        })
        .collect();
    let results = together(values.iter_mut().map(|v| v.as_mut().by_pin(10))).await;
    assert_eq!(results, (10..16).collect::<Vec<_>>());
    let mut on_stack = pin!(Pinned {
        id: 1,
        _pin: PhantomPinned
    });
    assert_eq!(on_stack.as_mut().by_pin(1).await, 2);
    assert_limited(&BY_PIN, 2);
}

// ---------------------------------------------------------------------------------------
// Lifetimes: explicit, elided, captured by the future, tied to the output
// ---------------------------------------------------------------------------------------

static FIRST: Gauge = Gauge::new();
static LEN: Gauge = Gauge::new();
static GET: Gauge = Gauge::new();
static PICK: Gauge = Gauge::new();
static HOLDER_GET: Gauge = Gauge::new();
static FIND: Gauge = Gauge::new();

/// The output borrows from `a` only: `b` may be gone once the call is finished.
#[concurrency_limit(2)]
async fn first<'a>(a: &'a str, b: &str) -> &'a str {
    let _running = FIRST.enter();
    busy().await;
    if b.is_empty() { "" } else { a }
}

/// The future must capture the elided lifetime of `s`.
#[concurrency_limit(2)]
async fn len(s: &str) -> usize {
    let _running = LEN.enter();
    busy().await;
    s.len()
}

struct Table {
    values: Vec<(String, u32)>,
}

impl Table {
    #[concurrency_limit(2)]
    async fn get(&self) -> &u32 {
        let _running = GET.enter();
        busy().await;
        &self.values[0].1
    }

    /// Two elided lifetimes in the arguments; the output borrows from `self`.
    #[concurrency_limit(2)]
    async fn pick(&self, key: &str) -> Option<&u32> {
        let _running = PICK.enter();
        busy().await;
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

struct Holder<'a, T> {
    value: &'a T,
}

impl<'a, T: Clone + Send + Sync> Holder<'a, T> {
    #[concurrency_limit(2)]
    async fn get<U: Debug>(&self, u: U) -> &'a T
    where
        T: Debug,
    {
        let _running = HOLDER_GET.enter();
        busy().await;
        assert!(!format!("{u:?}{:?}", self.value).is_empty());
        self.value
    }
}

/// Generic, with a `where` clause, elided lifetimes and an explicit one.
#[concurrency_limit(2)]
async fn find<'h, T>(haystack: &'h [T], needle: &T) -> Option<&'h T>
where
    T: PartialEq + Sync,
{
    let _running = FIND.enter();
    busy().await;
    haystack.iter().find(|x| *x == needle)
}

#[tokio::test]
async fn output_borrowed_from_one_argument_outlives_the_other_argument() {
    let kept = String::from("kept");
    let results = {
        let short_lived: Vec<String> = (0..6).map(|i| format!("tmp{i}")).collect();
        together(short_lived.iter().map(|b| first(&kept, b))).await
    };
    assert_eq!(results, vec!["kept"; 6]);
    assert_eq!(first(&kept, "").await, "");
    assert_limited(&FIRST, 2);
}

#[tokio::test]
async fn futures_capture_elided_argument_lifetimes_and_are_limited() {
    let words: Vec<String> = (0..6).map(|i| "x".repeat(i)).collect();
    // The futures are created first and awaited later: they hold the borrows meanwhile.
    let pending: Vec<_> = words.iter().map(|w| len(w)).collect();
    assert_eq!(together(pending).await, (0..6).collect::<Vec<_>>());
    assert_limited(&LEN, 2);
}

#[tokio::test]
async fn methods_returning_references_elided_from_self_are_limited() {
    let table = Table {
        values: vec![("a".into(), 1), ("b".into(), 2)],
    };
    let got = together((0..5).map(|_| table.get())).await;
    assert!(got.iter().all(|v| std::ptr::eq(*v, &table.values[0].1)));

    let keys: Vec<String> = ["a", "b", "c", "a", "b", "c"].map(String::from).into();
    let picked = {
        let pending: Vec<_> = keys.iter().map(|k| table.pick(k)).collect();
        together(pending).await
    };
    drop(keys);
    assert_eq!(
        picked,
        vec![Some(&1), Some(&2), None, Some(&1), Some(&2), None]
    );
    assert_limited(&GET, 2);
    assert_limited(&PICK, 2);
}

#[tokio::test]
async fn generic_methods_in_generic_impls_with_lifetimes_return_the_outer_borrow() {
    let value = String::from("held");
    let from_holder: Vec<&String> = {
        let holders: Vec<Holder<'_, String>> = (0..6).map(|_| Holder { value: &value }).collect();
        together(holders.iter().enumerate().map(|(i, h)| h.get(i))).await
    };
    assert!(from_holder.iter().all(|v| std::ptr::eq(*v, &value)));
    assert_limited(&HOLDER_GET, 2);
}

#[tokio::test]
async fn generic_functions_with_where_clauses_are_limited_across_instantiations() {
    let numbers = [1, 2, 3];
    let names = ["a", "b", "c"];
    let needles = [0, 1, 2, 3];
    let found_numbers = together(needles.iter().map(|n| find(&numbers, n))).await;
    let found_names = together(["a", "z", "c"].iter().map(|n| find(&names, n))).await;
    assert_eq!(found_numbers, vec![None, Some(&1), Some(&2), Some(&3)]);
    assert_eq!(found_names, vec![Some(&"a"), None, Some(&"c")]);
    // Two instantiations, one function item: one limit.
    let mixed = futures::future::join(
        together(needles.iter().map(|n| find(&numbers, n))),
        together(["a", "b", "c"].iter().map(|n| find(&names, n))),
    );
    let _ = within(mixed).await;
    assert_limited(&FIND, 2);
}

// ---------------------------------------------------------------------------------------
// Arguments: `impl Trait`, patterns, `mut`, `ref`
// ---------------------------------------------------------------------------------------

static IMPL_TRAIT_ARGS: Gauge = Gauge::new();
static PATTERN_ARGS: Gauge = Gauge::new();
static MUT_ARGS: Gauge = Gauge::new();

#[concurrency_limit(2)]
async fn impl_trait_args(items: impl IntoIterator<Item = u32>, label: impl AsRef<str>) -> String {
    let _running = IMPL_TRAIT_ARGS.enter();
    busy().await;
    let total: u32 = items.into_iter().sum();
    format!("{}={total}", label.as_ref())
}

#[derive(Debug)]
struct Point {
    x: u32,
    y: u32,
}

struct Wrapper(u32);

#[concurrency_limit(2)]
async fn pattern_args(
    (a, b): (u32, u32),
    Point { x, y: renamed }: Point,
    Wrapper(inner): Wrapper,
    [first, .., last]: [u32; 4],
    _: u32,
    ref by_ref: String,
) -> u32 {
    let _running = PATTERN_ARGS.enter();
    busy().await;
    a + b + x + renamed + inner + first + last + u32::try_from(by_ref.len()).unwrap()
}

#[concurrency_limit(2)]
async fn mut_args(mut acc: Vec<u32>, mut n: u32, (mut lo, hi): (u32, u32)) -> (Vec<u32>, u32) {
    let _running = MUT_ARGS.enter();
    busy().await;
    while lo < hi {
        acc.push(lo);
        lo += 1;
    }
    n += 1;
    (acc, n)
}

#[tokio::test]
async fn impl_trait_arguments_are_accepted_and_limited() {
    let calls = (0..6).map(|i| impl_trait_args(vec![i, 1], format!("s{i}")));
    let results = together(calls).await;
    assert_eq!(results[0], "s0=1");
    assert_eq!(results[5], "s5=6");
    assert_eq!(impl_trait_args([1, 2, 3], "arr").await, "arr=6");
    assert_limited(&IMPL_TRAIT_ARGS, 2);
}

#[tokio::test]
async fn pattern_arguments_are_destructured_and_limited() {
    let calls = (0..6).map(|i| {
        pattern_args(
            (i, 1),
            Point { x: 10, y: 100 },
            Wrapper(1000),
            [10_000, 0, 0, 100_000],
            7,
            String::from("abc"),
        )
    });
    let results = together(calls).await;
    assert_eq!(results[0], 111_114);
    assert_eq!(results[5], 111_119);
    assert_limited(&PATTERN_ARGS, 2);
}

#[tokio::test]
async fn mut_arguments_can_be_mutated_in_the_body_and_are_limited() {
    let results = together((0..6).map(|i| mut_args(vec![i], i, (0, 2)))).await;
    assert_eq!(results[0], (vec![0, 0, 1], 1));
    assert_eq!(results[5], (vec![5, 0, 1], 6));
    assert_limited(&MUT_ARGS, 2);
}

// ---------------------------------------------------------------------------------------
// Drop semantics: the same as the `async fn` the attribute replaces
// ---------------------------------------------------------------------------------------

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, event: impl Into<String>) {
    log.lock().unwrap().push(event.into());
}

/// Records its drop in the log.
struct DropFlag {
    name: &'static str,
    log: Log,
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        push(&self.log, format!("drop {}", self.name));
    }
}

fn flag(name: &'static str, log: &Log) -> DropFlag {
    DropFlag {
        name,
        log: Arc::clone(log),
    }
}

/// Each body logs its start, waits at `gate`, and logs its end. `plain_*` are the same
/// functions without the attribute: the reference the limited ones must match.
mod drops {
    use super::{DropFlag, Log, push};
    use limit_runtime::concurrency_limit;
    use tokio::sync::oneshot;

    pub async fn plain_named(log: Log, gate: oneshot::Receiver<()>, _guard: DropFlag) {
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
    }

    #[concurrency_limit(8)]
    pub async fn limited_named(log: Log, gate: oneshot::Receiver<()>, _guard: DropFlag) {
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
    }

    pub async fn plain_wild(log: Log, gate: oneshot::Receiver<()>, _: DropFlag) {
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
    }

    #[concurrency_limit(8)]
    pub async fn limited_wild(log: Log, gate: oneshot::Receiver<()>, _: DropFlag) {
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
    }

    pub async fn plain_partial(log: Log, gate: oneshot::Receiver<()>, (n, _): (u32, DropFlag)) {
        push(&log, format!("start {n}"));
        let _ = gate.await;
        push(&log, "end");
    }

    #[concurrency_limit(8)]
    pub async fn limited_partial(log: Log, gate: oneshot::Receiver<()>, (n, _): (u32, DropFlag)) {
        push(&log, format!("start {n}"));
        let _ = gate.await;
        push(&log, "end");
    }

    /// Several unused arguments, to see their relative drop order too.
    pub async fn plain_many(log: Log, gate: oneshot::Receiver<()>, _a: DropFlag, _b: DropFlag) {
        let body_local = DropFlag {
            name: "local",
            log: log.clone(),
        };
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
        drop(body_local);
    }

    #[concurrency_limit(8)]
    pub async fn limited_many(log: Log, gate: oneshot::Receiver<()>, _a: DropFlag, _b: DropFlag) {
        let body_local = DropFlag {
            name: "local",
            log: log.clone(),
        };
        push(&log, "start");
        let _ = gate.await;
        push(&log, "end");
        drop(body_local);
    }

    pub struct Owner {
        pub _flag: DropFlag,
    }

    impl Owner {
        pub async fn plain_consume(self, gate: oneshot::Receiver<()>) -> u32 {
            let _ = gate.await;
            7
        }

        /// `self` is never mentioned after the gate: it must still live until the end.
        #[concurrency_limit(8)]
        pub async fn limited_consume(self, gate: oneshot::Receiver<()>) -> u32 {
            let _ = gate.await;
            7
        }
    }
}

/// The three ways a call's future can end, as the log of events they produce.
#[derive(Clone, Copy, Debug)]
enum Ending {
    DroppedUnpolled,
    DroppedMidBody,
    Completed,
}

/// Calls `f`, drives its future to `ending`, and returns the log of what happened.
fn scenario<Fut>(ending: Ending, f: impl FnOnce(Log, oneshot::Receiver<()>) -> Fut) -> Vec<String>
where
    Fut: Future,
{
    let log: Log = Arc::default();
    let (open, gate) = oneshot::channel();
    let future = f(log.clone(), gate);
    push(&log, "called");
    let mut future = task::spawn(future);
    match ending {
        Ending::DroppedUnpolled => {}
        Ending::DroppedMidBody => {
            assert!(future.poll().is_pending(), "the body waits at its gate");
            push(&log, "polled");
        }
        Ending::Completed => {
            assert!(future.poll().is_pending(), "the body waits at its gate");
            push(&log, "polled");
            open.send(()).unwrap();
            assert!(future.is_woken());
            assert!(future.poll().is_ready(), "the body finished");
            push(&log, "ready");
        }
    }
    drop(future);
    push(&log, "future dropped");
    log.lock().unwrap().clone()
}

const ENDINGS: [Ending; 3] = [
    Ending::DroppedUnpolled,
    Ending::DroppedMidBody,
    Ending::Completed,
];

/// Drives the plain `async fn` and its annotated twin to every ending, asserts that both
/// logged the same events in the same order, and returns the plain logs.
fn assert_drops_like_async_fn<P, L, PF, LF>(plain: P, limited: L) -> Vec<Vec<String>>
where
    P: Fn(Log, oneshot::Receiver<()>) -> PF,
    L: Fn(Log, oneshot::Receiver<()>) -> LF,
    PF: Future,
    LF: Future,
{
    ENDINGS
        .into_iter()
        .map(|ending| {
            let plain_log = scenario(ending, &plain);
            let limited_log = scenario(ending, &limited);
            assert_eq!(limited_log, plain_log, "{ending:?}");
            plain_log
        })
        .collect()
}

/// Nothing in the log before the call itself: no argument was dropped at call time.
#[track_caller]
fn assert_nothing_dropped_at_the_call(logs: &[Vec<String>]) {
    for log in logs {
        assert_eq!(log.first().map(String::as_str), Some("called"), "{log:?}");
    }
}

#[test]
fn unused_named_argument_is_dropped_with_the_future_not_at_the_call() {
    let logs = assert_drops_like_async_fn(
        |log, gate| {
            let guard = flag("guard", &log);
            drops::plain_named(log, gate, guard)
        },
        |log, gate| {
            let guard = flag("guard", &log);
            drops::limited_named(log, gate, guard)
        },
    );
    assert_nothing_dropped_at_the_call(&logs);
}

#[test]
fn wildcard_argument_is_dropped_with_the_future_not_at_the_call() {
    let logs = assert_drops_like_async_fn(
        |log, gate| {
            let guard = flag("wild", &log);
            drops::plain_wild(log, gate, guard)
        },
        |log, gate| {
            let guard = flag("wild", &log);
            drops::limited_wild(log, gate, guard)
        },
    );
    assert_nothing_dropped_at_the_call(&logs);
}

#[test]
fn wildcard_inside_a_pattern_argument_is_dropped_with_the_future() {
    let logs = assert_drops_like_async_fn(
        |log, gate| {
            let guard = flag("part", &log);
            drops::plain_partial(log, gate, (3, guard))
        },
        |log, gate| {
            let guard = flag("part", &log);
            drops::limited_partial(log, gate, (3, guard))
        },
    );
    assert_nothing_dropped_at_the_call(&logs);
}

#[test]
fn arguments_and_body_locals_drop_in_the_same_order_as_an_async_fn() {
    let logs = assert_drops_like_async_fn(
        |log, gate| {
            let (a, b) = (flag("a", &log), flag("b", &log));
            drops::plain_many(log, gate, a, b)
        },
        |log, gate| {
            let (a, b) = (flag("a", &log), flag("b", &log));
            drops::limited_many(log, gate, a, b)
        },
    );
    assert!(logs.iter().all(|log| log.iter().any(|e| e == "drop a")));
}

#[test]
fn self_by_value_unmentioned_in_the_body_lives_until_the_future_ends() {
    let logs = assert_drops_like_async_fn(
        |log, gate| {
            let owner = drops::Owner {
                _flag: flag("self", &log),
            };
            owner.plain_consume(gate)
        },
        |log, gate| {
            let owner = drops::Owner {
                _flag: flag("self", &log),
            };
            owner.limited_consume(gate)
        },
    );
    assert_nothing_dropped_at_the_call(&logs);
}

// ---------------------------------------------------------------------------------------
// Bodies and return types
// ---------------------------------------------------------------------------------------

static EARLY: Gauge = Gauge::new();
static QUESTION: Gauge = Gauge::new();
static UNIT: Gauge = Gauge::new();
static DISPLAY: Gauge = Gauge::new();
static BOXED_ERROR: Gauge = Gauge::new();
static DYN_RETURN: Gauge = Gauge::new();
static RECURSIVE: Gauge = Gauge::new();
static UNIT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[concurrency_limit(2)]
async fn early_return(n: u32) -> &'static str {
    let _running = EARLY.enter();
    busy().await;
    if n.is_multiple_of(2) {
        return "even";
    }
    "odd"
}

#[derive(Debug, PartialEq)]
enum AppError {
    Parse(String),
    Negative,
}

impl From<std::num::ParseIntError> for AppError {
    fn from(e: std::num::ParseIntError) -> Self {
        Self::Parse(e.to_string())
    }
}

#[concurrency_limit(2)]
async fn question_mark(s: &str) -> Result<u32, AppError> {
    let _running = QUESTION.enter();
    busy().await;
    let n: i64 = s.parse()?;
    if n < 0 {
        return Err(AppError::Negative);
    }
    u32::try_from(n).map_err(|_| AppError::Negative)
}

#[concurrency_limit(2)]
async fn unit_return(n: usize) {
    let _running = UNIT.enter();
    busy().await;
    UNIT_CALLS.fetch_add(n, SeqCst);
}

#[allow(clippy::unused_unit)]
#[concurrency_limit(2)]
async fn explicit_unit_return() -> () {
    UNIT_CALLS.fetch_add(1000, SeqCst);
}

#[concurrency_limit(2)]
async fn display(n: u32) -> impl Display {
    let _running = DISPLAY.enter();
    busy().await;
    if n == 0 {
        return String::from("zero");
    }
    format!("n={n}")
}

#[concurrency_limit(2)]
async fn boxed_error(s: &str) -> Result<u32, Box<dyn Error + Send + Sync>> {
    let _running = BOXED_ERROR.enter();
    busy().await;
    if s == "bad" {
        return Err("explicitly bad".into());
    }
    Ok(s.parse::<u32>()?)
}

#[concurrency_limit(2)]
async fn dyn_return(n: u32) -> Box<dyn Error + Send + Sync> {
    let _running = DYN_RETURN.enter();
    busy().await;
    format!("error {n}").into()
}

/// Each level holds a permit while it awaits the next one, so the depth must stay below
/// the limit (5): the 4 nested calls of `sum_to(3)` fit.
#[concurrency_limit(5)]
async fn sum_to(n: u64) -> u64 {
    let _running = RECURSIVE.enter();
    busy().await;
    if n == 0 {
        return 0;
    }
    n + Box::pin(sum_to(n - 1)).await
}

#[tokio::test]
async fn early_return_leaves_the_body_with_its_value_and_is_limited() {
    assert_eq!(
        together((0..6).map(early_return)).await,
        vec!["even", "odd", "even", "odd", "even", "odd"]
    );
    assert_limited(&EARLY, 2);
}

#[tokio::test]
async fn question_mark_converts_the_error_with_from_and_is_limited() {
    let results = together(["1", "x", "-3", "4", "99999999999", ""].map(question_mark)).await;
    assert_eq!(results[0], Ok(1));
    assert!(matches!(&results[1], Err(AppError::Parse(_))));
    assert_eq!(results[2], Err(AppError::Negative));
    assert_eq!(results[3], Ok(4));
    assert_eq!(results[4], Err(AppError::Negative));
    assert!(matches!(&results[5], Err(AppError::Parse(_))));
    assert_limited(&QUESTION, 2);
}

#[tokio::test]
async fn unit_returning_functions_run_their_body_and_are_limited() {
    let results: Vec<()> = together((1..=6).map(unit_return)).await;
    assert_eq!(results.len(), 6);
    explicit_unit_return().await;
    assert_eq!(UNIT_CALLS.load(SeqCst), 1021);
    assert_limited(&UNIT, 2);
}

#[tokio::test]
async fn impl_trait_return_types_are_kept_and_limited() {
    let shown: Vec<String> = together((0..5).map(display))
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["zero", "n=1", "n=2", "n=3", "n=4"]);
    assert_limited(&DISPLAY, 2);
}

#[tokio::test]
async fn boxed_dyn_return_types_are_kept_and_limited() {
    let results = together(["1", "bad", "x", "4"].map(boxed_error)).await;
    assert_eq!(results[0].as_ref().unwrap(), &1);
    assert_eq!(
        results[1].as_ref().unwrap_err().to_string(),
        "explicitly bad"
    );
    assert!(
        results[2]
            .as_ref()
            .unwrap_err()
            .is::<std::num::ParseIntError>()
    );
    assert_eq!(results[3].as_ref().unwrap(), &4);
    assert_limited(&BOXED_ERROR, 2);

    let errors = together((0..4).map(dyn_return)).await;
    assert_eq!(errors[3].to_string(), "error 3");
    assert_limited(&DYN_RETURN, 2);
}

#[tokio::test]
async fn recursion_through_box_pin_below_the_limit_completes() {
    assert_eq!(within(sum_to(3)).await, 6);
    // Every level held a permit while the next ran: 4 levels, all inside at once.
    assert_eq!(RECURSIVE.peak(), 4);
    assert_eq!(RECURSIVE.current(), 0);
}

// ---------------------------------------------------------------------------------------
// Native `async fn` in traits, and `-> impl Future + Send` declarations
// ---------------------------------------------------------------------------------------

static TRAIT_LOAD: Gauge = Gauge::new();
static TRAIT_SAVE: Gauge = Gauge::new();
static TRAIT_DEFAULTED: Gauge = Gauge::new();

trait Store {
    async fn load(&self, key: u32) -> u32;

    fn save(&self, key: u32) -> impl Future<Output = bool> + Send;

    /// A default body with the attribute: one limit for every implementor.
    #[concurrency_limit(2)]
    async fn defaulted(&self, key: u32) -> u32 {
        let _running = TRAIT_DEFAULTED.enter();
        busy().await;
        key + 1
    }
}

struct Memory {
    base: u32,
}

struct Disk;

static DISK: Disk = Disk;

impl Store for Memory {
    #[concurrency_limit(2)]
    async fn load(&self, key: u32) -> u32 {
        let _running = TRAIT_LOAD.enter();
        busy().await;
        self.base + key
    }

    #[concurrency_limit(3)]
    async fn save(&self, key: u32) -> bool {
        let _running = TRAIT_SAVE.enter();
        busy().await;
        key.is_multiple_of(2)
    }
}

impl Store for Disk {
    async fn load(&self, key: u32) -> u32 {
        key
    }

    async fn save(&self, _key: u32) -> bool {
        true
    }
}

static MEMORY: Memory = Memory { base: 100 };

/// Needs nothing but the trait's `+ Send` promise to spawn.
fn spawn_save<S: Store + Sync + 'static>(
    store: &'static S,
    key: u32,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move { store.save(key).await })
}

#[tokio::test]
async fn trait_impl_async_fns_are_limited_and_their_futures_are_send() {
    let loaded = together((0..6).map(|k| MEMORY.load(k))).await;
    assert_eq!(loaded, (100..106).collect::<Vec<_>>());
    let spawned = together((0..6).map(|k| tokio::spawn(MEMORY.load(k)))).await;
    assert_eq!(spawned.into_iter().map(Result::unwrap).sum::<u32>(), 615);
    assert_limited(&TRAIT_LOAD, 2);
}

#[tokio::test]
async fn trait_methods_declared_impl_future_send_are_spawnable_and_limited() {
    // Spawned through the generic bound, and directly (the concrete future is `Send`).
    let mut handles: Vec<_> = (0..6).map(|k| spawn_save(&MEMORY, k)).collect();
    handles.extend((6..12).map(|k| tokio::spawn(MEMORY.save(k))));
    let saved: Vec<bool> = together(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(saved, (0..12).map(|k| k % 2 == 0).collect::<Vec<_>>());
    assert_limited(&TRAIT_SAVE, 3);
}

#[tokio::test]
async fn default_trait_method_bodies_share_one_limit_across_implementors() {
    let memory = Memory { base: 0 };
    let calls = (0..6).map(|k| -> Pin<Box<dyn Future<Output = u32>>> {
        if k % 2 == 0 {
            Box::pin(memory.defaulted(k))
        } else {
            Box::pin(DISK.defaulted(k))
        }
    });
    assert_eq!(together(calls).await, (1..7).collect::<Vec<_>>());
    assert_eq!(Disk.load(3).await, 3);
    assert!(Disk.save(3).await);
    assert_limited(&TRAIT_DEFAULTED, 2);
}

// ---------------------------------------------------------------------------------------
// `#[async_trait]`
// ---------------------------------------------------------------------------------------

static SERVE: Gauge = Gauge::new();
static SERVE_LIMIT_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);
static LOCAL_SERVE: Gauge = Gauge::new();
static LOCAL_LIMIT_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);
static ASYNC_TRAIT_LOAD: Gauge = Gauge::new();
static ASYNC_TRAIT_DEFAULT: Gauge = Gauge::new();

fn serve_limit() -> usize {
    SERVE_LIMIT_EVALUATIONS.fetch_add(1, SeqCst);
    1
}

fn local_limit() -> usize {
    LOCAL_LIMIT_EVALUATIONS.fetch_add(1, SeqCst);
    1
}

#[async_trait]
trait Service {
    async fn serve(&self, gate: oneshot::Receiver<()>) -> u32;

    async fn load(&self, key: &str) -> usize;

    /// A default body in an `#[async_trait]` trait, limited.
    #[concurrency_limit(2)]
    async fn describe(&self, n: u32) -> String {
        let _running = ASYNC_TRAIT_DEFAULT.enter();
        busy().await;
        format!("service {n}")
    }
}

struct Server {
    id: u32,
}

#[async_trait]
impl Service for Server {
    #[concurrency_limit(serve_limit())]
    async fn serve(&self, gate: oneshot::Receiver<()>) -> u32 {
        let _running = SERVE.enter();
        let _ = gate.await;
        self.id
    }

    #[concurrency_limit(2)]
    async fn load(&self, key: &str) -> usize {
        let _running = ASYNC_TRAIT_LOAD.enter();
        busy().await;
        key.len() + self.id as usize
    }
}

struct Other;

static OTHER: Other = Other;

#[async_trait]
impl Service for Other {
    async fn serve(&self, _gate: oneshot::Receiver<()>) -> u32 {
        0
    }

    async fn load(&self, key: &str) -> usize {
        key.len()
    }
}

#[async_trait(?Send)]
trait LocalService {
    async fn serve_local(&self, gate: oneshot::Receiver<()>) -> u32;
}

struct LocalServer {
    /// Not `Send`, so only a `?Send` trait can hold it across an await.
    id: std::rc::Rc<u32>,
}

#[async_trait(?Send)]
impl LocalService for LocalServer {
    #[concurrency_limit(local_limit())]
    async fn serve_local(&self, gate: oneshot::Receiver<()>) -> u32 {
        let _running = LOCAL_SERVE.enter();
        let _ = gate.await;
        *self.id
    }
}

#[test]
fn async_trait_method_is_counted_at_the_call_and_limited() {
    let server = Server { id: 9 };
    let (open_first, first_gate) = oneshot::channel();
    let (open_second, second_gate) = oneshot::channel();
    let mut first = task::spawn(server.serve(first_gate));
    // The limiter is set up by the call itself, before the future is polled.
    assert_eq!(SERVE_LIMIT_EVALUATIONS.load(SeqCst), 1);
    let mut second = task::spawn(server.serve(second_gate));
    assert_eq!(SERVE_LIMIT_EVALUATIONS.load(SeqCst), 1, "evaluated once");

    assert_pending!(first.poll());
    assert_eq!(SERVE.current(), 1, "the first call is inside its body");
    assert_pending!(second.poll());
    assert_eq!(
        SERVE.current(),
        1,
        "the second call must wait: the limit is 1"
    );

    drop(first);
    drop(open_first);
    assert!(
        second.is_woken(),
        "dropping the first call hands over its permit"
    );
    assert_pending!(second.poll());
    assert_eq!(SERVE.current(), 1, "the second call is now inside its body");
    open_second.send(()).unwrap();
    assert_eq!(assert_ready!(second.poll()), 9);
    assert_limited(&SERVE, 1);
}

#[test]
fn async_trait_question_send_method_is_counted_at_the_call_and_limited() {
    let server = LocalServer {
        id: std::rc::Rc::new(4),
    };
    let (open_first, first_gate) = oneshot::channel();
    let (open_second, second_gate) = oneshot::channel();
    let mut first = task::spawn(server.serve_local(first_gate));
    assert_eq!(LOCAL_LIMIT_EVALUATIONS.load(SeqCst), 1);
    let mut second = task::spawn(server.serve_local(second_gate));

    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(LOCAL_SERVE.current(), 1);
    open_first.send(()).unwrap();
    assert_eq!(assert_ready!(first.poll()), 4);
    assert!(second.is_woken());
    assert_pending!(second.poll());
    assert_eq!(LOCAL_SERVE.current(), 1);
    open_second.send(()).unwrap();
    assert_eq!(assert_ready!(second.poll()), 4);
    assert_limited(&LOCAL_SERVE, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_trait_methods_are_spawnable_and_limited_across_receivers() {
    let servers: Vec<Arc<Server>> = (0..4).map(|id| Arc::new(Server { id })).collect();
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let server = Arc::clone(&servers[i % 4]);
            tokio::spawn(async move { server.load("abc").await })
        })
        .collect();
    let results: Vec<usize> = together(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results[..4], [3, 4, 5, 6]);
    assert!(ASYNC_TRAIT_LOAD.peak() <= 2);
    assert_eq!(ASYNC_TRAIT_LOAD.current(), 0);
    let local = together((0..6).map(|_| servers[0].load("xy"))).await;
    assert_eq!(local, vec![2; 6]);
    assert_eq!(ASYNC_TRAIT_LOAD.peak(), 2);
}

#[tokio::test]
async fn async_trait_default_method_bodies_are_limited() {
    let server = Server { id: 1 };
    let calls = (0..6).map(|n| {
        if n % 2 == 0 {
            server.describe(n)
        } else {
            OTHER.describe(n)
        }
    });
    let described = together(calls).await;
    assert_eq!(described[5], "service 5");
    assert_eq!(Other.load("ab").await, 2);
    let (_, gate) = oneshot::channel();
    assert_eq!(Other.serve(gate).await, 0);
    assert_limited(&ASYNC_TRAIT_DEFAULT, 2);
}

// ---------------------------------------------------------------------------------------
// The limit is in effect from the call; waiting calls can be cancelled
// ---------------------------------------------------------------------------------------

static CALL_TIME_LIMIT_EVALUATIONS: AtomicUsize = AtomicUsize::new(0);
static CALL_TIME: Gauge = Gauge::new();

fn call_time_limit() -> usize {
    CALL_TIME_LIMIT_EVALUATIONS.fetch_add(1, SeqCst);
    1
}

#[concurrency_limit(call_time_limit())]
async fn call_time(gate: oneshot::Receiver<()>) -> u32 {
    let _running = CALL_TIME.enter();
    let _ = gate.await;
    1
}

#[test]
fn limit_is_set_up_by_the_call_and_a_cancelled_waiter_gives_up_its_turn() {
    let (open_a, gate_a) = oneshot::channel();
    let (_open_b, gate_b) = oneshot::channel();
    let (open_c, gate_c) = oneshot::channel();
    let mut a = task::spawn(call_time(gate_a));
    assert_eq!(CALL_TIME_LIMIT_EVALUATIONS.load(SeqCst), 1);
    let mut b = task::spawn(call_time(gate_b));
    let mut c = task::spawn(call_time(gate_c));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll());
    assert_eq!(CALL_TIME.current(), 1);
    drop(b);
    open_a.send(()).unwrap();
    assert_eq!(assert_ready!(a.poll()), 1);
    assert!(
        c.is_woken(),
        "the next waiter, not the cancelled one, gets the permit"
    );
    assert_pending!(c.poll());
    open_c.send(()).unwrap();
    assert_eq!(assert_ready!(c.poll()), 1);
    assert_eq!(CALL_TIME_LIMIT_EVALUATIONS.load(SeqCst), 1);
    assert_limited(&CALL_TIME, 1);
}

static LEFT: Gauge = Gauge::new();
static RIGHT: Gauge = Gauge::new();

#[concurrency_limit(1)]
async fn left(gate: oneshot::Receiver<()>) {
    let _running = LEFT.enter();
    let _ = gate.await;
}

#[concurrency_limit(1)]
async fn right(gate: oneshot::Receiver<()>) {
    let _running = RIGHT.enter();
    let _ = gate.await;
}

#[test]
fn each_function_has_its_own_limit() {
    let (_open_left, left_gate) = oneshot::channel();
    let (open_right, right_gate) = oneshot::channel();
    let mut left_call = task::spawn(left(left_gate));
    let mut right_call = task::spawn(right(right_gate));
    assert_pending!(left_call.poll());
    assert_pending!(right_call.poll());
    assert_eq!(
        (LEFT.current(), RIGHT.current()),
        (1, 1),
        "a call of `left` must not use up the permit of `right`"
    );
    open_right.send(()).unwrap();
    assert_ready!(right_call.poll());
    drop(left_call);
    assert_eq!((LEFT.current(), RIGHT.current()), (0, 0));
}

// ---------------------------------------------------------------------------------------
// Other attributes are kept and still work
// ---------------------------------------------------------------------------------------

static DOCUMENTED: Gauge = Gauge::new();
static MUST_USE: Gauge = Gauge::new();
static DEPRECATED: Gauge = Gauge::new();
static TRACED_ABOVE: Gauge = Gauge::new();
static TRACED_BELOW: Gauge = Gauge::new();
static TRACED_METHOD: Gauge = Gauge::new();

/// Doubles `n`.
///
/// # Examples
///
/// Documentation survives the attribute.
#[concurrency_limit(2)]
async fn documented(n: u32) -> u32 {
    let _running = DOCUMENTED.enter();
    busy().await;
    n * 2
}

#[must_use]
#[concurrency_limit(2)]
async fn must_use_fn(n: u32) -> u32 {
    let _running = MUST_USE.enter();
    busy().await;
    n + 1
}

#[concurrency_limit(2)]
#[must_use = "the answer matters"]
async fn must_use_with_message() -> u32 {
    42
}

#[deprecated(note = "use `documented`")]
#[concurrency_limit(2)]
async fn deprecated_fn(n: u32) -> u32 {
    let _running = DEPRECATED.enter();
    busy().await;
    n
}

#[cfg(not(test))]
#[concurrency_limit(1)]
async fn twin() -> u32 {
    1
}

#[concurrency_limit(1)]
#[cfg(test)]
async fn twin() -> u32 {
    2
}

#[concurrency_limit(1)]
#[cfg(not(test))]
async fn twin() -> u32 {
    3
}

#[cfg_attr(test, concurrency_limit(1))]
async fn via_cfg_attr() -> u32 {
    4
}

#[tracing::instrument]
#[concurrency_limit(2)]
async fn traced_above(n: u32) -> u32 {
    let _running = TRACED_ABOVE.enter();
    busy().await;
    tracing::info!(n, "inside");
    n
}

#[concurrency_limit(2)]
#[tracing::instrument(level = "debug", ret)]
async fn traced_below(n: u32, (a, _): (u32, u32), _: u32) -> u32 {
    let _running = TRACED_BELOW.enter();
    busy().await;
    tracing::debug!(n, a, "inside");
    n + a
}

#[derive(Debug)]
struct Traced(u32);

impl Traced {
    #[concurrency_limit(2)]
    #[tracing::instrument(skip(self), err)]
    async fn method(&self, n: u32) -> Result<u32, String> {
        let _running = TRACED_METHOD.enter();
        busy().await;
        if n == 99 {
            return Err("ninety-nine".into());
        }
        Ok(self.0 + n)
    }
}

#[tokio::test]
async fn doc_comments_and_must_use_are_kept_and_the_functions_are_limited() {
    assert_eq!(
        together((0..6).map(documented)).await,
        vec![0, 2, 4, 6, 8, 10]
    );
    assert_limited(&DOCUMENTED, 2);
    assert_eq!(
        together((0..6).map(must_use_fn)).await,
        (1..7).collect::<Vec<_>>()
    );
    assert_limited(&MUST_USE, 2);
    assert_eq!(must_use_with_message().await, 42);
}

#[tokio::test]
#[allow(deprecated)]
async fn deprecated_functions_are_kept_and_limited() {
    assert_eq!(
        together((0..6).map(deprecated_fn)).await,
        (0..6).collect::<Vec<_>>()
    );
    assert_limited(&DEPRECATED, 2);
}

#[tokio::test]
async fn cfg_on_the_function_keeps_only_the_enabled_twin() {
    assert_eq!(twin().await, 2);
    assert_eq!(via_cfg_attr().await, 4);
}

#[tokio::test]
async fn tracing_instrument_above_the_attribute_keeps_the_limit() {
    assert_eq!(
        together((0..6).map(traced_above)).await,
        (0..6).collect::<Vec<_>>()
    );
    assert_limited(&TRACED_ABOVE, 2);
}

#[tokio::test]
async fn tracing_instrument_below_the_attribute_keeps_the_limit() {
    assert_eq!(
        together((0..6).map(|n| traced_below(n, (1, 2), 3))).await,
        (1..7).collect::<Vec<_>>()
    );
    assert_limited(&TRACED_BELOW, 2);
    let traced = Traced(10);
    let results = together([1, 99, 2, 3, 4].map(|n| traced.method(n))).await;
    assert_eq!(results[0], Ok(11));
    assert_eq!(results[1], Err("ninety-nine".into()));
    assert_limited(&TRACED_METHOD, 2);
}

static TRACED_TRAIT_ABOVE: Gauge = Gauge::new();
static TRACED_TRAIT_BELOW: Gauge = Gauge::new();

#[async_trait]
trait TracedService {
    async fn above(&self, n: u32) -> u32;
    async fn below(&mut self, n: u32) -> u32;
}

#[derive(Debug)]
struct TracedServer;

#[async_trait]
impl TracedService for TracedServer {
    #[tracing::instrument]
    #[concurrency_limit(2)]
    async fn above(&self, n: u32) -> u32 {
        let _running = TRACED_TRAIT_ABOVE.enter();
        busy().await;
        n
    }

    #[concurrency_limit(2)]
    #[tracing::instrument]
    async fn below(&mut self, n: u32) -> u32 {
        let _running = TRACED_TRAIT_BELOW.enter();
        busy().await;
        n + 1
    }
}

#[tokio::test]
async fn tracing_instrument_in_an_async_trait_impl_keeps_the_limit_in_either_order() {
    let server = TracedServer;
    assert_eq!(
        together((0..6).map(|n| server.above(n))).await,
        (0..6).collect::<Vec<_>>()
    );
    assert_limited(&TRACED_TRAIT_ABOVE, 2);
    let mut servers: Vec<TracedServer> = (0..6).map(|_| TracedServer).collect();
    assert_eq!(
        together(servers.iter_mut().zip(0..).map(|(s, n)| s.below(n))).await,
        (1..7).collect::<Vec<_>>()
    );
    assert_limited(&TRACED_TRAIT_BELOW, 2);
}

// ---------------------------------------------------------------------------------------
// Shadowed prelude and crate names: the expansion uses absolute paths only
// ---------------------------------------------------------------------------------------

static SHADOW_FN: Gauge = Gauge::new();
static SHADOW_METHOD: Gauge = Gauge::new();

#[allow(dead_code, non_camel_case_types, unused_macros)]
mod shadowed {
    mod core {}
    mod std {}
    mod alloc {}
    mod tokio {}
    mod limit_runtime {}
    struct Option;
    struct Result;
    struct Box;
    struct Vec;
    struct String;
    struct Pin;
    struct usize;
    trait Send {}
    trait Sync {}
    trait Future {}
    trait Drop {}
    macro_rules! concat {
        () => {};
    }
    macro_rules! module_path {
        () => {};
    }
    macro_rules! stringify {
        () => {};
    }

    use ::limit_runtime::concurrency_limit;

    const LIMIT: ::core::primitive::usize = 2;

    #[concurrency_limit(2)]
    pub(super) async fn shadow(x: u32, _: u32, (a, b): (u32, u32), _unused: u32) -> u32 {
        let _running = super::SHADOW_FN.enter();
        super::busy().await;
        x + a + b
    }

    pub(super) struct Thing(pub(super) u32);

    impl Thing {
        #[concurrency_limit(LIMIT)]
        pub(super) async fn method<T>(&self, t: T) -> ::core::option::Option<u32>
        where
            T: ::core::fmt::Debug + ::core::marker::Send,
        {
            let _running = super::SHADOW_METHOD.enter();
            super::busy().await;
            let _ = ::std::format!("{t:?}");
            ::core::option::Option::Some(self.0)
        }
    }
}

#[tokio::test]
async fn shadowed_prelude_and_crate_names_do_not_break_the_expansion() {
    assert_eq!(
        together((0..6).map(|x| shadowed::shadow(x, 0, (1, 2), 0))).await,
        (3..9).collect::<Vec<_>>()
    );
    assert_limited(&SHADOW_FN, 2);
    let thing = shadowed::Thing(5);
    assert_eq!(
        together((0..6).map(|i| thing.method(i))).await,
        vec![Some(5); 6]
    );
    assert_limited(&SHADOW_METHOD, 2);
}

// ---------------------------------------------------------------------------------------
// The body's value is coerced to the declared return type, as in an `async fn`
// ---------------------------------------------------------------------------------------

static COERCE: Gauge = Gauge::new();

#[derive(Debug)]
struct CoerceError;

impl Display for CoerceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("coerce error")
    }
}

impl Error for CoerceError {}

struct Named {
    name: String,
    fallback: String,
    bytes: Vec<u8>,
}

impl Named {
    /// `&String` to `&str`, in the tail and through `return`.
    #[concurrency_limit(2)]
    async fn name(&self, fallback: bool) -> &str {
        let _running = COERCE.enter();
        busy().await;
        if fallback {
            return &self.fallback;
        }
        &self.name
    }

    /// `&Vec<u8>` to `&[u8]` through `return` only.
    #[concurrency_limit(2)]
    async fn bytes(&self) -> &[u8] {
        return &self.bytes;
    }
}

/// `Box<CoerceError>` to `Box<dyn Error>`.
#[concurrency_limit(2)]
async fn boxed_dyn_error() -> Box<dyn Error + Send + Sync> {
    Box::new(CoerceError)
}

/// Unsizing nested in an `Option`, and an `impl Trait` around a coercion site.
#[concurrency_limit(2)]
async fn shown(x: u32) -> Option<Box<dyn Display + Send>> {
    if x == 0 {
        return None;
    }
    Some(Box::new(x))
}

#[tokio::test]
async fn return_values_are_coerced_to_the_declared_type() {
    let named = Named {
        name: "ada".to_owned(),
        fallback: "?".to_owned(),
        bytes: vec![1, 2],
    };
    assert_eq!(
        together((0..6).map(|i| named.name(i == 5))).await,
        ["ada", "ada", "ada", "ada", "ada", "?"]
    );
    assert_limited(&COERCE, 2);
    assert_eq!(named.bytes().await, &[1, 2]);
    assert_eq!(boxed_dyn_error().await.to_string(), "coerce error");
    assert!(shown(0).await.is_none());
    assert_eq!(shown(7).await.map(|d| d.to_string()).as_deref(), Some("7"));
}

// ---------------------------------------------------------------------------------------
// `ref mut` bindings, cfg'd-out pattern arguments, and names the expansion uses itself
// ---------------------------------------------------------------------------------------

#[concurrency_limit(2)]
async fn push_bang(ref mut text: String, (ref mut count, _): (u32, u8)) -> (usize, u32) {
    text.push('!');
    *count += 1;
    (text.len(), *count)
}

#[concurrency_limit(2)]
async fn cfg_pattern(#[cfg(any())] (a, b): (u32, u32), c: u32) -> u32 {
    c
}

/// The expansion's own names (`__LIMITER`, `__call`, `__permit`, `__ret`, `__arg0`) are
/// hygienic: arguments and locals may use them.
#[concurrency_limit(2)]
#[allow(non_snake_case)]
async fn own_names(__LIMITER: u32, __call: u32, (__permit, __arg0): (u32, u32)) -> u32 {
    let __ret = [__LIMITER, __call, __permit, __arg0];
    __ret.iter().sum()
}

#[tokio::test]
async fn ref_mut_and_cfg_pattern_arguments_and_reused_names_work() {
    assert_eq!(push_bang("hi".to_owned(), (1, 0)).await, (3, 2));
    assert_eq!(cfg_pattern(4).await, 4);
    assert_eq!(own_names(1, 2, (3, 4)).await, 10);
}

// Not covered here, on purpose:
// - `-> !` is rejected with a compile error (tests/ui/fail/never_return.rs): the future's
//   `Output = !` would need the unstable never type.
// - `#[must_use]` on an annotated function marks the returned future, which is must-use
//   anyway, not its output, so `f().await;` with the output ignored does not warn as it does
//   for a plain `async fn`. The README lists this under Limitations.
