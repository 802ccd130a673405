//! `name = "…"` and the default name: a function's limiter is named after its module path
//! and the function (a raw identifier loses its `r#`) unless `name` says otherwise, and that
//! name labels it in `limiter(name)`, `Stats` and every `LimitError`, also with `key`,
//! `queue` and `max_wait` together.
//!
//! Every test has its own annotated functions, so each has its own limiter, and none calls
//! the process-wide `drain()` or `stragglers()`: the tests run in parallel. The test with
//! `max_wait` above zero runs on a paused tokio clock; the others need no runtime.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use limit_runtime::concurrency_limit;
use limit_suite::{ApiError, gate, limiter_of, open, refusal};
use tokio::sync::oneshot;
use tokio::time::advance;
use tokio_test::task;
use tokio_test::{assert_pending, assert_ready};

// ---------------------------------------------------------------------------------------
// `name`, `limiter(name)`, `limiters()`, `stragglers()`

mod nested {
    #[limit_runtime::concurrency_limit(3)]
    pub async fn nested_default_name() -> u8 {
        1
    }
}

#[test]
fn the_default_name_is_the_module_path_and_the_function_name() {
    #[concurrency_limit(2)]
    async fn default_named() -> u8 {
        2
    }

    #[concurrency_limit(2)]
    async fn r#match() -> u8 {
        3
    }

    assert!(limit_runtime::limiter("option_name::default_named").is_none());
    assert_eq!(assert_ready!(task::spawn(default_named()).poll()), 2);
    assert_eq!(
        assert_ready!(task::spawn(nested::nested_default_name()).poll()),
        1
    );
    assert_eq!(assert_ready!(task::spawn(r#match()).poll()), 3);

    let limiter = limiter_of("option_name::default_named");
    assert_eq!(
        (limiter.name(), limiter.limit()),
        ("option_name::default_named", 2)
    );
    assert_eq!(limiter.stats().name, "option_name::default_named");
    let nested = limiter_of("option_name::nested::nested_default_name");
    assert_eq!(nested.limit(), 3);
    assert_eq!(
        limiter_of("option_name::match").limit(),
        2,
        "a raw name loses its `r#`"
    );
}

#[test]
fn a_custom_name_labels_the_limiter_in_lookups_stats_and_errors() {
    #[concurrency_limit(5, name = "github-api", max_wait = Duration::ZERO)]
    async fn github_request(gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        let _ = gate.await;
        Ok(200)
    }

    assert!(
        limit_runtime::limiter("github-api").is_none(),
        "not called yet, so not registered"
    );
    let (release, holds): (Vec<_>, Vec<_>) = (0..5).map(|_| gate()).unzip();
    let mut running: Vec<_> = holds
        .into_iter()
        .map(|hold| task::spawn(github_request(hold)))
        .collect();
    let limiter = limiter_of("github-api");
    assert_eq!((limiter.name(), limiter.limit()), ("github-api", 5));
    assert!(limit_runtime::limiter("option_name::github_request").is_none());
    for call in &mut running {
        assert_pending!(call.poll());
    }

    let error = refusal(assert_ready!(task::spawn(github_request(open())).poll()));
    assert_eq!(error.name(), limiter.name());
    assert_eq!(error.name(), "github-api");
    assert_eq!(
        error.to_string(),
        r#"concurrency limit "github-api" (5): no permit free, and the call may not wait"#
    );
    let stats = limiter.stats();
    assert_eq!(stats.name, "github-api");
    assert_eq!((stats.running, stats.rejected), (5, 1));

    drop(release);
    for call in &mut running {
        assert_eq!(assert_ready!(call.poll()).unwrap(), 200);
    }
    assert_eq!(limiter.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn name_combines_with_key_queue_and_max_wait() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[concurrency_limit(
        1,
        key = tenant,
        queue = 1,
        max_wait = Duration::from_millis(100),
        name = "option_name/everything-but-limiter"
    )]
    async fn tenant_call(tenant: u32, gate: oneshot::Receiver<()>) -> Result<u32, ApiError> {
        BODIES.fetch_add(1, SeqCst);
        let _ = gate.await;
        Ok(tenant)
    }

    let (release, hold) = gate();
    let mut busy = task::spawn(tenant_call(7, hold));
    assert_pending!(busy.poll());
    let limiter = limiter_of("option_name/everything-but-limiter");
    assert_eq!(limiter.stats().active_keys, 1);

    let mut waiter = task::spawn(tenant_call(7, open()));
    assert_pending!(waiter.poll());
    let full = refusal(assert_ready!(task::spawn(tenant_call(7, open())).poll()));
    assert_eq!(
        full.to_string(),
        r#"concurrency limit "option_name/everything-but-limiter" (1): no permit free, and the queue (at most 1 waiting) is full"#
    );
    assert_eq!(
        assert_ready!(task::spawn(tenant_call(8, open())).poll()).unwrap(),
        8,
        "another key runs at once"
    );

    advance(Duration::from_millis(100)).await;
    let timed_out = refusal(assert_ready!(waiter.poll()));
    assert_eq!(
        timed_out.to_string(),
        r#"concurrency limit "option_name/everything-but-limiter" (1): no permit within 100ms"#
    );
    assert_eq!(timed_out.name(), limiter.name());
    assert_eq!(BODIES.load(SeqCst), 2);

    release.send(()).unwrap();
    assert_eq!(assert_ready!(busy.poll()).unwrap(), 7);
    let stats = limiter.stats();
    assert_eq!(stats.name, "option_name/everything-but-limiter");
    assert_eq!(
        (
            stats.in_flight,
            stats.active_keys,
            stats.rejected,
            stats.admitted
        ),
        (0, 0, 2, 2)
    );
}
