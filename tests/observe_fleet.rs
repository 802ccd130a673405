//! A fleet's events (`--features redis,tracing,metrics`), against a real `redis-server` per
//! test:
//!
//! - sharing a limiter emits a `DEBUG` "shared with the fleet" (fields `limiter`, `limit`),
//!   or a `WARN` when the fleet's stored limit wins over this process's (fields `limiter`,
//!   `limit`, `local_limit`);
//! - a lease the server no longer has while its call runs emits a `WARN` (fields `limiter`,
//!   `weight`) and adds 1 to the counter `concurrency_limit_fleet_leases_lost_total`
//!   (label `limiter`), as `Stats::fleet.leases_lost` counts;
//! - leases registered again after the server lost the limiter's keys emit a `WARN` (fields
//!   `limiter`, `count`) and add `count` to `concurrency_limit_fleet_leases_reregistered_total`
//!   (label `limiter`), as `Stats::fleet.reregistered` counts;
//! - a call admitted by the local fallback while the server is down emits a `WARN` (fields
//!   `limiter`, `weight`) and adds 1 to `concurrency_limit_fleet_local_admissions_total`
//!   (label `limiter`), as `Stats::fleet.local_admissions` counts;
//! - each failed round trip emits a `WARN` (fields `server`, `script`) and adds 1 to the
//!   counter `concurrency_limit_fleet_errors_total` (label `server`), as `FleetStats::errors`
//!   counts; no
//!   event or label shows the password of the server's URL.
//!
//! A fleet's renewals and retries run on its own thread, so this binary installs a global
//! subscriber and a global recorder (one process each); each test reads only the events of
//! its own limiter or server.
#![cfg(all(feature = "redis", feature = "tracing", feature = "metrics"))]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use limit_runtime::Limiter;
use limit_runtime::redis::{Fleet, OnUnreachable};
use limit_suite::HANG;
use limit_suite::redis_server::RedisServer;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::time::{Instant, sleep};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

const LEASES_LOST: &str = "concurrency_limit_fleet_leases_lost_total";
const ERRORS: &str = "concurrency_limit_fleet_errors_total";
const REREGISTERED: &str = "concurrency_limit_fleet_leases_reregistered_total";
const LOCAL: &str = "concurrency_limit_fleet_local_admissions_total";
/// A password that no event or metric may show.
const SECRET: &str = "hunter2-secret";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// The process's subscriber and recorder
// ---------------------------------------------------------------------------------------

/// One event of the crate's target: its level, message and other fields.
#[derive(Clone, Debug)]
struct Seen {
    level: tracing::Level,
    message: String,
    fields: BTreeMap<String, String>,
}

impl Seen {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

struct Fields<'a>(&'a mut Seen);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.to_owned();
        } else {
            self.0
                .fields
                .insert(field.name().to_owned(), value.to_owned());
        }
    }
}

struct Record(Arc<Mutex<Vec<Seen>>>);

impl<S: Subscriber> Layer<S> for Record {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "limit_runtime" {
            return;
        }
        let mut seen = Seen {
            level: *event.metadata().level(),
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut seen));
        lock(&self.0).push(seen);
    }
}

/// Counters by name and labels (`key=value`, sorted), added up over every snapshot (a
/// snapshot of a `DebuggingRecorder` consumes what it reports).
struct Counters {
    snapshotter: Snapshotter,
    totals: HashMap<(String, Vec<(String, String)>), u64>,
}

struct Observed {
    events: Arc<Mutex<Vec<Seen>>>,
    counters: Mutex<Counters>,
}

static OBSERVED: LazyLock<Observed> = LazyLock::new(|| {
    let events = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(Record(Arc::clone(&events))),
    )
    .expect("the only global subscriber");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).expect("the only global recorder");
    Observed {
        events,
        counters: Mutex::new(Counters {
            snapshotter,
            totals: HashMap::new(),
        }),
    }
});

/// Every event so far that `matches`.
fn events(matches: impl Fn(&Seen) -> bool) -> Vec<Seen> {
    lock(&OBSERVED.events)
        .iter()
        .filter(|seen| matches(seen))
        .cloned()
        .collect()
}

/// The counter `name` (with the `limiter` label `limiter`, if given) so far.
fn counter(name: &str, limiter: Option<&str>) -> u64 {
    labelled(name, "limiter", limiter)
}

/// The counter `name` so far, over its series whose label `label` is `value` (or that have
/// no such label, for `None`).
fn labelled(name: &str, label: &str, value: Option<&str>) -> u64 {
    let mut counters = lock(&OBSERVED.counters);
    for (key, _, _, added) in counters.snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let DebugValue::Counter(added) = added else {
            continue;
        };
        assert_eq!(kind, MetricKind::Counter);
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        labels.sort();
        *counters
            .totals
            .entry((key.name().to_owned(), labels))
            .or_default() += added;
    }
    counters
        .totals
        .iter()
        .filter(|((series, labels), _)| {
            let found = labels.iter().find(|(key, _)| key == label);
            series == name && found.map(|(_, value)| value.as_str()) == value
        })
        .map(|(_, total)| total)
        .sum()
}

async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn named(name: &str, limit: usize) -> Arc<Limiter> {
    Arc::new(Limiter::new(limit).with_owned_name(name))
}

// ---------------------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_reports_the_fleets_limit_and_a_mismatch() {
    LazyLock::force(&OBSERVED);
    let server = RedisServer::start();
    let first = Fleet::connect(&server.url()).await.unwrap();
    let stored = named("observed-mismatch", 3);
    first.share_arc(&stored).await.unwrap();
    let second = Fleet::connect(&server.url()).await.unwrap();
    let differs = named("observed-mismatch", 5);
    second.share_arc(&differs).await.unwrap();

    let seen = events(|seen| seen.field("limiter") == "observed-mismatch");
    assert_eq!(seen.len(), 2, "{seen:#?}");
    // The first process stores its limit: nothing to warn about.
    assert_eq!(seen[0].level, tracing::Level::DEBUG);
    assert_eq!(seen[0].message, "shared with the fleet");
    assert_eq!(seen[0].field("limit"), "3");
    assert!(!seen[0].fields.contains_key("local_limit"));
    // The second's code says 5; the fleet's 3 wins, and both are in the warning and stats.
    assert_eq!(seen[1].level, tracing::Level::WARN);
    assert_eq!(
        seen[1].message,
        "shared with the fleet, whose limit of 3 wins over this process's 5"
    );
    assert_eq!(seen[1].field("limit"), "3");
    assert_eq!(seen[1].field("local_limit"), "5");
    assert_eq!(differs.limit(), 3);
    assert_eq!(differs.stats().fleet.unwrap().local_limit, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_while_its_call_runs_is_reported() {
    LazyLock::force(&OBSERVED);
    let server = RedisServer::start();
    let fleet = Fleet::builder(&server.url())
        .renew_every(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let limiter = named("observed-lost", 4);
    fleet.share_arc(&limiter).await.unwrap();
    let permit = limiter.acquire_many(3).await;
    // The server forgets the lease, as if this process had been paused past it.
    let leases = "limit-runtime:{observed-lost}:leases";
    let members = server.command(&["ZRANGE", leases, "0", "-1"]);
    let member = members.trim();
    assert!(member.ends_with(":3:30000"), "{members}");
    assert_eq!(server.command(&["ZREM", leases, member]).trim(), "1");

    until("the renewal finds the lease gone", || {
        limiter.stats().fleet.unwrap().leases_lost == 1
    })
    .await;
    let seen = events(|seen| seen.field("limiter") == "observed-lost");
    let lost: Vec<_> = seen
        .iter()
        .filter(|seen| seen.level == tracing::Level::WARN)
        .collect();
    assert_eq!(lost.len(), 1, "{seen:#?}");
    assert!(
        lost[0]
            .message
            .starts_with("a lease expired while its call still ran"),
        "{lost:#?}"
    );
    assert_eq!(lost[0].field("weight"), "3");
    assert_eq!(counter(LEASES_LOST, Some("observed-lost")), 1);
    // The call runs on; it ends without a lease to give back.
    assert_eq!(limiter.running(), 3);
    drop(permit);
    until("the call's end is counted", || limiter.running() == 0).await;
    assert_eq!(limiter.stats().fleet.unwrap().leases_lost, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failed_round_trip_is_reported_once_without_the_password() {
    LazyLock::force(&OBSERVED);
    let mut server = RedisServer::start_with(&["--requirepass", SECRET]);
    let port = server.port();
    let fleet = Fleet::builder(&format!("redis://:{SECRET}@127.0.0.1:{port}/"))
        .renew_every(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let limiter = named("observed-errors", 2);
    fleet.share_arc(&limiter).await.unwrap();
    assert_eq!(fleet.stats().errors, 0);
    // The server's URL, as the events name it: without its password.
    let url = format!("redis://***@127.0.0.1:{port}/");
    let ours = |seen: &Seen| seen.field("server") == url;

    server.kill();
    until("a renewal fails", || fleet.stats().errors >= 2).await;
    server.restart();
    // Back: renewals succeed again, and the errors stop growing.
    let mut before = fleet.stats();
    loop {
        sleep(Duration::from_millis(350)).await;
        let now = fleet.stats();
        if now.errors == before.errors && now.round_trips > before.round_trips {
            break;
        }
        before = now;
    }
    let errors = fleet.stats().errors;
    let seen = events(ours);
    assert_eq!(seen.len() as u64, errors, "{seen:#?}");
    for event in &seen {
        assert_eq!(event.level, tracing::Level::WARN);
        assert!(
            event.message.starts_with("Redis round trip failed: "),
            "{event:#?}"
        );
        assert!(!event.field("script").is_empty(), "{event:#?}");
    }
    assert_eq!(labelled(ERRORS, "server", Some(&url)), errors);
    // No event and no metric label anywhere shows the password.
    let shown = events(|seen| {
        seen.message.contains(SECRET) || seen.fields.values().any(|value| value.contains(SECRET))
    });
    assert!(shown.is_empty(), "{shown:#?}");
    let labelled = lock(&OBSERVED.counters)
        .totals
        .keys()
        .filter(|(_, labels)| labels.iter().any(|(_, value)| value.contains(SECRET)))
        .count();
    assert_eq!(labelled, 0);
}

/// The `WARN` events of `limiter` whose message starts with `start`.
fn warnings(limiter: &str, start: &str) -> Vec<Seen> {
    events(|seen| {
        seen.level == tracing::Level::WARN
            && seen.field("limiter") == limiter
            && seen.message.starts_with(start)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_registered_again_after_the_keys_are_lost_are_reported() {
    LazyLock::force(&OBSERVED);
    let server = RedisServer::start();
    let fleet = Fleet::builder(&server.url())
        .lease(Duration::from_secs(1))
        .renew_every(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let limiter = named("observed-restart", 4);
    fleet.share_arc(&limiter).await.unwrap();
    let three = limiter.acquire_many(3).await;
    let one = limiter.acquire().await;
    // The keys go, as in a restart without the data.
    assert_eq!(server.command(&["FLUSHALL"]).trim(), "OK");
    until("the renewal registers both leases again", || {
        limiter.stats().fleet.unwrap().reregistered == 2
    })
    .await;
    let seen = warnings(
        "observed-restart",
        "the Redis server lost the limiter's keys",
    );
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].field("count"), "2");
    assert_eq!(counter(REREGISTERED, Some("observed-restart")), 2);
    let meta = "limit-runtime:{observed-restart}:meta";
    assert_eq!(server.command(&["HGET", meta, "held"]).trim(), "4");
    assert_eq!(limiter.stats().fleet.unwrap().leases_lost, 0);
    drop((three, one));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_admission_is_reported() {
    LazyLock::force(&OBSERVED);
    let mut server = RedisServer::start();
    let fleet = Fleet::builder(&server.url())
        .on_unreachable(OnUnreachable::Local(2))
        .command_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let limiter = named("observed-local", 4);
    fleet.share_arc(&limiter).await.unwrap();
    server.kill();
    let permit = tokio::time::timeout(HANG, limiter.acquire_many(2))
        .await
        .expect("admitted locally");
    let seen = warnings("observed-local", "admitted without the fleet");
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].field("weight"), "2");
    assert_eq!(counter(LOCAL, Some("observed-local")), 1);
    assert_eq!(limiter.stats().fleet.unwrap().local_admissions, 1);
    drop(permit);
}
