//! Fencing tokens of shared limiters (`--features redis`), against a real `redis-server`:
//! each grant's token, in the order the server granted them, whichever way the grant
//! reached its process (the script's reply, a pub/sub message, a renewal), and the token an
//! annotated body reads with `fencing_token()`.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use limit_runtime::redis::{FencingToken, Fleet, fencing_token};
use limit_runtime::{Limiter, concurrency_limit};
use limit_suite::HANG;
use limit_suite::redis_server::RedisServer;
use tokio::time::{sleep, timeout};

fn epoch(server: &RedisServer, name: &str) -> u64 {
    let meta = format!("limit-runtime:{{{name}}}:meta");
    server
        .command(&["HGET", &meta, "epoch"])
        .trim()
        .parse()
        .expect("the limiter's epoch")
}

fn queued(server: &RedisServer, name: &str) -> i64 {
    let queue = format!("limit-runtime:{{{name}}}:queue");
    server.command(&["ZCARD", &queue]).trim().parse().unwrap()
}

async fn fleet(server: &RedisServer) -> Fleet {
    Fleet::builder(&server.url())
        .recheck(Duration::from_millis(200))
        .build()
        .await
        .expect("connect")
}

/// Two fleets share "ledger" (limit 3). The server numbers every grant of the epoch from 1:
/// `acquire` (the script's reply), `try_acquire`, a waiter woken by pub/sub, and a waiter
/// whose message was lost and whose renewal found the grant each carry the next number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grant_carries_the_next_token_of_its_epoch() {
    let server = RedisServer::start();
    let (a_fleet, b_fleet) = (fleet(&server).await, fleet(&server).await);
    let a = Arc::new(Limiter::new(3).with_name("ledger"));
    let b = Arc::new(Limiter::new(3).with_name("ledger"));
    a_fleet.share_arc(&a).await.unwrap();
    b_fleet.share_arc(&b).await.unwrap();
    let e = epoch(&server, "ledger");
    let token = |sequence| Some(FencingToken::new(e, sequence));

    let a1 = timeout(HANG, Arc::clone(&a).acquire_owned()).await.unwrap();
    let b1 = timeout(HANG, Arc::clone(&b).acquire_owned()).await.unwrap();
    let a2 = a.try_acquire_owned().expect("the third permit is free");
    assert_eq!(a1.fencing_token(), token(1));
    assert_eq!(b1.fencing_token(), token(2));
    assert_eq!(a2.fencing_token(), token(3));

    // Full: b's next call waits in the server's line, and a's release grants it, by pub/sub.
    let woken = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire_owned().await }
    });
    while queued(&server, "ledger") < 1 {
        sleep(Duration::from_millis(2)).await;
    }
    drop(a1);
    let b2 = timeout(HANG, woken).await.unwrap().unwrap();
    assert_eq!(b2.fencing_token(), token(4));
    assert_eq!(b_fleet.stats().pushes, 1);

    // The same, with the message lost: b's renewal finds the grant, and its token.
    let found = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire_owned().await }
    });
    while queued(&server, "ledger") < 1 {
        sleep(Duration::from_millis(2)).await;
    }
    let forbidden = server.command(&["ACL", "SETUSER", "default", "-subscribe"]);
    assert_eq!(forbidden.trim(), "OK");
    server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    drop(a2);
    let b3 = timeout(HANG, found).await.unwrap().unwrap();
    assert_eq!(b3.fencing_token(), token(5));
    assert_eq!(b_fleet.stats().found_by_renewal, 1);
    // Tokens order as the grants did; a stale holder's is the smallest.
    let mut tokens = [&b3, &b1, &b2].map(|p| p.fencing_token().unwrap());
    tokens.sort();
    assert_eq!(tokens.map(FencingToken::sequence), [2, 4, 5]);
}

static WRITES: Limiter = Limiter::new(2).with_name("fenced-writes");
static LOCAL: Limiter = Limiter::new(2).with_name("not-shared");

/// What a body sees: its own call's token; a call of a limiter that is not shared, awaited
/// inside it, sees the same (the innermost shared call's); a task it spawns sees none.
#[concurrency_limit(limiter = WRITES)]
async fn write() -> (
    Option<FencingToken>,
    Option<FencingToken>,
    Option<FencingToken>,
) {
    let own = fencing_token();
    let nested = unshared().await;
    let spawned = tokio::spawn(async { fencing_token() }).await.unwrap();
    // Across an await (and perhaps another worker thread), still its own.
    tokio::task::yield_now().await;
    assert_eq!(fencing_token(), own);
    (own, nested, spawned)
}

#[concurrency_limit(limiter = LOCAL)]
async fn unshared() -> Option<FencingToken> {
    fencing_token()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_reads_its_own_calls_token() {
    let server = RedisServer::start();
    let fleet = fleet(&server).await;
    fleet.share(&WRITES).await.unwrap();
    let e = epoch(&server, "fenced-writes");
    assert_eq!(fencing_token(), None, "outside a body");
    let first = timeout(HANG, write()).await.unwrap();
    let one = Some(FencingToken::new(e, 1));
    assert_eq!(first, (one, one, None));
    // Two calls at once: each body sees its own token, 2 and 3 in the order admitted.
    let (second, third) = tokio::join!(write(), write());
    let mut both = [second.0.unwrap(), third.0.unwrap()];
    both.sort();
    assert_eq!(both, [FencingToken::new(e, 2), FencingToken::new(e, 3)]);
    assert_eq!(fencing_token(), None, "put back after each poll");
    // A limiter that is not shared has no token, in a body (outside a shared one) or on a
    // permit.
    assert_eq!(unshared().await, None);
    assert_eq!(LOCAL.try_acquire().unwrap().fencing_token(), None);
}
