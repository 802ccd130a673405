//! Limiters shared through Redis (`--features redis`), against a real `redis-server` per test
//! (`limit_suite::redis_server`). Each `Fleet` has its own id, connections and thread, as a
//! process would: several in one test stand for several processes. `tests/fleet_processes.rs`
//! runs real processes.
#![cfg(feature = "redis")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use limit_runtime::redis::{Fleet, FleetError, OnUnreachable};
use limit_runtime::{LimitError, Limiter, concurrency_limit, drain};
use limit_suite::redis_server::RedisServer;
use limit_suite::{Gauge, HANG};
use tokio::time::{sleep, timeout};

fn named(name: &str, limit: usize) -> Arc<Limiter> {
    Arc::new(Limiter::new(limit).with_owned_name(name))
}

async fn fleet(server: &RedisServer) -> Fleet {
    Fleet::connect(&server.url()).await.expect("connect")
}

/// `count` fleets, each sharing its own limiter named `name` with `limit`.
async fn sharing(
    server: &RedisServer,
    name: &str,
    limit: usize,
    count: usize,
) -> Vec<(Fleet, Arc<Limiter>)> {
    let mut all = Vec::new();
    for _ in 0..count {
        let fleet = fleet(server).await;
        let limiter = named(name, limit);
        fleet.share_arc(&limiter).await.expect("share");
        all.push((fleet, limiter));
    }
    all
}

/// A fleet for a server that a test kills and restarts: round trips time out after 500 ms,
/// and the lease is 1 s, since a restart loses the keys and the fleet then admits nothing new
/// for one lease.
async fn restartable(server: &RedisServer, on_unreachable: OnUnreachable) -> Fleet {
    Fleet::builder(&server.url())
        .on_unreachable(on_unreachable)
        .command_timeout(Duration::from_millis(500))
        .lease(Duration::from_secs(1))
        .renew_every(Duration::from_millis(300))
        .build()
        .await
        .expect("connect")
}

fn int(reply: &str) -> i64 {
    reply.trim().parse().unwrap_or(0)
}

fn held_in_redis(server: &RedisServer, name: &str) -> i64 {
    int(&server.command(&["HGET", &format!("limit-runtime:{{{name}}}:meta"), "held"]))
}

fn zcard(server: &RedisServer, name: &str, part: &str) -> i64 {
    int(&server.command(&["ZCARD", &format!("limit-runtime:{{{name}}}:{part}")]))
}

/// Waits until the server holds no lease and no waiter of `name` (releases are sent from
/// `Drop`, a moment after it).
async fn settled(server: &RedisServer, name: &str) {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        if held_in_redis(server, name) == 0
            && zcard(server, name, "leases") == 0
            && zcard(server, name, "queue") == 0
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never settled"
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// A task waiting for one permit of `limiter`; it gives the count it held.
fn spawn_acquire(limiter: &Arc<Limiter>) -> tokio::task::JoinHandle<usize> {
    let limiter = Arc::clone(limiter);
    tokio::spawn(async move { limiter.acquire().await.permits() })
}

/// Calls of a script counted by the server (`INFO commandstats`), by command.
fn calls(server: &RedisServer, command: &str) -> i64 {
    let info = server.command(&["INFO", "commandstats"]);
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap_or(0))
}

/// A seeded xorshift: reproducible random lengths without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncontended_call_is_one_round_trip_each_way() {
    static EXPORTS: Limiter = Limiter::new(3).with_name("exports");

    #[concurrency_limit(limiter = EXPORTS)]
    async fn export(n: u32) -> u32 {
        n + 1
    }

    let server = RedisServer::start();
    let fleet = fleet(&server).await;
    fleet.share(&EXPORTS).await.unwrap();
    let before = (fleet.stats().round_trips, calls(&server, "evalsha"));
    assert_eq!(export(1).await, 2);
    settled(&server, "exports").await;
    let after = (fleet.stats().round_trips, calls(&server, "evalsha"));
    assert_eq!(
        after.0 - before.0,
        2,
        "acquire and release, one round trip each"
    );
    assert_eq!(after.1 - before.1, 2, "the server ran two scripts");
    let stats = EXPORTS.stats();
    assert_eq!((stats.admitted, stats.running, stats.in_flight), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_across_fleets_with_weights() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "cap", 5, 3).await;
    let gauge = Arc::new(Gauge::new());
    let mut tasks = Vec::new();
    for (index, (_, limiter)) in fleets.iter().enumerate() {
        for call in 0..40u64 {
            let limiter = Arc::clone(limiter);
            let gauge = Arc::clone(&gauge);
            let mut rng = Rng(0x5EED ^ (index as u64) << 32 ^ call);
            tasks.push(tokio::spawn(async move {
                let weight = 1 + rng.below(2) as usize;
                let _permit = limiter.acquire_many(weight).await;
                let _running = gauge.enter_by(weight);
                sleep(Duration::from_millis(1 + rng.below(5))).await;
            }));
        }
    }
    for task in tasks {
        timeout(HANG, task).await.unwrap().unwrap();
    }
    assert!(
        gauge.peak() <= 5,
        "the fleet ran {} permits at once",
        gauge.peak()
    );
    assert_eq!(gauge.peak(), 5, "the workload never filled the limit");
    settled(&server, "cap").await;
    for (_, limiter) in &fleets {
        assert_eq!(
            (limiter.running(), limiter.waiting(), limiter.in_flight()),
            (0, 0, 0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_admitted_in_the_order_they_reached_the_server() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "fifo", 1, 3).await;
    let (a, b, c) = (&fleets[0].1, &fleets[1].1, &fleets[2].1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = a.acquire().await;
    let mut tasks = Vec::new();
    // b1 and c1 queue at the server; b2 waits behind b1 in its own process, and reaches the
    // server's line only when b1 leaves it, after c1.
    for (label, limiter, queued_at_server) in [("b1", b, 1), ("c1", c, 2), ("b2", b, 2)] {
        let order = Arc::clone(&order);
        let call = Arc::clone(limiter);
        tasks.push(tokio::spawn(async move {
            let _permit = call.acquire().await;
            order.lock().unwrap().push(label);
            sleep(Duration::from_millis(5)).await;
        }));
        let deadline = tokio::time::Instant::now() + HANG;
        while zcard(&server, "fifo", "queue") < queued_at_server || limiter.waiting() == 0 {
            assert!(tokio::time::Instant::now() < deadline);
            sleep(Duration::from_millis(2)).await;
        }
    }
    drop(held);
    for task in tasks {
        timeout(HANG, task).await.unwrap().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["b1", "c1", "b2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_head_is_not_overtaken() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "heavy", 3, 3).await;
    let (a, b, c) = (&fleets[0].1, &fleets[1].1, &fleets[2].1);
    let two = a.acquire_many(2).await;
    let heavy = tokio::spawn({
        let b = Arc::clone(b);
        async move { b.acquire_many(2).await.permits() }
    });
    while zcard(&server, "heavy", "queue") < 1 {
        sleep(Duration::from_millis(2)).await;
    }
    // One permit is free, but the head of the line needs two: the light call waits.
    let light = timeout(Duration::from_secs(5), {
        let c = Arc::clone(c);
        async move {
            c.acquire_many_with_wait(1, Duration::from_millis(300))
                .await
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(light, Err(LimitError::Timeout { .. })),
        "{light:?}"
    );
    drop(two);
    assert_eq!(timeout(HANG, heavy).await.unwrap().unwrap(), 2);
}

/// `acquire_many` under a `max_wait`, as a function with `max_wait = …` and `weight = …` has.
trait WaitBounded {
    async fn acquire_many_with_wait(
        &self,
        n: usize,
        max_wait: Duration,
    ) -> Result<usize, LimitError>;
}

impl WaitBounded for Limiter {
    async fn acquire_many_with_wait(
        &self,
        n: usize,
        max_wait: Duration,
    ) -> Result<usize, LimitError> {
        #[concurrency_limit(limiter = limiter, weight = n, max_wait = max_wait)]
        async fn take(
            limiter: &Limiter,
            n: usize,
            max_wait: Duration,
        ) -> Result<usize, LimitError> {
            let _ = (limiter, max_wait);
            Ok(n)
        }
        take(self, n, max_wait).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_panicked_calls_leave_no_lease() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "storm", 3, 2).await;
    let mut tasks = Vec::new();
    for call in 0..200u64 {
        let limiter = Arc::clone(&fleets[(call % 2) as usize].1);
        let mut rng = Rng(0xC0FFEE ^ call << 8 | 1);
        let (panics, holds, patience) = (rng.below(10) == 0, rng.below(4), rng.below(6));
        let task = tokio::spawn(async move {
            let work = async {
                let _permit = limiter.acquire().await;
                assert!(!panics, "a body that panics");
                sleep(Duration::from_millis(holds)).await;
            };
            // Cancelled while waiting, while running, or not at all.
            let _ = timeout(Duration::from_millis(patience), work).await;
        });
        if call % 7 == 0 {
            task.abort(); // dropped, perhaps before its first poll
        }
        tasks.push(task);
    }
    for task in tasks {
        let _ = timeout(HANG, task).await.unwrap();
    }
    settled(&server, "storm").await;
    for (_, limiter) in &fleets {
        assert_eq!(
            (limiter.running(), limiter.waiting(), limiter.in_flight()),
            (0, 0, 0)
        );
    }
    // And the limit is whole: three permits at once, fleet-wide.
    let permits: Vec<_> = [0, 1, 0]
        .iter()
        .map(|&i| fleets[i].1.try_acquire())
        .collect();
    assert!(permits.iter().all(Result::is_ok), "{permits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_lives_in_redis() {
    let server = RedisServer::start();
    let first = fleet(&server).await;
    let second = Fleet::builder(&server.url())
        .lease(Duration::from_secs(2))
        .renew_every(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let a = named("stored", 2);
    let b = named("stored", 9);
    first.share_arc(&a).await.unwrap();
    second.share_arc(&b).await.unwrap();
    // The first sharer stored its limit; the second adopted it and reports its own.
    assert_eq!((a.limit(), b.limit()), (2, 2));
    let fleet_stats = b.stats().fleet.expect("shared");
    assert_eq!(fleet_stats.local_limit, 9);
    let _one = a.acquire().await;
    let _two = a.acquire().await;
    // Each process knows the fleet's count as of its last round trip.
    assert_eq!(a.stats().fleet.unwrap().held, 2);
    // A waiter in the second process is admitted when the first raises the limit.
    let waiter = spawn_acquire(&b);
    while zcard(&server, "stored", "queue") < 1 {
        sleep(Duration::from_millis(2)).await;
    }
    a.set_limit(3);
    assert_eq!(timeout(HANG, waiter).await.unwrap().unwrap(), 1);
    // The other process's `limit()` follows within one renewal interval.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while b.limit() != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {}",
            b.limit()
        );
        sleep(Duration::from_millis(10)).await;
    }
    // A limit of 0 pauses the fleet without refusing a waiter.
    a.set_limit(0);
    // `set_limit` returns at once; the fleet's thread tells the server a moment later.
    while server
        .command(&["HGET", "limit-runtime:{stored}:meta", "limit"])
        .trim()
        != "0"
    {
        sleep(Duration::from_millis(2)).await;
    }
    let paused = spawn_acquire(&b);
    sleep(Duration::from_millis(100)).await;
    assert!(!paused.is_finished());
    b.set_limit(4);
    assert_eq!(timeout(HANG, paused).await.unwrap().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_refuses_what_it_cannot_share() {
    static UNNAMED: Limiter = Limiter::new(2);
    static TWICE: Limiter = Limiter::new(2).with_name("twice");

    let server = RedisServer::start();
    let fleet = fleet(&server).await;
    let other = Fleet::connect(&server.url()).await.unwrap();

    let error = fleet.share(&UNNAMED).await.unwrap_err();
    assert!(matches!(error, FleetError::DefaultName { .. }), "{error}");
    assert!(error.to_string().contains("with_name"), "{error}");

    fleet.share(&TWICE).await.unwrap();
    let again = fleet.share(&TWICE).await.unwrap_err();
    assert!(matches!(again, FleetError::AlreadyShared { .. }), "{again}");
    let elsewhere = other.share(&TWICE).await.unwrap_err();
    assert!(
        matches!(elsewhere, FleetError::AlreadyShared { .. }),
        "{elsewhere}"
    );

    let first = named("taken", 2);
    let second = named("taken", 2);
    fleet.share_arc(&first).await.unwrap();
    let taken = fleet.share_arc(&second).await.unwrap_err();
    assert!(matches!(taken, FleetError::NameTaken { .. }), "{taken}");
    // Once the first is dropped, the name is free again.
    drop(first);
    fleet.share_arc(&second).await.unwrap();

    let busy = named("busy", 2);
    let permit = busy.try_acquire().unwrap();
    let in_use = fleet.share_arc(&busy).await.unwrap_err();
    assert!(matches!(in_use, FleetError::InUse { .. }), "{in_use}");
    drop(permit);
    // Refused, it stayed local, and works as before.
    assert_eq!(busy.try_acquire().unwrap().permits(), 1);
    assert_eq!(busy.stats().fleet, None);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_urls_and_closed_ports_are_errors() {
    let invalid = Fleet::connect("http://example.com").await.unwrap_err();
    assert!(
        matches!(invalid, FleetError::InvalidUrl { .. }),
        "{invalid}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = Fleet::builder(&format!("redis://user:hunter2@127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(closed, FleetError::Unreachable { .. }), "{closed}");
    assert!(!closed.to_string().contains("hunter2"), "{closed}");
    assert!(!format!("{closed:?}").contains("hunter2"), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_may_not_wait_make_one_round_trip() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "nowait", 1, 2).await;
    let (a_fleet, a) = &fleets[0];
    let (_, b) = &fleets[1];
    let held = b.acquire().await;

    let before = a_fleet.stats().round_trips;
    let refused = a.acquire_many_with_wait(1, Duration::ZERO).await;
    assert!(
        matches!(refused, Err(LimitError::NoPermit { .. })),
        "{refused:?}"
    );
    assert_eq!(a_fleet.stats().round_trips - before, 1);
    assert_eq!(
        zcard(&server, "nowait", "queue"),
        0,
        "it did not join the line"
    );

    // `try_acquire` blocks its thread for the round trip: from a thread with no runtime.
    let a2 = Arc::clone(a);
    let busy = std::thread::spawn(move || a2.try_acquire().map(|permit| permit.permits()))
        .join()
        .unwrap();
    assert!(matches!(busy, Err(LimitError::NoPermit { .. })), "{busy:?}");
    drop(held);
    settled(&server, "nowait").await;
    let a2 = Arc::clone(a);
    let granted = std::thread::spawn(move || a2.try_acquire().map(|permit| permit.permits()))
        .join()
        .unwrap();
    assert_eq!(granted.unwrap(), 1);
    settled(&server, "nowait").await;
    assert_eq!(a.stats().rejected, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wait_gives_up_its_place_and_queue_bounds_this_process() {
    let server = RedisServer::start();
    let fleets = sharing(&server, "bounded", 1, 2).await;
    let (a, b) = (&fleets[0].1, &fleets[1].1);
    let held = a.acquire().await;
    let timed_out = b
        .acquire_many_with_wait(1, Duration::from_millis(100))
        .await;
    assert!(
        matches!(timed_out, Err(LimitError::Timeout { .. })),
        "{timed_out:?}"
    );
    // Its entry left the server's line (the cancel runs a moment after).
    let deadline = tokio::time::Instant::now() + HANG;
    while zcard(&server, "bounded", "queue") != 0 {
        assert!(tokio::time::Instant::now() < deadline);
        sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(b.waiting(), 0);

    #[concurrency_limit(limiter = limiter, queue = 1)]
    async fn queued(limiter: &Limiter) -> Result<(), LimitError> {
        let _ = limiter;
        Ok(())
    }
    let first = tokio::spawn({
        let b = Arc::clone(b);
        async move { queued(&b).await }
    });
    while b.waiting() == 0 {
        sleep(Duration::from_millis(2)).await;
    }
    let full = queued(b).await;
    assert!(
        matches!(full, Err(LimitError::QueueFull { .. })),
        "{full:?}"
    );
    drop(held);
    timeout(HANG, first).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_this_process_only() {
    static LOCAL_VIEW: Limiter = Limiter::new(1).with_name("local-view");
    let server = RedisServer::start();
    let here = fleet(&server).await;
    here.share(&LOCAL_VIEW).await.unwrap();
    // Another process holds the only permit, for 500 ms of the server's clock: its lease,
    // written as that process's script would.
    let time = server.command(&["TIME"]);
    let now_ms =
        int(time.lines().next().unwrap()) * 1000 + int(time.lines().nth(1).unwrap()) / 1000;
    let meta = "limit-runtime:{local-view}:meta";
    let leases = "limit-runtime:{local-view}:leases";
    server.command(&[
        "ZADD",
        leases,
        &(now_ms + 500).to_string(),
        "999999:0:1:500",
    ]);
    server.command(&["HSET", meta, "held", "1"]);
    // Nothing of this process is in flight: drain does not wait for the other's call.
    timeout(Duration::from_secs(5), drain())
        .await
        .expect("drain is local");
    let waiting = tokio::spawn(async { LOCAL_VIEW.acquire().await.permits() });
    while LOCAL_VIEW.waiting() == 0 {
        sleep(Duration::from_millis(2)).await;
    }
    // This process's waiter is in flight: drain waits for it.
    assert!(timeout(Duration::from_millis(100), drain()).await.is_err());
    assert_eq!(LOCAL_VIEW.stats().in_flight, 1);
    // The other process never renews: its lease expires, a recheck sweeps it, and the
    // waiter is admitted.
    assert_eq!(timeout(HANG, waiting).await.unwrap().unwrap(), 1);
    timeout(Duration::from_secs(5), drain()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_until_the_server_has_every_permit_back() {
    let server = RedisServer::start();
    let fleet = fleet(&server).await;
    let limiter = named("flushed", 3);
    fleet.share_arc(&limiter).await.unwrap();
    // Nothing given back yet: nothing to wait for.
    timeout(HANG, fleet.flush())
        .await
        .expect("an idle flush waited");
    let permits = limiter.acquire_many(3).await;
    let waiter = spawn_acquire(&limiter);
    while zcard(&server, "flushed", "queue") == 0 {
        sleep(Duration::from_millis(2)).await;
    }
    // The server stops answering; the waiter gives up and the holder ends.
    server.stop_signal();
    waiter.abort();
    drop(permits);
    let flushing = tokio::spawn(async move {
        fleet.flush().await;
        fleet
    });
    sleep(Duration::from_millis(300)).await;
    assert!(
        !flushing.is_finished(),
        "flush returned before the server had them"
    );
    server.continue_signal();
    let _fleet = timeout(HANG, flushing).await.expect("flush hung").unwrap();
    // Read once, not polled for: when flush returns, the server has them.
    assert_eq!(held_in_redis(&server, "flushed"), 0);
    assert_eq!(zcard(&server, "flushed", "leases"), 0);
    assert_eq!(zcard(&server, "flushed", "queue"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_wake_up_is_found_by_the_recheck() {
    let server = RedisServer::start();
    let holder = fleet(&server).await;
    let a = named("missed", 1);
    holder.share_arc(&a).await.unwrap();
    let waiter_fleet = Fleet::builder(&server.url())
        .recheck(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let b = named("missed", 1);
    waiter_fleet.share_arc(&b).await.unwrap();
    let held = a.acquire().await;
    let waiter = spawn_acquire(&b);
    while zcard(&server, "missed", "queue") < 1 {
        sleep(Duration::from_millis(2)).await;
    }
    // Drop every subscriber, and forbid subscribing again: the grant's message reaches
    // nobody, and the only way left to learn of it is the recheck.
    let forbidden = server.command(&["ACL", "SETUSER", "default", "-subscribe"]);
    assert_eq!(forbidden.trim(), "OK");
    server.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    drop(held);
    assert_eq!(
        timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap(),
        1
    );
    let stats = waiter_fleet.stats();
    assert_eq!((stats.pushes, stats.found_by_renewal), (0, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_do_not_poll_and_a_release_wakes_one_process() {
    let server = RedisServer::start();
    let holder = fleet(&server).await;
    let a = named("quiet", 1);
    holder.share_arc(&a).await.unwrap();
    let mut waiters = Vec::new();
    let mut fleets = Vec::new();
    let held = a.acquire().await;
    for _ in 0..4 {
        let fleet = Fleet::builder(&server.url())
            .recheck(Duration::from_secs(20))
            .build()
            .await
            .unwrap();
        let limiter = named("quiet", 1);
        fleet.share_arc(&limiter).await.unwrap();
        for _ in 0..5 {
            let limiter = Arc::clone(&limiter);
            waiters.push(tokio::spawn(async move {
                let _permit = limiter.acquire().await;
            }));
        }
        fleets.push((fleet, limiter));
    }
    // One head per process in the server's line; the others wait at home.
    while zcard(&server, "quiet", "queue") < 4 {
        sleep(Duration::from_millis(2)).await;
    }
    let idle = (calls(&server, "evalsha"), calls(&server, "publish"));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        calls(&server, "evalsha"),
        idle.0,
        "20 waiters, 1 s: no command"
    );
    drop(held);
    for waiter in waiters {
        timeout(HANG, waiter).await.unwrap().unwrap();
    }
    // A grant is published to its process alone, and wakes its waiter without a round trip.
    // (A process's next head may find permits free when it asks, and need no message.)
    let published = calls(&server, "publish") - idle.1;
    let pushes: u64 = fleets.iter().map(|(fleet, _)| fleet.stats().pushes).sum();
    assert!(
        (4..=20).contains(&published),
        "{published} messages for 20 grants"
    );
    assert_eq!(u64::try_from(published).unwrap(), pushes);
}

#[test]
fn the_fleet_outlives_the_runtime_that_connected_it() {
    let server = RedisServer::start();
    let limiter = named("outlives", 1);
    let url = server.url();
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let limiter = Arc::clone(&limiter);
        runtime.block_on(async move {
            let fleet = Fleet::connect(&url).await.unwrap();
            fleet.share_arc(&limiter).await.unwrap();
            // The fleet handle is dropped here, and the runtime after it.
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let permit = limiter.acquire().await;
        assert_eq!(held_in_redis(&server, "outlives"), 1);
        drop(permit);
        settled(&server, "outlives").await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_processs_waiter_leaves_the_line() {
    let server = RedisServer::start();
    let fleet = fleet(&server).await;
    let limiter = named("dead-waiter", 1);
    fleet.share_arc(&limiter).await.unwrap();
    let held = limiter.acquire().await;
    // A process that died while it waited: its entry is next in line, and its place expires
    // in 200 ms of the server's clock, since nobody renews it.
    let time = server.command(&["TIME"]);
    let now_ms =
        int(time.lines().next().unwrap()) * 1000 + int(time.lines().nth(1).unwrap()) / 1000;
    let dead = "999999:0:1:30000";
    server.command(&["ZADD", "limit-runtime:{dead-waiter}:queue", "0", dead]);
    let expiry = (now_ms + 200).to_string();
    server.command(&["ZADD", "limit-runtime:{dead-waiter}:qexp", &expiry, dead]);
    let waiter = spawn_acquire(&limiter);
    while zcard(&server, "dead-waiter", "queue") < 2 {
        sleep(Duration::from_millis(2)).await;
    }
    sleep(Duration::from_millis(400)).await;
    // The release finds the dead entry expired: the permit goes to the live waiter behind it,
    // at once, and never to the dead one.
    drop(held);
    assert_eq!(
        timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap(),
        1
    );
    let leases = server.command(&["ZRANGE", "limit-runtime:{dead-waiter}:leases", "0", "-1"]);
    assert!(!leases.contains(dead), "{leases}");
    assert_eq!(zcard(&server, "dead-waiter", "queue"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_server_is_down_refusable_calls_are_refused_and_others_wait() {
    let mut server = RedisServer::start();
    let fleet = restartable(&server, OnUnreachable::Refuse).await;
    let limiter = named("down", 2);
    fleet.share_arc(&limiter).await.unwrap();
    server.kill();
    // A call that may be refused is, at once: no hang, no panic.
    let refused = timeout(
        Duration::from_secs(10),
        limiter.acquire_many_with_wait(1, Duration::from_secs(30)),
    )
    .await
    .expect("a refusable call hung while the server was down");
    assert!(
        matches!(refused, Err(LimitError::NoPermit { .. })),
        "{refused:?}"
    );
    // A call that may not be refused waits for the server, counted as waiting.
    let waiting = spawn_acquire(&limiter);
    sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    assert_eq!(limiter.waiting(), 1);
    assert!(fleet.stats().errors > 0);
    // Back (empty): the scripts are loaded again, the limit stored again, and after the quiet
    // period it is admitted.
    server.restart();
    assert_eq!(timeout(HANG, waiting).await.unwrap().unwrap(), 1);
    assert_eq!(limiter.limit(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_server_is_down_a_call_waits_no_longer_than_its_max_wait() {
    let mut server = RedisServer::start();
    // The default: calls wait for the server.
    let fleet = restartable(&server, OnUnreachable::Wait).await;
    let limiter = named("down-wait", 2);
    fleet.share_arc(&limiter).await.unwrap();
    server.kill();
    let bounded = {
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            limiter
                .acquire_many_with_wait(1, Duration::from_millis(400))
                .await
        })
    };
    // It waits, counted as waiting…
    while limiter.waiting() == 0 {
        assert!(!bounded.is_finished(), "{:?}", bounded.await);
        sleep(Duration::from_millis(5)).await;
    }
    // …until its max_wait, not past it (the deadline only catches a hang), and never panics.
    let refused = timeout(HANG, bounded)
        .await
        .expect("a call hung past its max_wait while the server was down")
        .expect("a call panicked while the server was down");
    assert!(
        matches!(refused, Err(LimitError::Timeout { .. })),
        "{refused:?}"
    );
    assert_eq!(limiter.waiting(), 0);
    assert_eq!(limiter.stats().rejected, 1);
    // The server back, the next call is admitted.
    server.restart();
    let admitted = timeout(HANG, limiter.acquire_many_with_wait(1, HANG)).await;
    assert!(matches!(admitted, Ok(Ok(1))), "{admitted:?}");
}

/// `OnUnreachable::Local(1)`: while the server is down, one call at a time is admitted by
/// this process alone (no lease, no fencing token, counted in `local_admissions`); a second
/// waits (or with `try_acquire`, is refused), and is admitted locally when the first ends.
/// Once the server is back, calls are in the fleet's count again, with tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_fallback_admits_its_limit_while_the_server_is_down() {
    let mut server = RedisServer::start();
    let fleet = restartable(&server, OnUnreachable::Local(1)).await;
    let limiter = named("fallback", 3);
    fleet.share_arc(&limiter).await.unwrap();
    let before = timeout(HANG, limiter.acquire()).await.unwrap();
    assert!(before.fencing_token().is_some());
    drop(before);
    settled(&server, "fallback").await;
    server.kill();

    let local = timeout(HANG, limiter.acquire())
        .await
        .expect("the fallback admits a call while the server is down");
    assert_eq!(
        local.fencing_token(),
        None,
        "a local admission holds no lease"
    );
    let shared = || limiter.stats().fleet.expect("shared");
    assert_eq!(shared().local_admissions, 1);
    // The fallback's one permit is taken: a call that may not wait is refused…
    assert!(matches!(
        limiter.try_acquire(),
        Err(LimitError::NoPermit { .. })
    ));
    // …and one that may waits, counted as waiting, until the local call ends.
    let waiting = spawn_acquire(&limiter);
    while limiter.waiting() == 0 {
        sleep(Duration::from_millis(5)).await;
    }
    sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "admitted past the fallback's limit");
    drop(local);
    assert_eq!(timeout(HANG, waiting).await.unwrap().unwrap(), 1);
    assert_eq!(shared().local_admissions, 2);
    assert_eq!(limiter.running(), 0);

    // Back (empty), after the quiet period: calls are the fleet's again, with tokens.
    server.restart();
    let permit = timeout(HANG, limiter.acquire()).await.unwrap();
    assert!(permit.fencing_token().is_some());
    assert_eq!(held_in_redis(&server, "fallback"), 1);
    assert_eq!(shared().local_admissions, 2);
    drop(permit);
    settled(&server, "fallback").await;
    // The restart lost the fleets' id counter: a process that connects now still gets an
    // id (and so members and a channel) of its own, larger than every id before it.
    let newcomer = Fleet::connect(&server.url()).await.unwrap();
    assert!(
        newcomer.id() > fleet.id(),
        "{} after {}",
        newcomer.id(),
        fleet.id()
    );
}
