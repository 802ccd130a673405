//! A fleet cannot share an adaptive limiter (`--features redis`, against a real
//! `redis-server`, as `tests/fleet.rs`): each process's controller would move the one limit
//! from its own calls. `share` and `share_arc` refuse it with `FleetError::Adaptive`, before
//! asking the server anything, and the limiter goes on adapting on its own.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use limit_runtime::redis::{Fleet, FleetError};
use limit_runtime::{Adaptive, Limiter, concurrency_limit};
use limit_suite::redis_server::RedisServer;

static SEARCH: Limiter =
    Limiter::adaptive(Adaptive::new().initial(2).max(64)).with_name("adaptive-fleet/search");

#[concurrency_limit(limiter = SEARCH)]
async fn search() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Whether the server holds any key of `name`: the limiter's metadata is written when it
/// joins.
fn known_to_server(server: &RedisServer, name: &str) -> bool {
    !server
        .command(&["KEYS", &format!("limit-runtime:{{{name}}}:*")])
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_refuses_to_share_an_adaptive_limiter() {
    let server = RedisServer::start();
    let fleet = Fleet::connect(&server.url()).await.expect("connect");

    let error = fleet.share(&SEARCH).await.expect_err("adaptive");
    assert!(
        matches!(&error, FleetError::Adaptive { limiter, .. } if limiter == "adaptive-fleet/search"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("\"adaptive-fleet/search\"") && message.contains("adaptive"),
        "{message}"
    );
    assert!(!known_to_server(&server, "adaptive-fleet/search"));

    // It is still this process's adaptive limiter: not parked, its calls still samples.
    assert_eq!(SEARCH.limit(), 2);
    assert_eq!(SEARCH.stats().fleet, None);
    search().await;
    assert_eq!(SEARCH.stats().adaptive.expect("adaptive").samples, 1);

    // An instance too, and the name is not taken by the refusal: a fixed limiter of that
    // name can be shared by the same fleet.
    let instance =
        Arc::new(Limiter::adaptive(Adaptive::new()).with_owned_name("adaptive-fleet/instance"));
    let error = fleet.share_arc(&instance).await.expect_err("adaptive");
    assert!(
        matches!(&error, FleetError::Adaptive { limiter, .. } if limiter == "adaptive-fleet/instance"),
        "{error:?}"
    );
    let fixed = Arc::new(Limiter::new(3).with_owned_name("adaptive-fleet/instance"));
    fleet
        .share_arc(&fixed)
        .await
        .expect("a fixed limit is shared");
    assert!(known_to_server(&server, "adaptive-fleet/instance"));
}
