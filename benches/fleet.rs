//! The fleet (feature `redis`): a `Limiter` shared by several processes through Redis,
//! against what people write by hand, on a `redis-server` this bench starts for itself
//! (`limit_suite::redis_server`). Each `Fleet` has its own id, connections and thread, so
//! several in one process stand in for several processes.
//!
//! 1. **Uncontended**: `N` sequential acquire+drop on a shared limiter of 1000, against a
//!    hand-written counter: one `EVALSHA` of `if INCR > limit then DECR return 0 end
//!    return 1` to acquire and one `DECR` to release, awaited in turn, over the redis crate's
//!    multiplexed connection. Our releases are asynchronous: each round waits until the
//!    server's `held` is 0 again, and counts that time in. Round trips from `Fleet::stats`,
//!    commands from `INFO commandstats`.
//! 2. **Contended**: 4 fleets (a limiter `Arc` each, one name, limit 5), 20 tasks each, 50
//!    calls per task holding 2 ms, against a polling design: a Lua try-acquire on a ZSET of
//!    holders scored by server time (npm `redis-semaphore`'s), retried every 10 ms by each
//!    waiter, released by `ZREM`; one multiplexed connection per "process". Commands per
//!    admitted call, and throughput; one local limiter of 5 with all 80 tasks shows the
//!    workload's own ceiling (a 2 ms tokio sleep lasts about 3 ms).
//! 3. **Shared throughput**: 3 fleets sharing a limit of 5 against one local limiter of 5,
//!    calls holding 5 ms, and both against the ideal (5 / 5 ms = 1000 calls/s).
//!
//! Absolute times are noise on a small machine: the headline of each is a ratio measured in
//! the same run, rounds alternating which side goes first, the median of the per-round
//! ratios. Besides the commands the clients send, it reports the commands the server
//! executes (those inside scripts too) and the server's time in them (`usec` of
//! `INFO commandstats`): what a shared Redis pays per call. Reports figures only: nothing
//! here fails because the machine is slow. Ends with a markdown table (measure, ours,
//! baseline, ratio).
//!
//! Run it with `scripts/fleet_bench.sh` (`cargo bench --features redis --bench fleet`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

mod common;

use common::median;
use limit_runtime::Limiter;
use limit_runtime::redis::{Fleet, FleetStats};
use limit_suite::Gauge;
use limit_suite::redis_server::RedisServer;
use redis::Script;
use redis::aio::MultiplexedConnection;

/// Calls per round of the uncontended scenario.
const N: usize = 2000;
const UNCONTENDED_LIMIT: usize = 1000;
const UNCONTENDED_ROUNDS: usize = 9;
const WARM_UP: usize = 200;

const CONTENDED_FLEETS: usize = 4;
const CONTENDED_TASKS: usize = 20;
const CONTENDED_CALLS: usize = 50;
const CONTENDED_LIMIT: usize = 5;
const CONTENDED_HOLD: Duration = Duration::from_millis(2);
const CONTENDED_ROUNDS: usize = 3;
/// How often a waiter of the polling design asks again (`redis-semaphore`'s default).
const POLL_EVERY: Duration = Duration::from_millis(10);

const SHARED_FLEETS: usize = 3;
const SHARED_TASKS: usize = 10;
const SHARED_CALLS: usize = 20;
const SHARED_LIMIT: usize = 5;
const SHARED_HOLD: Duration = Duration::from_millis(5);
const SHARED_ROUNDS: usize = 3;

/// The hand-written counter of scenario 1.
const COUNTER_LUA: &str = "
if redis.call('INCR', KEYS[1]) > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
";

/// The polling design of scenario 2: npm `redis-semaphore`'s acquire script, with the
/// server's clock instead of the client's. ARGV: limit, holder id, lock timeout (ms).
const POLL_LUA: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local timeout = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - timeout)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], timeout)
  return 1
end
return 0
";

/// The lock timeout of the polling design: the fleet's default lease.
const POLL_TIMEOUT_MS: u64 = 30_000;

/// One row of the final table.
struct Row {
    measure: String,
    ours: String,
    baseline: String,
    ratio: String,
}

fn row(measure: impl Into<String>, ours: String, baseline: String, ratio: String) -> Row {
    Row {
        measure: measure.into(),
        ours,
        baseline,
        ratio,
    }
}

/// The smallest and largest of `samples`, for the spread printed beside a median.
fn spread(samples: &[f64]) -> (f64, f64) {
    samples
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

fn per(count: u64, calls: usize) -> f64 {
    count as f64 / calls as f64
}

/// One command's counters from `INFO commandstats`.
#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    calls: u64,
    usec: u64,
}

/// `INFO commandstats`, by command name (`evalsha`, `config|resetstat`, …). Commands run by
/// a script are counted under their own names too.
struct CommandStats(HashMap<String, Stat>);

impl CommandStats {
    fn read(server: &RedisServer) -> Self {
        let info = server.command(&["INFO", "commandstats"]);
        let stats = info
            .lines()
            .filter_map(|line| {
                let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let field = |key: &str| -> Option<u64> {
                    fields
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                        .trim()
                        .parse()
                        .ok()
                };
                let stat = Stat {
                    calls: field("calls")?,
                    usec: field("usec")?,
                };
                Some((name.to_owned(), stat))
            })
            .collect();
        Self(stats)
    }

    /// `name`'s counters since `before`.
    fn since(&self, before: &Self, name: &str) -> Stat {
        let now = self.0.get(name).copied().unwrap_or_default();
        let then = before.0.get(name).copied().unwrap_or_default();
        Stat {
            calls: now.calls - then.calls,
            usec: now.usec - then.usec,
        }
    }

    /// Every command executed since `before` (inside scripts too), but `INFO` and the
    /// bench's own probe (`HMGET`, which no script of either side uses).
    fn executed_since(&self, before: &Self) -> u64 {
        self.0
            .keys()
            .filter(|name| !matches!(name.as_str(), "info" | "hmget"))
            .map(|name| self.since(before, name).calls)
            .sum()
    }
}

fn sum_stats(fleets: &[Fleet]) -> FleetStats {
    fleets
        .iter()
        .map(Fleet::stats)
        .fold(FleetStats::default(), |mut sum, stats| {
            sum.round_trips += stats.round_trips;
            sum.pushes += stats.pushes;
            sum.found_by_renewal += stats.found_by_renewal;
            sum.errors += stats.errors;
            sum
        })
}

/// `now` minus `before`, counter by counter.
fn since(now: FleetStats, before: FleetStats) -> FleetStats {
    // `FleetStats` is `#[non_exhaustive]`: built from its default, field by field.
    let mut delta = FleetStats::default();
    delta.round_trips = now.round_trips - before.round_trips;
    delta.pushes = now.pushes - before.pushes;
    delta.found_by_renewal = now.found_by_renewal - before.found_by_renewal;
    delta.errors = now.errors - before.errors;
    delta
}

/// The meta key of a limiter shared under the default prefix (see `scripts.rs`).
fn meta_key(name: &str) -> String {
    format!("limit-runtime:{{{name}}}:meta")
}

async fn connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("the server's URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the bench's server")
}

/// Waits until the server holds no permit of the limiter whose meta key is `meta` (our
/// releases are sent after the call returns); returns how many times it asked.
async fn wait_released(probe: &mut MultiplexedConnection, meta: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut asked = 0;
    loop {
        asked += 1;
        let (held,): (Option<i64>,) = redis::cmd("HMGET")
            .arg(meta)
            .arg("held")
            .query_async(probe)
            .await
            .expect("HMGET");
        if held.unwrap_or(0) == 0 {
            return asked;
        }
        assert!(
            Instant::now() < deadline,
            "{meta}: held is still {held:?} after 10 s"
        );
        tokio::task::yield_now().await;
    }
}

/// What one side of the uncontended scenario did in one round.
struct Uncontended {
    elapsed: Duration,
    round_trips: u64,
    /// Commands the client sent (scripts and plain commands).
    sent: u64,
    /// Commands the server executed, inside scripts too.
    executed: u64,
    /// The server's time in the commands the client sent.
    server_usec: u64,
}

async fn uncontended_ours(
    server: &RedisServer,
    fleet: &Fleet,
    limiter: &Limiter,
    probe: &mut MultiplexedConnection,
    meta: &str,
    calls: usize,
) -> Uncontended {
    let (stats, commands) = (fleet.stats(), CommandStats::read(server));
    let start = Instant::now();
    for _ in 0..calls {
        drop(limiter.acquire().await);
    }
    wait_released(probe, meta).await;
    let elapsed = start.elapsed();
    let after = CommandStats::read(server);
    let evalsha = after.since(&commands, "evalsha");
    Uncontended {
        elapsed,
        round_trips: fleet.stats().round_trips - stats.round_trips,
        sent: evalsha.calls,
        executed: after.executed_since(&commands),
        server_usec: evalsha.usec,
    }
}

async fn uncontended_hand(
    server: &RedisServer,
    connection: &mut MultiplexedConnection,
    script: &Script,
    key: &str,
    calls: usize,
) -> Uncontended {
    let commands = CommandStats::read(server);
    let start = Instant::now();
    for _ in 0..calls {
        let admitted: i64 = script
            .key(key)
            .arg(UNCONTENDED_LIMIT)
            .invoke_async(connection)
            .await
            .expect("acquire");
        assert_eq!(
            admitted, 1,
            "the hand-written counter refused an uncontended call"
        );
        let _: i64 = redis::cmd("DECR")
            .arg(key)
            .query_async(connection)
            .await
            .expect("release");
    }
    let elapsed = start.elapsed();
    let after = CommandStats::read(server);
    let (evalsha, decr) = (
        after.since(&commands, "evalsha"),
        after.since(&commands, "decr"),
    );
    Uncontended {
        elapsed,
        round_trips: 2 * calls as u64,
        sent: evalsha.calls + decr.calls,
        executed: after.executed_since(&commands),
        server_usec: evalsha.usec + decr.usec,
    }
}

/// One count of an uncontended run, read from its figures.
type Count = fn(&Uncontended) -> u64;

async fn uncontended(server: &RedisServer, table: &mut Vec<Row>) {
    println!(
        "## 1. Uncontended: {N} sequential acquire+drop, limit {UNCONTENDED_LIMIT}, \
         {UNCONTENDED_ROUNDS} rounds"
    );
    let url = server.url();
    let name = "bench/uncontended";
    let fleet = Fleet::connect(&url).await.expect("connect");
    let limiter = Limiter::new(UNCONTENDED_LIMIT).with_name(name);
    let limiter = Arc::new(limiter);
    fleet.share_arc(&limiter).await.expect("share");
    let meta = meta_key(name);
    let mut probe = connection(&url).await;
    let mut hand_connection = connection(&url).await;
    let script = Script::new(COUNTER_LUA);
    let hand_key = "bench/hand-counter";

    // Warm-up (and the hand-written script's first load).
    uncontended_ours(server, &fleet, &limiter, &mut probe, &meta, WARM_UP).await;
    uncontended_hand(server, &mut hand_connection, &script, hand_key, WARM_UP).await;

    let mut rounds = Vec::new();
    for round in 0..UNCONTENDED_ROUNDS {
        let (ours, hand) = if round % 2 == 0 {
            let ours = uncontended_ours(server, &fleet, &limiter, &mut probe, &meta, N).await;
            let hand = uncontended_hand(server, &mut hand_connection, &script, hand_key, N).await;
            (ours, hand)
        } else {
            let hand = uncontended_hand(server, &mut hand_connection, &script, hand_key, N).await;
            let ours = uncontended_ours(server, &fleet, &limiter, &mut probe, &meta, N).await;
            (ours, hand)
        };
        println!(
            "round {round}: ours {:>6.1} µs/call, {:.2} round trips, {:.2} sent, {:.1} executed, \
             {:.1} server µs | hand {:>6.1} µs/call, {:.2} sent, {:.1} executed, {:.1} server µs",
            ours.elapsed.as_secs_f64() * 1e6 / N as f64,
            per(ours.round_trips, N),
            per(ours.sent, N),
            per(ours.executed, N),
            per(ours.server_usec, N),
            hand.elapsed.as_secs_f64() * 1e6 / N as f64,
            per(hand.sent, N),
            per(hand.executed, N),
            per(hand.server_usec, N),
        );
        rounds.push((ours, hand));
    }
    let pick = |f: &dyn Fn(&Uncontended) -> f64| {
        let ours: Vec<f64> = rounds.iter().map(|(o, _)| f(o)).collect();
        let hand: Vec<f64> = rounds.iter().map(|(_, h)| f(h)).collect();
        let ratios: Vec<f64> = rounds.iter().map(|(o, h)| f(o) / f(h)).collect();
        (median(ours), median(hand), ratios)
    };
    let (ours_us, hand_us, ratios) = pick(&|u| u.elapsed.as_secs_f64() * 1e6 / N as f64);
    let (low, high) = spread(&ratios);
    let latency = median(ratios);
    println!(
        "latency per call: ours {ours_us:.1} µs, hand {hand_us:.1} µs, ratio {latency:.2} \
         (per-round {low:.2}..{high:.2})"
    );
    table.push(row(
        format!("uncontended: latency per acquire+drop, µs ({N} sequential calls)"),
        format!("{ours_us:.1}"),
        format!("{hand_us:.1}"),
        format!("{latency:.2}"),
    ));
    // The counts: per call, each side's median, and the median of the per-round ratios.
    let counts: [(&str, Count, usize); 4] = [
        ("uncontended: round trips per call", |u| u.round_trips, 2),
        (
            "uncontended: commands sent per call (EVALSHA, DECR)",
            |u| u.sent,
            2,
        ),
        (
            "uncontended: commands executed per call, inside scripts too",
            |u| u.executed,
            1,
        ),
        (
            "uncontended: server time per call, µs (commandstats usec)",
            |u| u.server_usec,
            1,
        ),
    ];
    for (measure, count, decimals) in counts {
        let (ours, hand, ratios) = pick(&|u| per(count(u), N));
        table.push(row(
            measure,
            format!("{ours:.decimals$}"),
            format!("{hand:.decimals$}"),
            format!("{:.2}", median(ratios)),
        ));
    }
    let stats = fleet.stats();
    println!("fleet stats at the end: {stats:?}");
    println!();
}

/// What one side of the contended or shared scenario did in one round.
struct Contended {
    elapsed: Duration,
    calls: usize,
    /// The most calls that ran at once, across every "process".
    peak: usize,
    /// Scripts run (`EVALSHA`).
    evalsha: u64,
    /// `PUBLISH` (ours: inside the scripts) or `ZREM` (the polling design's release).
    other: u64,
    /// Every command executed, inside scripts too.
    executed: u64,
    /// The server's time in the commands the clients sent.
    server_usec: u64,
    /// For ours: the fleets' stats over the round.
    fleet: Option<FleetStats>,
}

impl Contended {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn commands_per_call(&self) -> f64 {
        per(self.evalsha + self.other, self.calls)
    }
}

/// `processes` limiters of `limit` sharing `name` through their own fleet each, `tasks`
/// tasks per process and `calls` calls per task, each holding its permit for `hold`.
/// `tasks` tasks per limiter, each making `calls` calls that hold a permit for `hold`: how
/// long they all took, and the gauge of the permits held at once.
async fn workload(
    limiters: &[Arc<Limiter>],
    (tasks, calls, hold): (usize, usize, Duration),
) -> (Duration, Arc<Gauge>) {
    let gauge = Arc::new(Gauge::new());
    let start = Instant::now();
    let mut handles = Vec::new();
    for limiter in limiters {
        for _ in 0..tasks {
            let (limiter, gauge) = (Arc::clone(limiter), Arc::clone(&gauge));
            handles.push(tokio::spawn(async move {
                for _ in 0..calls {
                    let _permit = limiter.acquire().await;
                    let _running = gauge.enter();
                    tokio::time::sleep(hold).await;
                }
            }));
        }
    }
    for handle in handles {
        handle.await.expect("a task panicked");
    }
    (start.elapsed(), gauge)
}

async fn shared_round(
    server: &RedisServer,
    fleets: &[Fleet],
    name: &str,
    limit: usize,
    (tasks, calls, hold): (usize, usize, Duration),
) -> Contended {
    let mut limiters = Vec::new();
    for fleet in fleets {
        let limiter = Arc::new(Limiter::new(limit).with_owned_name(name));
        fleet.share_arc(&limiter).await.expect("share");
        limiters.push(limiter);
    }
    let mut probe = connection(&server.url()).await;
    let (stats, commands) = (sum_stats(fleets), CommandStats::read(server));
    let (elapsed, gauge) = workload(&limiters, (tasks, calls, hold)).await;
    // Every release reaches the server before the commands are counted.
    wait_released(&mut probe, &meta_key(name)).await;
    let after = CommandStats::read(server);
    let now = sum_stats(fleets);
    Contended {
        elapsed,
        calls: limiters.len() * tasks * calls,
        peak: gauge.peak(),
        evalsha: after.since(&commands, "evalsha").calls,
        other: after.since(&commands, "publish").calls,
        executed: after.executed_since(&commands),
        server_usec: after.since(&commands, "evalsha").usec,
        fleet: Some(since(now, stats)),
    }
}

/// The polling design: `CONTENDED_FLEETS` "processes" with a multiplexed connection each,
/// the same workload as [`shared_round`].
async fn polling_round(server: &RedisServer, key: &str) -> Contended {
    let script = Arc::new(Script::new(POLL_LUA));
    let mut connections = Vec::new();
    for _ in 0..CONTENDED_FLEETS {
        let mut connection = connection(&server.url()).await;
        // Loaded before the clock starts, as the fleets load theirs at connect.
        script
            .prepare_invoke()
            .load_async(&mut connection)
            .await
            .expect("SCRIPT LOAD");
        connections.push(connection);
    }
    let gauge = Arc::new(Gauge::new());
    let polls = Arc::new(AtomicU64::new(0));
    let commands = CommandStats::read(server);
    let start = Instant::now();
    let mut handles = Vec::new();
    for (process, connection) in connections.iter().enumerate() {
        for task in 0..CONTENDED_TASKS {
            let (mut connection, script, gauge, polls) = (
                connection.clone(),
                Arc::clone(&script),
                Arc::clone(&gauge),
                Arc::clone(&polls),
            );
            let key = key.to_owned();
            handles.push(tokio::spawn(async move {
                for call in 0..CONTENDED_CALLS {
                    let id = format!("{process}:{task}:{call}");
                    loop {
                        polls.fetch_add(1, Relaxed);
                        let admitted: i64 = script
                            .key(&key)
                            .arg(CONTENDED_LIMIT)
                            .arg(&id)
                            .arg(POLL_TIMEOUT_MS)
                            .invoke_async(&mut connection)
                            .await
                            .expect("try-acquire");
                        if admitted == 1 {
                            break;
                        }
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                    let running = gauge.enter();
                    tokio::time::sleep(CONTENDED_HOLD).await;
                    drop(running);
                    let _: i64 = redis::cmd("ZREM")
                        .arg(&key)
                        .arg(&id)
                        .query_async(&mut connection)
                        .await
                        .expect("release");
                }
            }));
        }
    }
    for handle in handles {
        handle.await.expect("a task panicked");
    }
    let elapsed = start.elapsed();
    let after = CommandStats::read(server);
    Contended {
        elapsed,
        calls: CONTENDED_FLEETS * CONTENDED_TASKS * CONTENDED_CALLS,
        peak: gauge.peak(),
        evalsha: after.since(&commands, "evalsha").calls,
        other: after.since(&commands, "zrem").calls,
        executed: after.executed_since(&commands),
        server_usec: after.since(&commands, "evalsha").usec + after.since(&commands, "zrem").usec,
        fleet: None,
    }
}

fn print_contended(side: &str, round: usize, c: &Contended, limit: usize) {
    let over = if c.peak > limit {
        " LIMIT EXCEEDED"
    } else {
        ""
    };
    let fleet = c.fleet.map_or_else(String::new, |f| {
        format!(
            ", {:.2} round trips/call, {} pushes, {} found by renewal, {} errors",
            per(f.round_trips, c.calls),
            f.pushes,
            f.found_by_renewal,
            f.errors
        )
    });
    println!(
        "round {round} {side}: {} calls in {:.0} ms = {:.0} calls/s, peak {}{over}, \
         {:.2} EVALSHA + {:.2} {} = {:.2} commands/call, {:.1} executed/call, \
         {:.1} server µs/call{fleet}",
        c.calls,
        c.elapsed.as_secs_f64() * 1e3,
        c.throughput(),
        c.peak,
        per(c.evalsha, c.calls),
        per(c.other, c.calls),
        if c.fleet.is_some() { "PUBLISH" } else { "ZREM" },
        c.commands_per_call(),
        per(c.executed, c.calls),
        per(c.server_usec, c.calls),
    );
}

fn print_local(round: usize, c: &Contended) {
    println!(
        "round {round} local  : {} calls in {:.0} ms = {:.0} calls/s, peak {}",
        c.calls,
        c.elapsed.as_secs_f64() * 1e3,
        c.throughput(),
        c.peak
    );
}

async fn connect_fleets(server: &RedisServer, n: usize) -> Vec<Fleet> {
    let mut fleets = Vec::new();
    for _ in 0..n {
        fleets.push(Fleet::connect(&server.url()).await.expect("connect"));
    }
    fleets
}

async fn contended(server: &RedisServer, table: &mut Vec<Row>) {
    let calls = CONTENDED_FLEETS * CONTENDED_TASKS * CONTENDED_CALLS;
    println!(
        "## 2. Contended: {CONTENDED_FLEETS} processes × {CONTENDED_TASKS} tasks × \
         {CONTENDED_CALLS} calls = {calls} calls holding {CONTENDED_HOLD:?}, limit \
         {CONTENDED_LIMIT}; baseline polls every {POLL_EVERY:?}"
    );
    let fleets = connect_fleets(server, CONTENDED_FLEETS).await;
    let workload = (CONTENDED_TASKS, CONTENDED_CALLS, CONTENDED_HOLD);
    let local_workload = (
        CONTENDED_FLEETS * CONTENDED_TASKS,
        CONTENDED_CALLS,
        CONTENDED_HOLD,
    );
    let mut rounds = Vec::new();
    for round in 0..CONTENDED_ROUNDS {
        let name = format!("bench/contended-{round}");
        let key = format!("bench/polling-{round}");
        let (ours, polling) = if round % 2 == 0 {
            let ours = shared_round(server, &fleets, &name, CONTENDED_LIMIT, workload).await;
            (ours, polling_round(server, &key).await)
        } else {
            let polling = polling_round(server, &key).await;
            let ours = shared_round(server, &fleets, &name, CONTENDED_LIMIT, workload).await;
            (ours, polling)
        };
        // For reference: how close to the workload's own ceiling (the timer's granularity
        // included) each side gets.
        let local = local_round(CONTENDED_LIMIT, local_workload).await;
        print_contended("ours   ", round, &ours, CONTENDED_LIMIT);
        print_contended("polling", round, &polling, CONTENDED_LIMIT);
        print_local(round, &local);
        rounds.push((ours, polling, local));
    }
    let ratios = |f: &dyn Fn(&(Contended, Contended, Contended)) -> f64| {
        median(rounds.iter().map(f).collect())
    };
    let ours_commands = ratios(&|(o, _, _)| o.commands_per_call());
    let polling_commands = ratios(&|(_, p, _)| p.commands_per_call());
    let commands = ratios(&|(o, p, _)| o.commands_per_call() / p.commands_per_call());
    let ours_executed = ratios(&|(o, _, _)| per(o.executed, o.calls));
    let polling_executed = ratios(&|(_, p, _)| per(p.executed, p.calls));
    let executed = ratios(&|(o, p, _)| per(o.executed, o.calls) / per(p.executed, p.calls));
    let ours_server = ratios(&|(o, _, _)| per(o.server_usec, o.calls));
    let polling_server = ratios(&|(_, p, _)| per(p.server_usec, p.calls));
    let server_time =
        ratios(&|(o, p, _)| per(o.server_usec, o.calls) / per(p.server_usec, p.calls));
    let ours_throughput = ratios(&|(o, _, _)| o.throughput());
    let polling_throughput = ratios(&|(_, p, _)| p.throughput());
    let local_throughput = ratios(&|(_, _, l)| l.throughput());
    let throughput = ratios(&|(o, p, _)| o.throughput() / p.throughput());
    let vs_local = ratios(&|(o, _, l)| o.throughput() / l.throughput());
    let polling_vs_local = ratios(&|(_, p, l)| p.throughput() / l.throughput());
    let ideal = CONTENDED_LIMIT as f64 / CONTENDED_HOLD.as_secs_f64();
    println!(
        "commands per admitted call: ours {ours_commands:.2}, polling {polling_commands:.2}, \
         ratio {commands:.2}; server µs per call: ours {ours_server:.1}, polling \
         {polling_server:.1}, ratio {server_time:.2}"
    );
    println!(
        "throughput: ours {ours_throughput:.0}/s, polling {polling_throughput:.0}/s, ratio \
         {throughput:.2}; local {local_throughput:.0}/s (ours/local {vs_local:.2}, \
         polling/local {polling_vs_local:.2}); ideal {ideal:.0}/s"
    );
    table.push(row(
        format!(
            "contended: commands sent per admitted call (EVALSHA + PUBLISH vs EVALSHA + ZREM), \
             {CONTENDED_FLEETS}×{CONTENDED_TASKS} tasks, limit {CONTENDED_LIMIT}, hold {} ms",
            CONTENDED_HOLD.as_millis()
        ),
        format!("{ours_commands:.2}"),
        format!("{polling_commands:.2}"),
        format!("{commands:.2}"),
    ));
    table.push(row(
        "contended: commands executed per admitted call, inside scripts too",
        format!("{ours_executed:.1}"),
        format!("{polling_executed:.1}"),
        format!("{executed:.2}"),
    ));
    table.push(row(
        "contended: server time per admitted call, µs (commandstats usec)",
        format!("{ours_server:.1}"),
        format!("{polling_server:.1}"),
        format!("{server_time:.2}"),
    ));
    table.push(row(
        format!("contended: throughput, calls/s, vs polling (ideal {ideal:.0})"),
        format!("{ours_throughput:.0}"),
        format!("{polling_throughput:.0}"),
        format!("{throughput:.2}"),
    ));
    table.push(row(
        "contended: throughput, calls/s, vs one local limiter of the same limit",
        format!("{ours_throughput:.0}"),
        format!("{local_throughput:.0}"),
        format!("{vs_local:.2}"),
    ));
    println!();
}

/// One local (unshared) limiter of `limit`, with all the tasks that a shared round spreads
/// over its processes: `tasks` tasks of `calls` calls, each holding its permit for `hold`.
async fn local_round(limit: usize, (tasks, calls, hold): (usize, usize, Duration)) -> Contended {
    let limiter = Arc::new(Limiter::new(limit).with_name("bench/local"));
    let (elapsed, gauge) = workload(&[limiter], (tasks, calls, hold)).await;
    Contended {
        elapsed,
        calls: tasks * calls,
        peak: gauge.peak(),
        evalsha: 0,
        other: 0,
        executed: 0,
        server_usec: 0,
        fleet: None,
    }
}

async fn shared_throughput(server: &RedisServer, table: &mut Vec<Row>) {
    let calls = SHARED_FLEETS * SHARED_TASKS * SHARED_CALLS;
    let ideal = SHARED_LIMIT as f64 / SHARED_HOLD.as_secs_f64();
    println!(
        "## 3. Shared throughput: {SHARED_FLEETS} processes × {SHARED_TASKS} tasks × \
         {SHARED_CALLS} calls = {calls} calls holding {SHARED_HOLD:?}, limit {SHARED_LIMIT} \
         shared vs local; ideal {ideal:.0} calls/s"
    );
    let fleets = connect_fleets(server, SHARED_FLEETS).await;
    let workload = (SHARED_TASKS, SHARED_CALLS, SHARED_HOLD);
    let local_workload = (SHARED_FLEETS * SHARED_TASKS, SHARED_CALLS, SHARED_HOLD);
    let mut rounds = Vec::new();
    for round in 0..SHARED_ROUNDS {
        let name = format!("bench/shared-{round}");
        let (shared, local) = if round % 2 == 0 {
            let shared = shared_round(server, &fleets, &name, SHARED_LIMIT, workload).await;
            (shared, local_round(SHARED_LIMIT, local_workload).await)
        } else {
            let local = local_round(SHARED_LIMIT, local_workload).await;
            let shared = shared_round(server, &fleets, &name, SHARED_LIMIT, workload).await;
            (shared, local)
        };
        print_contended("shared", round, &shared, SHARED_LIMIT);
        print_local(round, &local);
        rounds.push((shared, local));
    }
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|(s, l)| s.throughput() / l.throughput())
        .collect();
    let (low, high) = spread(&ratios);
    let ratio = median(ratios);
    let shared = median(rounds.iter().map(|(s, _)| s.throughput()).collect());
    let local = median(rounds.iter().map(|(_, l)| l.throughput()).collect());
    println!(
        "throughput: shared {shared:.0}/s, local {local:.0}/s, ratio {ratio:.2} (per-round \
         {low:.2}..{high:.2}); shared/ideal {:.2}, local/ideal {:.2}",
        shared / ideal,
        local / ideal
    );
    table.push(row(
        format!(
            "throughput, calls/s: {SHARED_FLEETS} processes sharing {SHARED_LIMIT} vs one \
             local limiter of {SHARED_LIMIT} (holding {} ms)",
            SHARED_HOLD.as_millis()
        ),
        format!("{shared:.0}"),
        format!("{local:.0}"),
        format!("{ratio:.2}"),
    ));
    table.push(row(
        format!("throughput vs the ideal ({ideal:.0} calls/s): shared, local"),
        format!("{:.2}", shared / ideal),
        format!("{:.2}", local / ideal),
        format!("{ratio:.2}"),
    ));
    println!();
}

fn main() {
    let started = Instant::now();
    let server = RedisServer::start();
    println!(
        "redis-server {} on {}",
        server
            .command(&["INFO", "server"])
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim(),
        server.url()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut table = Vec::new();
    runtime.block_on(async {
        uncontended(&server, &mut table).await;
        contended(&server, &mut table).await;
        shared_throughput(&server, &mut table).await;
    });
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    println!();
    println!("| measure | ours | baseline | ratio |");
    println!("|---|---|---|---|");
    for Row {
        measure,
        ours,
        baseline,
        ratio,
    } in &table
    {
        println!("| {measure} | {ours} | {baseline} | {ratio} |");
    }
}
