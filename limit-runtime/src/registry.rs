//! Every limiter that has been used in this process, and the process-wide `drain()`.
//!
//! A limiter joins the registry at its first call, before that call is counted, so a drain
//! that walks the registry can never miss a call. Nothing here is written per call while no
//! drain is pending: see `in_flight` for how busy limiters are counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::core::Core;
use crate::in_flight::InFlight;
use crate::limiter::Limiter;
use crate::name::Name;

/// Every limiter's core, by the order of its first use. Weak, so that a limiter made at run
/// time leaves when it is dropped: its core's `Drop` removes its entry.
static LIMITERS: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    cores: BTreeMap::new(),
});

struct Registry {
    next_id: u64,
    cores: BTreeMap<u64, Weak<Core>>,
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    LIMITERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates a limiter's core, and registers it.
pub(crate) fn register(
    name: Name,
    limit: usize,
    adaptive: Option<crate::adaptive::Bounds>,
) -> Arc<Core> {
    let mut registry = lock();
    let id = registry.next_id;
    registry.next_id += 1;
    let core = Arc::new(Core::new(name, id, limit, adaptive));
    registry.cores.insert(id, Arc::downgrade(&core));
    core
}

/// Forgets a core that is being dropped: its registry entry, and its mark as busy.
pub(crate) fn deregister(core: &Core) {
    lock().cores.remove(&core.id);
    core.counter().forget(&BUSY_LIMITERS);
}

/// The cores alive now, in the order of first use. Collected under the lock and used after
/// it: dropping the last handle to a core takes the lock.
fn cores() -> Vec<Arc<Core>> {
    lock().cores.values().filter_map(Weak::upgrade).collect()
}

/// How many limiters are counted as busy. A limiter is marked busy by its first call and
/// unmarked only while a drain is pending (see `in_flight`), so this is written per call only
/// while someone drains.
pub(crate) static BUSY_LIMITERS: InFlight = InFlight::new();

/// Waits until no call of any `#[concurrency_limit]` function is in flight.
///
/// A call is in flight from the moment the function is called (its future is created) until
/// that future completes, is dropped, or panics. `drain()` returns at the first moment it
/// can establish at which nothing was in flight, and it waits for calls made while it is
/// pending too. It returns at once when nothing is in flight.
///
/// It is cancel-safe: drop it, or bound it with `tokio::time::timeout`, and nothing leaks.
/// It needs no particular runtime.
///
/// # Examples
///
/// ```
/// use limit_runtime::{concurrency_limit, drain};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static DONE: AtomicUsize = AtomicUsize::new(0);
///
/// #[concurrency_limit(5)]
/// async fn job(_id: u32) {
///     tokio::task::yield_now().await;
///     DONE.fetch_add(1, Ordering::Relaxed);
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// for id in 0..50 {
///     tokio::spawn(job(id));
/// }
/// drain().await; // every call made above has finished
/// assert_eq!(DONE.load(Ordering::Relaxed), 50);
/// # }
/// ```
///
/// Bounding the wait at shutdown:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// if tokio::time::timeout(Duration::from_secs(10), limit_runtime::drain()).await.is_err() {
///     eprintln!("some limited calls were still running after 10s");
/// }
/// # }
/// ```
pub async fn drain() {
    BUSY_LIMITERS
        .wait_idle_after(|| {
            for core in cores() {
                core.counter().unmark(&BUSY_LIMITERS);
            }
        })
        .await;
}

/// Where [`track`] counts its futures. Listed by [`limiters()`] under this name while it
/// has one in flight.
static TRACKED: Limiter = Limiter::new(crate::gate::MAX_LIMIT).with_name("limit_runtime::track");

/// Counts `future` as in flight for the process-wide [`drain()`], from now until it
/// completes or is dropped. It takes no permit, and needs no limiter: for work that is not a
/// limited call but that shutdown must wait for, such as a task that makes limited calls
/// only once it runs.
///
/// A call of an annotated function is in flight from the moment it is made. A call made
/// *inside* a spawned task is made only when the task first runs, so a `drain()` right
/// after `spawn` can miss it. Tracking the task's future closes that gap:
///
/// ```
/// use limit_runtime::{concurrency_limit, drain, track};
///
/// struct Handler {
///     requests: u32,
/// }
///
/// impl Handler {
///     #[concurrency_limit(5)]
///     async fn run(&mut self) {
///         tokio::task::yield_now().await;
///         self.requests += 1;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
/// for _ in 0..5 {
///     let done = done.clone();
///     let mut handler = Handler { requests: 0 };
///     tokio::spawn(track(async move {
///         handler.run().await;
///         done.send(handler.requests).unwrap();
///     }));
/// }
/// drain().await; // counted from `track`, so all 5 handlers have finished
/// drop(done);
/// let mut served = 0;
/// while let Some(requests) = finished.recv().await {
///     served += requests;
/// }
/// assert_eq!(served, 5);
/// # }
/// ```
pub fn track<F: Future>(future: F) -> impl Future<Output = F::Output> {
    TRACKED.track(future)
}

/// Every limiter used so far in this process and not dropped, in the order of first use:
/// each annotated function's own limiter (once the function has been called), each `static`
/// [`Limiter`] (once it has been used), and each limiter made at run time, from its first use
/// until it is dropped. This answers "what is still running?" at shutdown;
/// [`stragglers()`](crate::stragglers) formats the answer for a log line.
///
/// Each item is a handle that shares the limiter's state: its counters, its limit
/// ([`set_limit`](Limiter::set_limit) through it resizes the limiter) and its calls. Holding
/// one keeps a limiter made at run time listed.
///
/// A function's limiter is named after the function's path, `module_path!()` + `::` + the
/// function's name (so `my_crate::api::fetch`), and a method's with a `self` receiver after
/// its type (`my_crate::server::Handler::run`), unless `name = "…"` says otherwise.
///
/// ```
/// use limit_runtime::{concurrency_limit, limiters};
///
/// mod api {
///     #[limit_runtime::concurrency_limit(3)]
///     pub async fn fetch() {}
/// }
///
/// let call = api::fetch();
/// let limiter = limiters()
///     .find(|limiter| limiter.name().ends_with("api::fetch"))
///     .expect("called once, so registered");
/// assert_eq!((limiter.limit(), limiter.in_flight()), (3, 1));
/// # drop(call);
/// ```
pub fn limiters() -> impl Iterator<Item = Limiter> {
    cores().into_iter().map(Limiter::from_core)
}

/// The limiter named `name`, if one has been used in this process (the first one, if
/// several share the name). See [`limiters()`] for the naming rule.
///
/// ```
/// use limit_runtime::{concurrency_limit, limiter};
///
/// #[concurrency_limit(2, name = "thumbnails")]
/// async fn thumbnail(id: u32) -> u32 {
///     id
/// }
///
/// # futures::executor::block_on(async {
/// thumbnail(1).await;
/// assert_eq!(limiter("thumbnails").unwrap().stats().admitted, 1);
/// # });
/// ```
#[must_use]
pub fn limiter(name: &str) -> Option<Limiter> {
    limiters().find(|limiter| limiter.name() == name)
}
