//! Limit how many calls of an async function run at once, and wait for all of them to finish.
//!
//! Put [`#[concurrency_limit(N)]`](concurrency_limit) on an `async fn` and at most `N` calls
//! of it run at once; the others wait their turn, first come, first served. Call
//! [`drain()`] at shutdown and it returns once every call made so far has finished,
//! including calls that were spawned but have not started yet.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! limit-runtime = "0.2"
//! ```
//!
//! That is the only dependency the attribute needs: its expansion refers to nothing but this
//! crate. (The example below uses tokio as its runtime; the crate does not require one, see
//! [Runtime requirements](#runtime-requirements).)
//!
//! ```
//! use limit_runtime::{concurrency_limit, drain};
//!
//! #[concurrency_limit(5)] // at most 5 calls of `fetch` run at once
//! async fn fetch(url: String) -> usize {
//!     url.len()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! for i in 0..50 {
//!     // In input order, at most 5 at once; the producer waits here while 5 run.
//!     tokio::spawn(fetch(format!("https://example.com/{i}")).admitted().await);
//! }
//! drain().await; // returns once every call made so far has finished
//! # }
//! ```
//!
//! [`admitted()`](Limited::admitted) waits for the call's permit in the producer's task, and
//! returns the future that holds it and runs the body. Without it,
//! `for … { tokio::spawn(fetch(url)); }` also keeps the limit and `drain()`, but it costs one
//! waiting task per input (memory grows with the input), and the calls start in the order
//! the scheduler first polls their tasks, not in the order they were made.
//!
//! A limit can also belong to an instance (one per server, per pool, per tenant):
//! `#[concurrency_limit(limiter = &self.connections)]`, with `connections: Limiter` made by
//! [`Limiter::new`] at run time. See [Limits per instance](#limits-per-instance).
//!
//! # Semantics
//!
#![doc = include_str!("../docs/semantics.md")]
//!
//! ```
//! use limit_runtime::{concurrency_limit, limiter};
//!
//! #[concurrency_limit(2, name = "jobs")]
//! async fn job(id: u32) -> u32 {
//!     id
//! }
//!
//! let calls: Vec<_> = (0..5).map(job).collect(); // made, not polled yet
//! let jobs = limiter("jobs").unwrap();
//! assert_eq!((jobs.in_flight(), jobs.running()), (5, 0)); // in flight from the call on
//! drop(calls); // dropping a call ends it
//! assert_eq!(jobs.in_flight(), 0);
//!
//! // No runtime: any executor drives a limited call.
//! assert_eq!(futures::executor::block_on(job(7)), 7);
//! ```
//!
//! # Options
//!
//! What the limit and each option do, and how they combine, is in [the attribute's
//! table](concurrency_limit#options). Here each is shown next to roughly what you would
//! write by hand without the attribute, so that `cargo expand` output and hand-rolled code in
//! other codebases both read familiar.
//!
//! ## `N`: the limit
//!
//!
//! ```
//! use limit_runtime::concurrency_limit;
//!
//! #[concurrency_limit(5)]
//! async fn fetch(url: String) -> usize {
//!     url.len()
//! }
//! # futures::executor::block_on(async { assert_eq!(fetch("ab".into()).await, 2) });
//! ```
//!
//! This is roughly what you would write by hand: a semaphore created at the first call, an
//! in-flight counter with a `Notify` for `drain()`, a guard that counts the call *before*
//! the future is created, and a permit taken inside the future and held while the body runs.
//!
//! ```
//! use std::pin::pin;
//! use std::sync::LazyLock;
//! use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
//! use tokio::sync::{Notify, Semaphore};
//!
//! // What `drain()` waits for: calls made and not yet finished.
//! static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
//! static IDLE: Notify = Notify::const_new();
//!
//! struct InFlight;
//!
//! impl InFlight {
//!     fn enter() -> Self {
//!         IN_FLIGHT.fetch_add(1, SeqCst);
//!         InFlight
//!     }
//! }
//!
//! impl Drop for InFlight {
//!     fn drop(&mut self) {
//!         if IN_FLIGHT.fetch_sub(1, SeqCst) == 1 {
//!             IDLE.notify_waiters();
//!         }
//!     }
//! }
//!
//! async fn drain() {
//!     loop {
//!         let mut idle = pin!(IDLE.notified());
//!         idle.as_mut().enable(); // before reading the count, so no wake-up is missed
//!         if IN_FLIGHT.load(SeqCst) == 0 {
//!             return;
//!         }
//!         idle.await;
//!     }
//! }
//!
//! // The limit expression runs once, at the first call.
//! static FETCH: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(5));
//!
//! // A plain `fn`, not an `async fn`: its first line runs when the call is made.
//! fn fetch(url: String) -> impl Future<Output = usize> {
//!     let call = InFlight::enter();
//!     async move {
//!         let _call = call; // moved into the future: the call ends when the future does
//!         let _permit = FETCH.acquire().await.expect("never closed"); // FIFO
//!         url.len()
//!     }
//! }
//! # futures::executor::block_on(async {
//! #     let calls: Vec<_> = (0..10).map(|i| fetch(i.to_string())).collect();
//! #     assert_eq!(IN_FLIGHT.load(SeqCst), 10);
//! #     futures::future::join_all(calls).await;
//! #     drain().await;
//! # });
//! ```
//!
//! The attribute's version differs in ways that are hard to get right by hand: its
//! [`drain()`] covers every limiter in the process and returns even if the count touched zero
//! only briefly while it slept, the guards it adds take no space in the call's future, and the
//! permit's fast path takes no lock. The examples below leave out the in-flight counting and
//! show only what each option adds.
//!
//! ## `limiter = PATH`: one limit for several functions
//!
//! ```
//! use limit_runtime::{concurrency_limit, Limiter};
//!
//! static DATABASE: Limiter = Limiter::new(10).with_name("database");
//!
//! #[concurrency_limit(limiter = DATABASE)]
//! async fn load_user(id: u64) -> String {
//!     format!("user {id}")
//! }
//!
//! #[concurrency_limit(limiter = DATABASE)]
//! async fn save_user(_user: String) {}
//! # futures::executor::block_on(async {
//! #     save_user(load_user(1).await).await;
//! #     assert_eq!(DATABASE.stats().admitted, 2);
//! # });
//! ```
//!
//! By hand, one `static` semaphore that both functions take their permit from. Code that is
//! not an annotated function takes a permit of the same [`Limiter`] with
//! [`Limiter::acquire`].
//!
//! ```
//! use tokio::sync::Semaphore;
//!
//! static DATABASE: Semaphore = Semaphore::const_new(10);
//!
//! async fn load_user(id: u64) -> String {
//!     let _permit = DATABASE.acquire().await.expect("never closed");
//!     format!("user {id}")
//! }
//!
//! async fn save_user(_user: String) {
//!     let _permit = DATABASE.acquire().await.expect("never closed");
//! }
//! # futures::executor::block_on(async { save_user(load_user(1).await).await });
//! ```
//!
//! ## `limiter = EXPR`: a limit per instance
//!
//! ```
//! use limit_runtime::{concurrency_limit, Limiter};
//! use std::sync::Arc;
//!
//! struct Server {
//!     connections: Limiter,    // one limit per server
//!     commands: Arc<Limiter>,  // shared with its handlers
//! }
//!
//! impl Server {
//!     #[concurrency_limit(limiter = &self.connections)]
//!     async fn serve(&self, request: u32) -> u32 {
//!         request * 2
//!     }
//!
//!     // `&mut self` (or `self`, `Arc<Self>`, `Pin<&mut Self>`) cannot lend a borrow to
//!     // the future that also holds `self`: clone an `Arc`.
//!     #[concurrency_limit(limiter = self.commands.clone())]
//!     async fn reconfigure(&mut self, limit: usize) {
//!         self.connections.set_limit(limit);
//!     }
//! }
//!
//! # futures::executor::block_on(async {
//! let mut a = Server { connections: Limiter::new(250), commands: Arc::new(Limiter::new(1)) };
//! let b = Server { connections: Limiter::new(10), commands: Arc::new(Limiter::new(1)) };
//! assert_eq!(a.serve(2).await + b.serve(3).await, 10);
//! a.reconfigure(100).await;
//! assert_eq!((a.connections.limit(), b.connections.limit()), (100, 10));
//! # });
//! ```
//!
//! By hand, a `Semaphore` field, and an `Arc<Semaphore>` for what must outlive a borrow. See
//! [Limits per instance](#limits-per-instance) for draining, listing and reporting them.
//!
//! ## `max_wait = EXPR`: give up after a `Duration`
//!
//! ```
//! use limit_runtime::{concurrency_limit, LimitError};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Busy(LimitError),
//! }
//!
//! impl From<LimitError> for ApiError {
//!     fn from(error: LimitError) -> Self {
//!         ApiError::Busy(error)
//!     }
//! }
//!
//! #[concurrency_limit(5, max_wait = Duration::from_millis(200))]
//! async fn call_api(path: &str) -> Result<String, ApiError> {
//!     Ok(format!("GET {path}"))
//! }
//!
//! #[concurrency_limit(5, max_wait = Duration::ZERO)] // never wait
//! async fn call_api_now(path: &str) -> Result<String, ApiError> {
//!     Ok(format!("GET {path}"))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     assert_eq!(call_api("/a").await.unwrap(), "GET /a");
//! #     assert_eq!(call_api_now("/b").await.unwrap(), "GET /b");
//! # }
//! ```
//!
//! By hand, a `tokio::time::timeout` around the wait, or `try_acquire` for a zero wait:
//!
//! ```
//! use std::time::Duration;
//! use tokio::sync::Semaphore;
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Busy,
//! }
//!
//! static API: Semaphore = Semaphore::const_new(5);
//!
//! async fn call_api(path: &str) -> Result<String, ApiError> {
//!     let Ok(permit) = tokio::time::timeout(Duration::from_millis(200), API.acquire()).await
//!     else {
//!         return Err(ApiError::Busy); // the body does not run
//!     };
//!     let _permit = permit.expect("never closed");
//!     Ok(format!("GET {path}"))
//! }
//!
//! async fn call_api_now(path: &str) -> Result<String, ApiError> {
//!     let Ok(_permit) = API.try_acquire() else {
//!         return Err(ApiError::Busy);
//!     };
//!     Ok(format!("GET {path}"))
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! #     assert_eq!(call_api("/a").await.unwrap(), "GET /a");
//! #     assert_eq!(call_api_now("/b").await.unwrap(), "GET /b");
//! # }
//! ```
//!
//! ## `queue = N`: bound how many calls wait
//!
//! Here the refusal converts into `io::Error`.
//!
//! ```
//! use limit_runtime::concurrency_limit;
//!
//! #[concurrency_limit(5, queue = 100)]
//! async fn render(page: u32) -> std::io::Result<u32> {
//!     Ok(page)
//! }
//! # futures::executor::block_on(async { assert_eq!(render(3).await.unwrap(), 3) });
//! ```
//!
//! By hand, a counter of waiting calls, raised with a compare-and-swap that fails when it is
//! full, and lowered when the call is admitted or cancelled:
//!
//! ```
//! use std::io;
//! use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
//! use tokio::sync::Semaphore;
//!
//! static RENDER: Semaphore = Semaphore::const_new(5);
//! static WAITING: AtomicUsize = AtomicUsize::new(0);
//!
//! struct Waiting;
//!
//! impl Drop for Waiting {
//!     fn drop(&mut self) {
//!         WAITING.fetch_sub(1, SeqCst);
//!     }
//! }
//!
//! async fn render(page: u32) -> io::Result<u32> {
//!     let _permit = match RENDER.try_acquire() {
//!         Ok(permit) => permit,
//!         Err(_) => {
//!             if WAITING.fetch_update(SeqCst, SeqCst, |n| (n < 100).then_some(n + 1)).is_err() {
//!                 return Err(io::ErrorKind::ResourceBusy.into());
//!             }
//!             let _waiting = Waiting;
//!             RENDER.acquire().await.expect("never closed")
//!         }
//!     };
//!     Ok(page)
//! }
//! # futures::executor::block_on(async { assert_eq!(render(3).await.unwrap(), 3) });
//! ```
//!
//! ## `key = EXPR`: a limit for each key
//!
//! ```
//! use limit_runtime::concurrency_limit;
//!
//! fn host_of(url: &str) -> String {
//!     url.split('/').nth(2).unwrap_or_default().to_owned()
//! }
//!
//! #[concurrency_limit(2, key = host_of(&url))] // 2 at once per host
//! async fn crawl(url: String) -> usize {
//!     url.len()
//! }
//! # futures::executor::block_on(async {
//! #     assert_eq!(crawl("https://a.example/x".into()).await, 19);
//! # });
//! ```
//!
//! By hand, a map from key to semaphore, whose entry the key's first call creates and its
//! last call removes:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, LazyLock, Mutex};
//! use tokio::sync::Semaphore;
//!
//! fn host_of(url: &str) -> String {
//!     url.split('/').nth(2).unwrap_or_default().to_owned()
//! }
//!
//! // Each key's semaphore, and how many of its calls are in flight.
//! static HOSTS: LazyLock<Mutex<HashMap<String, (Arc<Semaphore>, usize)>>> =
//!     LazyLock::new(Default::default);
//!
//! struct KeyCall(String);
//!
//! impl KeyCall {
//!     fn enter(key: String) -> (Self, Arc<Semaphore>) {
//!         let mut hosts = HOSTS.lock().unwrap();
//!         let entry = hosts
//!             .entry(key.clone())
//!             .or_insert_with(|| (Arc::new(Semaphore::new(2)), 0));
//!         entry.1 += 1;
//!         let semaphore = Arc::clone(&entry.0);
//!         (KeyCall(key), semaphore)
//!     }
//! }
//!
//! impl Drop for KeyCall {
//!     fn drop(&mut self) {
//!         let mut hosts = HOSTS.lock().unwrap();
//!         let entry = hosts.get_mut(&self.0).expect("entered");
//!         entry.1 -= 1;
//!         if entry.1 == 0 {
//!             hosts.remove(&self.0);
//!         }
//!     }
//! }
//!
//! fn crawl(url: String) -> impl Future<Output = usize> {
//!     let (call, semaphore) = KeyCall::enter(host_of(&url)); // when the call is made
//!     async move {
//!         let _call = call;
//!         let _permit = semaphore.acquire().await.expect("never closed");
//!         url.len()
//!     }
//! }
//! # futures::executor::block_on(async {
//! #     assert_eq!(crawl("https://a.example/x".into()).await, 19);
//! #     assert!(HOSTS.lock().unwrap().is_empty());
//! # });
//! ```
//!
//! ## `weight = EXPR`: a limit in units, not calls
//!
//! ```
//! use limit_runtime::{concurrency_limit, LimitError};
//!
//! #[concurrency_limit(64 << 20, weight = body.len())] // at most 64 MiB of bodies at once
//! async fn upload(body: Vec<u8>) -> Result<usize, LimitError> {
//!     Ok(body.len())
//! }
//!
//! # futures::executor::block_on(async {
//! assert_eq!(upload(vec![0; 1 << 20]).await.unwrap(), 1 << 20);
//! let too_big = upload(vec![0; 65 << 20]).await.unwrap_err(); // could never fit
//! assert!(matches!(too_big, LimitError::TooHeavy { .. }));
//! # });
//! ```
//!
//! By hand, `acquire_many` on a semaphore sized in bytes, with the check that tokio leaves
//! to you: a request for more permits than the semaphore has waits forever.
//!
//! ```
//! use tokio::sync::Semaphore;
//!
//! const BUDGET: usize = 64 << 20;
//! static BYTES: Semaphore = Semaphore::const_new(BUDGET);
//!
//! #[derive(Debug)]
//! struct TooBig;
//!
//! async fn upload(body: Vec<u8>) -> Result<usize, TooBig> {
//!     if body.len() > BUDGET {
//!         return Err(TooBig);
//!     }
//!     let weight = u32::try_from(body.len()).map_err(|_| TooBig)?;
//!     let _permits = BYTES.acquire_many(weight).await.expect("never closed");
//!     Ok(body.len())
//! }
//! # futures::executor::block_on(async { assert_eq!(upload(vec![0; 3]).await.unwrap(), 3) });
//! ```
//!
//! ## `name = "…"`: the limiter's name
//!
//! There is nothing to write by hand for it, short of keeping a name next to each
//! semaphore.
//!
//! ```
//! use limit_runtime::{concurrency_limit, limiter, LimitError};
//! use std::time::Duration;
//!
//! #[concurrency_limit(1, max_wait = Duration::ZERO, name = "github-api")]
//! async fn call_api(path: &str) -> Result<String, LimitError> {
//!     Ok(format!("GET {path}"))
//! }
//!
//! # futures::executor::block_on(async {
//! assert_eq!(call_api("/a").await.unwrap(), "GET /a");
//! let api = limiter("github-api").unwrap(); // found by its name
//! let permit = api.try_acquire().unwrap(); // hold the only permit
//! let error = call_api("/b").await.unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     r#"concurrency limit "github-api" (1): no permit free, and the call may not wait"#
//! );
//! drop(permit);
//! # });
//! ```
//!
//! # Handles
//!
//! Every annotated function has a [`Limiter`] of its own, and a [`Limiter`] of yours (a
//! `static`, or one per instance) can be shared by several functions
//! (`#[concurrency_limit(limiter = DATABASE)]`) and by code that takes permits by hand. [`limiters()`] lists the limiters used so far, [`limiter()`] finds
//! one by name, [`Limiter::stats`] reads its counters, [`Limiter::set_limit`] resizes it, and
//! [`stragglers()`] reports what is still in flight when a bounded [`drain()`] times out.
//!
//! # Limits per instance
//!
#![doc = include_str!("../docs/instances.md")]
//!
//! ```
//! use limit_runtime::Limiter;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let connections = Arc::new(Limiter::new(250).with_owned_name(format!("server-{}", 6379)));
//! for socket in 0..3 {
//!     let permit = Arc::clone(&connections).acquire_owned().await; // before `accept()`
//!     tokio::spawn(async move {
//!         let _permit = permit; // the socket's slot, until the connection ends
//!         tokio::task::yield_now().await;
//!         socket
//!     });
//! }
//! assert_eq!(
//!     connections.stats().to_string(),
//!     r#""server-6379" (3 in flight: 3 running, 0 waiting)"#
//! );
//! connections.drain().await; // this server's connections only
//! # }
//! ```
//!
//! The example `limit-examples/examples/server.rs` (`cargo run --example server`) runs two
//! servers in the shape of tokio's mini-redis, and shuts them down one at a time.
//!
//! [`track`] in code:
//!
//! ```
//! use limit_runtime::{drain, track};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (done, finished) = tokio::sync::oneshot::channel();
//! tokio::spawn(track(async move {
//!     tokio::task::yield_now().await;
//!     done.send("flushed").unwrap();
//! }));
//! drain().await; // waits for the tracked task
//! assert_eq!(finished.await.unwrap(), "flushed");
//! # }
//! ```
//!
//! # Adaptive limits
//!
#![doc = include_str!("../docs/adaptive.md")]
//!
//! ```
//! use limit_runtime::{concurrency_limit, limiter};
//! use std::time::Duration;
//!
//! #[concurrency_limit(adaptive(initial = 1, max = 50), name = "backend")]
//! async fn call_backend(id: u32) -> u32 {
//!     tokio::time::sleep(Duration::from_millis(10)).await; // a downstream with no queue
//!     id
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // Many callers, on paused time: the calls never queue in the downstream, so from 1 the
//! // limit doubles each round, up to its `max`.
//! let calls: Vec<_> = (0..2000).map(|id| tokio::spawn(call_backend(id))).collect();
//! for call in calls {
//!     call.await.unwrap();
//! }
//! let backend = limiter("backend").unwrap();
//! assert_eq!(backend.limit(), 50);
//! assert_eq!(backend.stats().adaptive.unwrap().baseline, Some(Duration::from_millis(10)));
//! # }
//! ```
//!
//! # Runtime requirements
//!
#![doc = include_str!("../docs/runtime.md")]
//!
//! ```
//! use limit_runtime::{concurrency_limit, drain, LimitError};
//! use std::time::Duration;
//!
//! #[concurrency_limit(2, max_wait = Duration::ZERO, queue = 10)]
//! async fn try_now(id: u32) -> Result<u32, LimitError> {
//!     Ok(id)
//! }
//!
//! #[concurrency_limit(2, key = id % 3)]
//! async fn keyed(id: u32) -> u32 {
//!     id
//! }
//!
//! // No tokio runtime anywhere.
//! futures::executor::block_on(async {
//!     assert_eq!(try_now(1).await.unwrap(), 1);
//!     assert_eq!(keyed(4).await, 4);
//!     drain().await;
//! });
//! ```
//!
//! # Features
//!
#![doc = include_str!("../docs/features.md")]
//!
//! ## `tracing`
//!
#![doc = include_str!("../docs/tracing.md")]
//!
// This example needs its feature: it runs when the feature is on (CI runs the doc tests
// with `--all-features`), and is shown as `ignore` otherwise. A doc test cannot leave itself
// out: `#![cfg(...)]` in it removes its `main` too, and it fails to build.
#![cfg_attr(feature = "tracing", doc = "```")]
#![cfg_attr(not(feature = "tracing"), doc = "```ignore")]
//! use limit_runtime::{concurrency_limit, LimitError, Limiter};
//! use std::time::Duration;
//!
//! static EXPORTS: Limiter = Limiter::new(1).with_name("exports");
//!
//! #[concurrency_limit(limiter = EXPORTS)]
//! async fn export(id: u32) -> u32 {
//!     tokio::task::yield_now().await;
//!     id
//! }
//!
//! #[concurrency_limit(limiter = EXPORTS, max_wait = Duration::ZERO)]
//! async fn export_now(id: u32) -> Result<u32, LimitError> {
//!     Ok(id)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).init();
//!
//! // The first call runs, the second waits for it, the third may not wait.
//! let (first, second, third) = tokio::join!(export(1), export(2), export_now(3));
//! assert_eq!((first, second), (1, 2));
//! assert!(matches!(third, Err(LimitError::NoPermit { .. })));
//! // The subscriber printed (without its timestamps):
//! //  DEBUG concurrency_limit.wait{limiter="exports"}: limit_runtime: waiting for a permit limiter="exports" limit=1
//! //   WARN limit_runtime: concurrency limit "exports" (1): no permit free, and the call may not wait limiter="exports" limit=1 reason="no_permit"
//! //  DEBUG concurrency_limit.wait{limiter="exports"}: limit_runtime: admitted after waiting limiter="exports" waited=53.1µs
//! # }
//! ```
//!
//! ## `metrics`
//!
#![doc = include_str!("../docs/metrics.md")]
//!
// This example needs its feature: it runs when the feature is on (CI runs the doc tests
// with `--all-features`), and is shown as `ignore` otherwise. A doc test cannot leave itself
// out: `#![cfg(...)]` in it removes its `main` too, and it fails to build.
#![cfg_attr(feature = "metrics", doc = "```")]
#![cfg_attr(not(feature = "metrics"), doc = "```ignore")]
//! use limit_runtime::concurrency_limit;
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//!
//! #[concurrency_limit(2, name = "thumbnails")]
//! async fn thumbnail(id: u32) -> u32 {
//!     id
//! }
//!
//! // An application installs an exporter as the global recorder; this example records into
//! // the facade's debugging recorder, for this thread only.
//! let recorder = DebuggingRecorder::new();
//! metrics::with_local_recorder(&recorder, || {
//!     futures::executor::block_on(async {
//!         assert_eq!(thumbnail(1).await + thumbnail(2).await, 3);
//!     });
//! });
//! let admitted = recorder
//!     .snapshotter()
//!     .snapshot()
//!     .into_vec()
//!     .into_iter()
//!     .find(|(key, ..)| key.key().name() == "concurrency_limit_admitted_total")
//!     .unwrap();
//! let labels: Vec<_> = admitted.0.key().labels().map(|label| label.value().to_owned()).collect();
//! assert_eq!(labels, ["thumbnails"]);
//! assert_eq!(admitted.3, DebugValue::Counter(2));
//! ```
//!
//! # Limitations
//!
#![doc = include_str!("../docs/limitations.md")]
//!
//! The first two, in code. A function that awaits itself at the cap:
//!
//! ```
//! use futures::FutureExt;
//! use limit_runtime::concurrency_limit;
//!
//! #[concurrency_limit(1)]
//! async fn walk(depth: u32) -> u32 {
//!     if depth == 0 {
//!         return 0;
//!     }
//!     Box::pin(walk(depth - 1)).await + 1
//! }
//!
//! assert_eq!(walk(0).now_or_never(), Some(0));
//! assert_eq!(walk(1).now_or_never(), None); // holds the only permit, and waits for a second
//! ```
//!
//! A futurelock, and the way out:
//!
//! ```
//! use limit_runtime::{concurrency_limit, Limiter};
//! use std::pin::pin;
//!
//! static POOL: Limiter = Limiter::new(1);
//!
//! #[concurrency_limit(limiter = POOL)]
//! async fn step(id: u32) -> u32 {
//!     tokio::task::yield_now().await;
//!     id
//! }
//!
//! # futures::executor::block_on(async {
//! let mut held = pin!(step(1));
//! assert!(futures::poll!(held.as_mut()).is_pending()); // took the only permit
//! let mut second = pin!(step(2));
//! assert!(futures::poll!(second.as_mut()).is_pending()); // waits for that permit
//! let stats = POOL.stats();
//! assert_eq!((stats.running, stats.waiting), (1, 1));
//! // `second.await` here would never return: only polling `held` frees its permit.
//! assert_eq!(held.await, 1); // the fix: finish (or drop) the held call first
//! assert_eq!(second.await, 2);
//! # });
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Under `--cfg loom` only the model-checked parts are built, with loom's primitives, and the
// models in `loom_models` run against them (see the README's Testing section).
#![cfg_attr(loom, expect(dead_code))]

#[cfg(not(loom))]
mod adaptive;
#[cfg(all(feature = "redis", not(loom)))]
mod backend;
#[cfg(not(loom))]
mod call;
#[cfg(not(loom))]
mod core;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod fence;
mod gate;
mod in_flight;
#[cfg(not(loom))]
mod keyed;
#[cfg(not(loom))]
mod limited;
#[cfg(not(loom))]
mod limiter;
#[cfg(all(loom, test))]
mod loom_models;
#[cfg(not(loom))]
mod name;
#[cfg(not(loom))]
mod observe;
/// One limit shared by every process of a fleet, through a Redis server.
///
#[doc = include_str!("../docs/fleet.md")]
///
#[cfg(all(feature = "redis", not(loom)))]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(not(loom))]
mod registry;
#[cfg(not(loom))]
mod stats;
mod sync;

#[cfg(not(loom))]
pub use adaptive::Adaptive;
#[cfg(not(loom))]
pub use call::{OwnedPermit, Permit};
#[cfg(not(loom))]
pub use error::{LimitError, LimitTooLarge};
/// Limits how many calls of an `async fn` run at once.
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// #[concurrency_limit(5)]
/// async fn fetch(url: String) -> usize {
///     url.len()
/// }
/// # futures::executor::block_on(async { assert_eq!(fetch("abc".into()).await, 3) });
/// ```
///
/// # The limit
///
/// A literal, a constant, or any `usize` expression, which may read configuration (its rules
/// are in the first row of the table under [Options](#options)):
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// const MAX_JOBS: usize = 8;
///
/// fn limit_from_config() -> usize {
///     std::env::var("WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(4)
/// }
///
/// #[concurrency_limit(MAX_JOBS)]
/// async fn job(id: u32) -> u32 {
///     id
/// }
///
/// #[concurrency_limit(limit_from_config())]
/// async fn crawl(url: &str) -> usize {
///     url.len()
/// }
///
/// struct Client;
///
/// impl Client {
///     const LIMIT: usize = 16;
///
///     #[concurrency_limit(Self::LIMIT)]
///     async fn get(&self, path: &str) -> String {
///         format!("GET {path}")
///     }
/// }
/// # futures::executor::block_on(async {
/// #     assert_eq!(job(1).await + crawl("ab").await as u32, 3);
/// #     assert_eq!(Client.get("/").await, "GET /");
/// # });
/// ```
///
/// An expression out of range panics at the first call, naming the function and the value:
///
/// ```should_panic
/// use limit_runtime::concurrency_limit;
///
/// fn no_workers() -> usize {
///     0
/// }
///
/// #[concurrency_limit(no_workers())]
/// async fn job() {}
///
/// let _ = job(); // panics: "… the limit evaluated to 0; it must be at least 1"
/// ```
///
/// # Options
///
#[doc = include_str!("../docs/options.md")]
///
/// The crate documentation shows each option [next to its hand-written
/// equivalent](crate#options). Several at once:
///
/// ```
/// use limit_runtime::{concurrency_limit, LimitError, Limiter};
/// use std::time::Duration;
///
/// static DATABASE: Limiter = Limiter::new(10).with_name("database");
///
/// #[derive(Debug)]
/// struct ApiError(LimitError);
///
/// impl From<LimitError> for ApiError {
///     fn from(error: LimitError) -> Self {
///         ApiError(error)
///     }
/// }
///
/// #[concurrency_limit(limiter = DATABASE)]
/// async fn load_user(id: u64) -> String {
///     format!("user {id}")
/// }
///
/// #[concurrency_limit(5, max_wait = Duration::from_millis(200), name = "github-api")]
/// async fn call_api(path: &str) -> Result<String, ApiError> {
///     Ok(format!("GET {path}"))
/// }
///
/// #[concurrency_limit(5, queue = 100, max_wait = Duration::from_secs(1))]
/// async fn render(page: u32) -> std::io::Result<u32> {
///     Ok(page)
/// }
///
/// fn host_of(url: &str) -> String {
///     url.split('/').nth(2).unwrap_or_default().to_owned()
/// }
///
/// #[concurrency_limit(2, key = host_of(&url), max_wait = Duration::from_millis(500))]
/// async fn crawl(url: String) -> anyhow::Result<usize> {
///     Ok(url.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// assert_eq!(load_user(1).await, "user 1");
/// assert_eq!(call_api("/repos").await.unwrap(), "GET /repos");
/// assert_eq!(render(3).await?, 3);
/// assert_eq!(crawl("https://example.com/a".into()).await?, 21);
/// assert_eq!(limit_runtime::limiter("github-api").unwrap().stats().admitted, 1);
/// # Ok(())
/// # }
/// ```
///
/// # What it expands to
///
/// The `async fn` becomes a plain `fn` returning a [`Limited`] future. The plain `fn`
/// registers the call, so the call is in flight from the moment it is made; the future it
/// returns waits for a permit and then runs the body. For
///
/// ```
/// # use limit_runtime::concurrency_limit;
/// #[concurrency_limit(5)]
/// async fn fetch(url: String) -> usize {
///     url.len()
/// }
/// ```
///
/// `cargo expand` shows (this block compiles as it stands):
///
/// ```
/// #[allow(refining_impl_trait, clippy::type_complexity)]
/// fn fetch(
///     url: String,
/// ) -> ::limit_runtime::Limited<
///     impl ::limit_runtime::__private::Spec<Output = usize>,
/// > {
///     let __call = {
///         struct __Limiter;
///         impl ::limit_runtime::__private::Handle for __Limiter {
///             #[inline]
///             fn limiter(&self) -> &::limit_runtime::__private::Limiter {
///                 static __LIMITER: ::limit_runtime::__private::Limiter = ::limit_runtime::__private::Limiter::per_fn(
///                     ::core::concat!(::core::module_path!(), "::fetch"),
///                 );
///                 &__LIMITER
///             }
///         }
///         ::limit_runtime::__private::Limiter::call(
///             __Limiter,
///             || 5,
///             ::core::option::Option::None,
///         )
///     };
///     ::limit_runtime::Limited::new(
///         ::limit_runtime::__private::Machine::new(
///             __call,
///             ::limit_runtime::__private::Call::wait,
///             ::limit_runtime::__private::AtFront::wait,
///             move |__permit| async move {
///                 let __permit = __permit;
///                 let url = url;
///                 #[allow(clippy::diverging_sub_expression)]
///                 let __ret: usize = { url.len() };
///                 #[allow(unreachable_code)] __ret
///             },
///         ),
///     )
/// }
/// # futures::executor::block_on(async { assert_eq!(fetch("ab".into()).await, 2) });
/// ```
///
#[doc = include_str!("../docs/expansion.md")]
///
/// # Where it applies
///
#[doc = include_str!("../docs/shapes.md")]
///
/// One limiter per function item is shared by every caller, receiver and generic
/// instantiation:
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// struct Store;
///
/// impl Store {
///     // `a.load()` and `b.load()` share these 2 permits, as do `load::<u8>` and
///     // `load::<String>` below.
///     #[concurrency_limit(2)]
///     async fn load<T: Default>(&self) -> T {
///         T::default()
///     }
/// }
/// # futures::executor::block_on(async {
/// #     let (a, b) = (Store, Store);
/// #     assert_eq!(a.load::<u8>().await, 0);
/// #     assert_eq!(b.load::<String>().await, "");
/// # });
/// ```
///
/// In an `#[async_trait]` impl:
///
/// ```
/// use limit_runtime::concurrency_limit;
///
/// #[async_trait::async_trait]
/// trait Service {
///     async fn call(&self, request: u32) -> u32;
/// }
///
/// struct Doubler;
///
/// #[async_trait::async_trait]
/// impl Service for Doubler {
///     #[concurrency_limit(4)]
///     async fn call(&self, request: u32) -> u32 {
///         request * 2
///     }
/// }
/// # futures::executor::block_on(async { assert_eq!(Doubler.call(2).await, 4) });
/// ```
#[cfg(not(loom))]
#[doc(inline)]
pub use limit_macro::concurrency_limit;
#[cfg(not(loom))]
pub use limited::{Admit, Limited};
#[cfg(not(loom))]
pub use limiter::Limiter;
#[cfg(not(loom))]
pub use name::Name;
#[cfg(not(loom))]
pub use registry::{drain, limiter, limiters, track};
#[cfg(not(loom))]
pub use stats::{AdaptiveStats, SharedStats, Stats, Stragglers, stragglers};

/// What the expansion of `#[concurrency_limit]` refers to. Not a public API: it may change
/// in any release.
#[cfg(not(loom))]
#[doc(hidden)]
pub mod __private {
    pub use crate::adaptive::Adaptive;
    pub use crate::adaptive::controller::Controller as AdaptiveController;
    pub use crate::call::{
        Admitted, AtFront, Back, Call, Claim, Front, Handle, Heavy, HeavyPanics, HeavyRefuses,
        IntoHandle, Keyed, OnHeavy, Place, Policy, Refused, Sampled, Step, Unkeyed, Weighted,
        never_refused, overloaded,
    };
    pub use crate::error::{Refusal, refusal};
    pub use crate::limited::{Entered, Machine, Never, Outcome, Spec, Waited, never_front};
    pub use crate::limiter::Limiter;
}
