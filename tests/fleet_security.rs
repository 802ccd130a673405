#![cfg(feature = "redis")]
//! The fleet (`--features redis`) against a real `redis-server` per test, on what a careful
//! operator relies on: credentials in the URL (`requirepass` and an ACL user) work, a wrong
//! one is a `FleetError`, and no `Display`, `Debug` or error source ever shows a password
//! from the URL; every key and channel sits under the builder's `key_prefix`, beside the
//! application's own keys, untouched; and a limiter's name is data, never code or key
//! syntax: names with quotes, braces, newlines, Lua, unicode or 10,000 bytes share one
//! count across processes, and two distinct names never share one.

use std::sync::Arc;
use std::time::Duration;

use limit_runtime::redis::{Fleet, FleetError};
use limit_runtime::{LimitError, Limiter};
use limit_suite::redis_server::RedisServer;
use limit_suite::{HANG, every_text_of};
use redis::aio::MultiplexedConnection;
use tokio::time::{sleep, timeout};

/// A password that no message may show.
const SECRET: &str = "hunter2-secret";

fn named(name: &str, limit: usize) -> Arc<Limiter> {
    Arc::new(Limiter::new(limit).with_owned_name(name))
}

async fn fleet(server: &RedisServer) -> Fleet {
    Fleet::connect(&server.url()).await.expect("connect")
}

fn int(reply: &str) -> i64 {
    reply.trim().parse().unwrap_or(0)
}

/// `<prefix>:{<name>}:<part>`, as `docs/fleet.md` lays the keys out.
fn key(prefix: &str, name: &str, part: &str) -> String {
    format!("{prefix}:{{{name}}}:{part}")
}

fn held_in_redis(server: &RedisServer, name: &str) -> i64 {
    int(&server.command(&["HGET", &key("limit-runtime", name, "meta"), "held"]))
}

fn zcard(server: &RedisServer, key: &str) -> i64 {
    int(&server.command(&["ZCARD", key]))
}

/// Waits until `done` holds, failing the test after [`HANG`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + HANG;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the server holds no lease and no waiter of `name` under `prefix` (releases
/// are sent from `Drop`, a moment after it).
async fn settled(server: &RedisServer, prefix: &str, name: &str) {
    until(&format!("{name:?} settled"), || {
        int(&server.command(&["HGET", &key(prefix, name, "meta"), "held"])) == 0
            && zcard(server, &key(prefix, name, "leases")) == 0
            && zcard(server, &key(prefix, name, "queue")) == 0
    })
    .await;
}

/// Whether a call of `limiter` that may not wait is refused: the fleet's permits are all
/// held elsewhere. (On a shared limiter `try_acquire` makes one round trip, blocking this
/// worker thread for it.)
fn refused(limiter: &Limiter) -> bool {
    matches!(limiter.try_acquire(), Err(LimitError::NoPermit { .. }))
}

/// A probe connection of the test's own, through the `redis` crate: the fixture's
/// `command` does not authenticate.
async fn probe(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("the probe's URL")
        .get_multiplexed_async_connection()
        .await
        .expect("the probe connects")
}

#[track_caller]
fn assert_never_shows(error: &FleetError, secret: &str) {
    for text in every_text_of(error) {
        assert!(
            !text.contains(secret),
            "a FleetError shows the password: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_and_an_acl_user_in_the_url_are_used() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    assert!(
        server.command(&["PING"]).starts_with("-NOAUTH"),
        "the server must ask for the password, or this test proves nothing"
    );
    let port = server.port();
    let url = format!("redis://:s3cret@127.0.0.1:{port}/");
    let a = Fleet::connect(&url)
        .await
        .expect("connect with the password");
    let b = Fleet::connect(&url)
        .await
        .expect("connect with the password");
    let (on_a, on_b) = (named("secured", 1), named("secured", 1));
    a.share_arc(&on_a)
        .await
        .expect("share through an authenticated fleet");
    b.share_arc(&on_b)
        .await
        .expect("share through an authenticated fleet");

    let held = on_a.acquire().await;
    assert!(
        refused(&on_b),
        "the other fleet must see the one permit held"
    );
    let mut probe = probe(&url).await;
    let in_redis: i64 = redis::cmd("HGET")
        .arg(key("limit-runtime", "secured", "meta"))
        .arg("held")
        .query_async(&mut probe)
        .await
        .unwrap();
    assert_eq!(in_redis, 1);

    // An ACL user of its own, as a locked-down deployment gives each service.
    let created: String = redis::cmd("ACL")
        .arg(&["SETUSER", "fleetuser", "on", ">pw2", "~*", "&*", "+@all"])
        .query_async(&mut probe)
        .await
        .unwrap();
    assert_eq!(created, "OK");
    let c = Fleet::connect(&format!("redis://fleetuser:pw2@127.0.0.1:{port}/"))
        .await
        .expect("connect as an ACL user");
    let on_c = named("secured", 1);
    c.share_arc(&on_c).await.expect("share as an ACL user");
    assert!(refused(&on_c), "the ACL user's fleet shares the same count");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut probe)
        .await
        .unwrap();
    assert!(
        clients
            .lines()
            .any(|line| line.contains(" user=fleetuser ")),
        "no connection of the ACL user:\n{clients}"
    );

    drop(held);
    let permit = timeout(HANG, on_c.acquire()).await.expect("granted");
    assert_eq!(permit.permits(), 1);
    assert!(refused(&on_a), "the ACL user's fleet holds the permit now");
    drop(permit);
    assert_eq!(timeout(HANG, on_b.acquire()).await.unwrap().permits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_password_is_an_error_that_never_shows_it() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let port = server.port();
    let mut probe = probe(&format!("redis://:s3cret@127.0.0.1:{port}/")).await;
    let created: String = redis::cmd("ACL")
        .arg(&["SETUSER", "fleetuser", "on", ">pw2", "~*", "&*", "+@all"])
        .query_async(&mut probe)
        .await
        .unwrap();
    assert_eq!(created, "OK");

    for url in [
        format!("redis://:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://fleetuser:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://nosuchuser:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://default:{SECRET}@127.0.0.1:{port}/0"),
    ] {
        let error = Fleet::builder(&url)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .await
            .expect_err("a wrong password must not connect");
        refused_without_showing(&error, SECRET);
        // The message still names the server, so that it is of use.
        assert!(error.to_string().contains(&port.to_string()), "{error}");
    }

    // No password at all: an error too, not a fleet that fails later.
    let error = Fleet::connect(&server.url())
        .await
        .expect_err("no password must not connect");
    refused_without_showing(&error, "s3cret");
}

/// `error` is the server refusing to authenticate, says so, and never shows `secret`.
fn refused_without_showing(error: &FleetError, secret: &str) {
    assert!(
        matches!(
            error,
            FleetError::Unreachable { .. } | FleetError::Redis { .. }
        ),
        "{error:?}"
    );
    assert_never_shows(error, secret);
    assert!(error.to_string().to_lowercase().contains("auth"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_shows_the_password() {
    let server = RedisServer::start_with(&["--requirepass", SECRET]);
    let port = server.port();
    let url = format!("redis://:{SECRET}@127.0.0.1:{port}/");

    let builder = Fleet::builder(&url).key_prefix("debugged");
    for shown in [format!("{builder:?}"), format!("{builder:#?}")] {
        assert!(!shown.contains(SECRET), "FleetBuilder shows it: {shown}");
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    }
    let fleet = builder.build().await.expect("connect with the password");
    let limiter = named("debugged", 1);
    fleet.share_arc(&limiter).await.unwrap();
    let permit = limiter.acquire().await;
    for shown in [
        format!("{fleet:?}"),
        format!("{fleet:#?}"),
        format!("{:?}", fleet.clone()),
        format!("{:?}", limiter.stats()),
    ] {
        assert!(!shown.contains(SECRET), "it shows the password: {shown}");
    }
    assert!(
        format!("{fleet:?}").contains(&format!("127.0.0.1:{port}")),
        "{fleet:?}"
    );
    drop(permit);

    // A user and a password, percent-encoded or not.
    for url in [
        format!("redis://fleetuser:{SECRET}@127.0.0.1:{port}/"),
        format!(
            "redis://fleetuser:{}@127.0.0.1:{port}/3",
            "hunter2%2Dsecret"
        ),
        format!("rediss://:{SECRET}@example.invalid:6380/"),
    ] {
        let builder = Fleet::builder(&url);
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    // A URL that does not parse, with a password in it.
    for url in [
        format!("redis://user:{SECRET}@127.0.0.1:notaport/"),
        format!("redis://:{SECRET}@127.0.0.1:{port}/notadb"),
        format!("redis://user:{SECRET}@/"),
        format!("redis://user:{SECRET}@0.0.0.0:{port}/"),
    ] {
        let error = Fleet::connect(&url)
            .await
            .expect_err("a malformed URL must not connect");
        assert!(matches!(error, FleetError::InvalidUrl { .. }), "{error:?}");
        assert_never_shows(&error, SECRET);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_password_is_never_shown() {
    let socket = std::env::temp_dir().join(format!(
        "limit-suite-security-{}-{}.sock",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    ));
    let path = socket.to_str().expect("a UTF-8 temporary directory");
    let server = RedisServer::start_with(&["--unixsocket", path, "--requirepass", SECRET]);
    let url = format!("redis+unix://{path}?pass={SECRET}");
    let fleet = Fleet::connect(&url)
        .await
        .expect("connect through the socket with the password");
    let limiter = named("over-a-socket", 1);
    fleet.share_arc(&limiter).await.unwrap();
    let permit = limiter.acquire().await;
    assert!(
        server.command(&["PING"]).starts_with("-NOAUTH"),
        "the server must ask for the password, or this test proves nothing"
    );
    drop(permit);
    let missing = format!("redis+unix://{path}.missing?pass={SECRET}");
    let error = Fleet::connect(&missing).await.expect_err("no socket there");
    let mut shown = vec![
        ("FleetBuilder", format!("{:?}", Fleet::builder(&url))),
        ("Fleet", format!("{fleet:?}")),
    ];
    shown.extend(
        every_text_of(&error)
            .into_iter()
            .map(|text| ("FleetError::Unreachable", text)),
    );
    drop(server);
    let _ = std::fs::remove_file(&socket);
    let leaks: Vec<_> = shown
        .iter()
        .filter(|(_, text)| text.contains(SECRET))
        .collect();
    assert!(leaks.is_empty(), "the password is shown: {leaks:#?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_password_with_an_unescaped_slash_is_never_shown() {
    let server = RedisServer::start();
    let url = format!("redis://user:hunter2/secret@127.0.0.1:{}/", server.port());
    let error = Fleet::connect(&url)
        .await
        .expect_err("the `/` ends the authority: not a valid URL");
    assert!(matches!(error, FleetError::InvalidUrl { .. }), "{error:?}");
    assert_never_shows(&error, "hunter2/secret");
    assert_never_shows(&error, "secret@");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_and_channel_sits_under_the_key_prefix() {
    const PREFIX: &str = "myapp-limits";
    let server = RedisServer::start();
    assert_eq!(server.command(&["SET", "app:key", "v"]), "OK");
    assert_eq!(
        server.command(&["HSET", "app:hash", "held", "7", "limit", "9"]),
        "2"
    );
    let build = || Fleet::builder(&server.url()).key_prefix(PREFIX).build();
    let a = build().await.expect("connect");
    let b = build().await.expect("connect");
    let (alpha_a, alpha_b) = (named("alpha", 1), named("alpha", 1));
    let (beta_a, beta_b) = (named("beta", 2), named("beta", 2));
    for (fleet, limiter) in [(&a, &alpha_a), (&b, &alpha_b), (&a, &beta_a), (&b, &beta_b)] {
        fleet.share_arc(limiter).await.expect("share");
    }

    // A holds alpha; B's call waits at the server, and so does a second call of A's, which
    // is then cancelled.
    let held = alpha_a.acquire().await;
    let queue = key(PREFIX, "alpha", "queue");
    let waiter = tokio::spawn({
        let alpha_b = Arc::clone(&alpha_b);
        async move { alpha_b.acquire().await.permits() }
    });
    until("B waits at the server", || zcard(&server, &queue) == 1).await;
    let cancelled = tokio::spawn({
        let alpha_a = Arc::clone(&alpha_a);
        async move { alpha_a.acquire().await.permits() }
    });
    until("A's second call waits at the server", || {
        zcard(&server, &queue) == 2
    })
    .await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    until("the cancelled call left the line", || {
        zcard(&server, &queue) == 1
    })
    .await;
    beta_a.set_limit(3);
    until("the new limit is stored", || {
        server
            .command(&["HGET", &key(PREFIX, "beta", "meta"), "limit"])
            .trim()
            == "3"
    })
    .await;
    let two = timeout(HANG, beta_b.acquire_many(2)).await.unwrap();
    let third = beta_a
        .try_acquire()
        .expect("the raised limit admits a third");
    assert!(refused(&beta_a));

    let check = |when: &str| {
        let keys = server.command(&["KEYS", "*"]);
        let keys: Vec<&str> = keys.lines().collect();
        for key in &keys {
            assert!(
                key.starts_with(&format!("{PREFIX}:")) || key.starts_with("app:"),
                "{when}: key {key:?} is outside the prefix; all: {keys:?}"
            );
        }
        assert!(
            keys.contains(&"app:key") && keys.contains(&"app:hash"),
            "{keys:?}"
        );
        assert!(
            keys.contains(&key(PREFIX, "alpha", "meta").as_str())
                && keys.contains(&key(PREFIX, "beta", "meta").as_str()),
            "{when}: the limiters' keys are missing: {keys:?}"
        );
        let channels = server.command(&["PUBSUB", "CHANNELS", "*"]);
        let channels: Vec<&str> = channels.lines().collect();
        assert_eq!(channels.len(), 2, "one per fleet: {channels:?}");
        for channel in &channels {
            assert!(
                channel.starts_with(&format!("{PREFIX}:")),
                "{when}: channel {channel:?} is outside the prefix"
            );
        }
        assert_eq!(server.command(&["GET", "app:key"]), "v");
        assert_eq!(
            server.command(&["HGETALL", "app:hash"]),
            "held\n7\nlimit\n9"
        );
        assert_eq!(server.command(&["TTL", "app:key"]), "-1");
    };
    check("while calls hold and wait");

    drop(held);
    assert_eq!(timeout(HANG, waiter).await.unwrap().unwrap(), 1);
    drop((two, third));
    settled(&server, PREFIX, "alpha").await;
    settled(&server, PREFIX, "beta").await;
    check("once every call ended");

    // Under another prefix, the same name is another count.
    let elsewhere = fleet(&server).await;
    let alpha_elsewhere = named("alpha", 1);
    elsewhere.share_arc(&alpha_elsewhere).await.unwrap();
    let held = alpha_b.acquire().await;
    assert!(refused(&alpha_a));
    let free = alpha_elsewhere
        .try_acquire()
        .expect("a default-prefix `alpha` is not myapp-limits' `alpha`");
    drop((held, free));
}

/// Names that would break a limiter whose name reached Lua as code, a key as syntax, or a
/// protocol as text.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "with spaces in it",
        " ",
        "single ' quote",
        "double \" quote",
        "{braces}",
        "}{",
        "{",
        "}",
        "{}",
        "a}b{c}",
        "line\nbreak\r\nand\ttab",
        "'); redis.call('FLUSHALL') --",
        "\"); redis.call('FLUSHALL') --",
        "]]; redis.call('FLUSHALL'); --[[",
        "%s %d %n \\ \\0",
        "nul\0byte",
        "*?[glob]",
        "limit-runtime:fleets",
        "}:meta",
        "$5\r\nHELLO\r\n*1\r\n",
        "ünïcødé ✓ 🚦 限制 שלום",
    ]
    .map(str::to_owned)
    .into();
    names.push("x".repeat(9_999) + "}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_hold_their_cap_across_fleets() {
    let server = RedisServer::start();
    assert_eq!(server.command(&["SET", "app:sentinel", "still here"]), "OK");
    let a = fleet(&server).await;
    let b = fleet(&server).await;
    let names = hostile_names();
    assert_eq!(names.last().unwrap().len(), 10_000);
    for name in &names {
        let (on_a, on_b) = (named(name, 2), named(name, 2));
        a.share_arc(&on_a)
            .await
            .unwrap_or_else(|error| panic!("share {name:?}: {error}"));
        b.share_arc(&on_b)
            .await
            .unwrap_or_else(|error| panic!("share {name:?} again: {error}"));
        assert_eq!(on_b.name(), name);

        let one = on_a.acquire().await;
        let two = on_a.acquire().await;
        assert!(refused(&on_b), "{name:?}: B ran beyond the cap");
        assert_eq!(held_in_redis(&server, name), 2, "{name:?}");
        // The task hands its permit back, still held.
        let waiting = tokio::spawn(Arc::clone(&on_b).acquire_many_owned(2));
        until(&format!("{name:?} waits at the server"), || {
            zcard(&server, &key("limit-runtime", name, "queue")) == 1
        })
        .await;
        drop((one, two));
        let both = timeout(HANG, waiting).await.unwrap().unwrap();
        assert_eq!(both.permits(), 2, "{name:?}");
        assert!(refused(&on_a), "{name:?}: A ran beyond the cap");
        drop(both);
        settled(&server, "limit-runtime", name).await;
    }
    assert_eq!(server.command(&["GET", "app:sentinel"]), "still here");
    // Each name kept its own keys, under its exact name.
    for name in &names {
        assert_eq!(
            server.command(&["EXISTS", &key("limit-runtime", name, "meta")]),
            "1",
            "{name:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_differ_after_a_brace_do_not_share_a_count() {
    let server = RedisServer::start();
    let a = fleet(&server).await;
    let b = fleet(&server).await;
    for (first, second) in [
        ("a}b", "a}c"),
        ("a", "a}"),
        ("a", "{a}"),
        ("p", "p}:leases"),
        ("q}:meta", "q}:queue"),
        ("}{", "{}"),
        ("x{y}", "x{z}"),
    ] {
        // Different limits: a shared key would also show as one adopting the other's.
        let (first_a, first_b) = (named(first, 1), named(first, 1));
        let (second_a, second_b) = (named(second, 2), named(second, 2));
        for (fleet, limiter) in [
            (&a, &first_a),
            (&b, &first_b),
            (&a, &second_a),
            (&b, &second_b),
        ] {
            fleet
                .share_arc(limiter)
                .await
                .unwrap_or_else(|error| panic!("share {:?}: {error}", limiter.name()));
        }
        assert_eq!(
            (first_b.limit(), second_b.limit()),
            (1, 2),
            "{first:?} and {second:?}"
        );

        let held = first_a.acquire().await;
        assert!(refused(&first_b), "{first:?} is one count across fleets");
        let two = second_b
            .try_acquire_many(2)
            .unwrap_or_else(|error| panic!("{second:?} shares {first:?}'s count: {error}"));
        assert!(refused(&second_a), "{second:?} is one count across fleets");
        assert_eq!(
            (
                held_in_redis(&server, first),
                held_in_redis(&server, second)
            ),
            (1, 2),
            "{first:?} and {second:?}"
        );
        drop((held, two));
        settled(&server, "limit-runtime", first).await;
        settled(&server, "limit-runtime", second).await;
    }
}
