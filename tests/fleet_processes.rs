#![cfg(feature = "redis")]
//! A shared limiter across real OS processes: the children are this test binary itself,
//! re-run with `fleet_child --exact` and a role in `LIMIT_FLEET_CHILD`.
//!
//! A child speaks to its parent in stdout lines `fleet-child: <WORD> [details]` (`READY`,
//! `HELD`, `BUSY`, `ACQUIRED`, `LOST`, `DONE`), and listens on stdin for `GO` where it must wait for
//! the others. The marker keeps its words apart from libtest's own output (with
//! `--test-threads=1`, libtest writes `test fleet_child ... ` without a line break, so the
//! child's first line may follow it).
//!
//! Every wait has a deadline, and each child is killed (`SIGKILL`) and reaped by its guard
//! ([`Kid`]) when a test ends, passed or failed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use limit_runtime::redis::Fleet;
use limit_runtime::{Limiter, OwnedPermit, concurrency_limit};
use limit_suite::HANG;
use limit_suite::redis_server::RedisServer;
use redis::aio::MultiplexedConnection;

/// The prefix of a child's messages on its stdout.
const MARKER: &str = "fleet-child: ";
/// The fleet's default key prefix.
const PREFIX: &str = "limit-runtime";

/// The probe's keys: calls inside a permit now, fleet-wide, and the most ever seen.
const PROBE_RUNNING: &str = "probe:running";
const PROBE_MAX: &str = "probe:max";
/// Run inside each permit before the body: counts the call in and keeps the high-water mark,
/// in one step on the server.
const PROBE_ENTER: &str = "local v = redis.call('INCR', KEYS[1]); \
     if v > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], v) end; \
     return v";

/// The limiter of `cap_across_three_processes`, in each child. Calls reach it both through
/// the attribute and through `acquire`/`try_acquire`.
static CAP: Limiter = Limiter::new(5).with_name("cap");
const CAP_LIMIT: i64 = 5;
const CAP_TASKS: usize = 30;

fn key(name: &str, part: &str) -> String {
    format!("{PREFIX}:{{{name}}}:{part}")
}

/// Members of the sorted set `key` whose expiry (their score) is still ahead, by the server's
/// clock: a lapsed one stays in the set until a script sweeps it.
fn unexpired(server: &RedisServer, key: &str) -> i64 {
    let time = server.command(&["TIME"]);
    let mut parts = time
        .lines()
        .map(|part| part.trim().parse::<i64>().expect("TIME"));
    let (seconds, micros) = (parts.next().expect("s"), parts.next().expect("µs"));
    let now_ms = seconds * 1000 + micros / 1000;
    let count = server.command(&["ZCOUNT", key, &format!("({now_ms}"), "+inf"]);
    count.trim().parse().expect("ZCOUNT")
}

/// The lease of a holder child (`hold_both`), and the recheck of a `late` child.
const LEASE: Duration = Duration::from_secs(1);
const RECHECK: Duration = Duration::from_millis(200);

/// Kills `holder` and tells `late` to go: `late` finds the dead holder's permits still
/// taken, and is admitted within the lease bound (plus 2 s of slack for a loaded machine).
/// Returns how long after the kill, and `late`'s details.
fn kill_then_admitted(test: &str, holder: &mut Kid, late: &mut Kid) -> (Duration, String) {
    holder.kill();
    let killed = Instant::now();
    late.send("GO");
    late.expect("BUSY", deadline());
    let acquired = late.expect("ACQUIRED", deadline());
    let kill_to_admit = killed.elapsed();
    println!("{test}: kill -> admitted {kill_to_admit:?} ({acquired})");
    assert!(
        kill_to_admit < LEASE + RECHECK + Duration::from_secs(2),
        "admitted only {kill_to_admit:?} after the kill (lease {LEASE:?}, recheck {RECHECK:?})"
    );
    (kill_to_admit, acquired)
}

fn deadline() -> Instant {
    Instant::now() + HANG
}

/// Polls `condition` every 10 ms until it holds; panics, naming `what`, at the deadline.
#[track_caller]
fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A small xorshift generator: the waits need spread, not quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn time_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |since| {
            u64::try_from(since.as_nanos() & 0xFFFF_FFFF_FFFF).unwrap_or(1)
        })
}

// ---------------------------------------------------------------------------------------------
// The parent's side.

/// One line a child wrote on its stdout.
enum Line {
    /// A message after the marker.
    Message(String),
    /// Anything else (libtest's own lines), kept for failure messages.
    Other(String),
}

/// A child process (this test binary in a role), killed and reaped when dropped.
struct Kid {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    /// What it wrote so far, for failure messages.
    seen: Vec<String>,
}

impl Kid {
    /// Starts this test binary as a child in `role`, with `env` added to its environment.
    fn spawn(role: &str, env: &[(&str, &str)]) -> Kid {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut command = Command::new(exe);
        command
            .args(["fleet_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("LIMIT_FLEET_CHILD", role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("could not start child {role}: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (send, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = match line.split_once(MARKER) {
                    Some((_, message)) => Line::Message(message.to_owned()),
                    None => Line::Other(line),
                };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Kid {
            role: role.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the child's next message, which must start with `word`, and returns the rest
    /// of it (trimmed). Panics on another message, at the deadline, or when the child's stdout
    /// closes (it exited, or panicked: its panic is on stderr).
    #[track_caller]
    fn expect(&mut self, word: &str, deadline: Instant) -> String {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Message(message)) => {
                    self.seen.push(format!("{MARKER}{message}"));
                    let rest = message.strip_prefix(word).unwrap_or_else(|| {
                        panic!(
                            "child {} said {message:?}, expected {word}; its output:\n{}",
                            self.role,
                            self.seen.join("\n")
                        )
                    });
                    return rest.trim().to_owned();
                }
                Ok(Line::Other(line)) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "child {} did not say {word} in time; its output:\n{}",
                    self.role,
                    self.seen.join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "child {} exited ({:?}) before saying {word}; its output:\n{}",
                    self.role,
                    self.child.try_wait(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Writes `line` to the child's stdin.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the child's stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|error| panic!("could not write to child {}: {error}", self.role));
    }

    /// Waits for the child to exit, and checks that it succeeded.
    #[track_caller]
    fn wait_success(&mut self, deadline: Instant) {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "child {} failed ({status}); its output:\n{}",
                        self.role,
                        self.seen.join("\n")
                    );
                    return;
                }
                Ok(None) => {}
                Err(error) => panic!("could not wait for child {}: {error}", self.role),
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit in time",
                self.role
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends it a signal (`STOP`, `CONT`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.role);
    }

    /// `SIGKILL`, and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `key=value` pairs from a `DONE` line.
fn field(details: &str, name: &str) -> i64 {
    details
        .split_whitespace()
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {details:?}"))
}

/// 3 processes share "cap" (limit 5), each with its own `Fleet`, and make 100–200 calls each,
/// 30 at a time, through the attribute, `acquire` and `try_acquire`. A probe on the same
/// server counts the calls inside their permits: the fleet-wide count never passed 5, and
/// reached it. At the end, the server holds no lease.
#[test]
fn cap_across_three_processes() {
    let server = RedisServer::start();
    let url = server.url();
    let seed = time_seed();
    let mut rng = Rng::new(seed);
    let calls: Vec<u64> = (0..3).map(|_| rng.between(100, 200)).collect();
    let mut kids: Vec<Kid> = calls
        .iter()
        .enumerate()
        .map(|(i, calls)| {
            let calls = calls.to_string();
            let seed = (seed + i as u64 + 1).to_string();
            Kid::spawn(
                "cap",
                &[
                    ("REDIS_URL", url.as_str()),
                    ("LIMIT_FLEET_CALLS", calls.as_str()),
                    ("LIMIT_FLEET_SEED", seed.as_str()),
                ],
            )
        })
        .collect();
    // All three have shared the limiter before any of them calls.
    for kid in &mut kids {
        kid.expect("READY", deadline());
    }
    assert_eq!(server.command(&["HGET", &key("cap", "meta"), "limit"]), "5");
    let started = Instant::now();
    for kid in &mut kids {
        kid.send("GO");
    }
    let mut made = 0;
    let mut local_max = 0;
    for kid in &mut kids {
        let done = kid.expect("DONE", deadline());
        made += field(&done, "calls");
        local_max = local_max.max(field(&done, "max"));
        println!("child: DONE {done}");
    }
    for kid in &mut kids {
        kid.wait_success(deadline());
    }
    let elapsed = started.elapsed();
    let expected: u64 = calls.iter().sum();
    assert_eq!(
        made,
        i64::try_from(expected).unwrap(),
        "calls made (seed {seed})"
    );
    let probe_max: i64 = server.command(&["GET", PROBE_MAX]).parse().unwrap();
    println!(
        "cap_across_three_processes: {expected} calls ({calls:?}, seed {seed}) in {elapsed:?}, \
         probe max {probe_max}"
    );
    assert!(
        probe_max <= CAP_LIMIT,
        "{probe_max} calls ran at once across the fleet, above its limit of {CAP_LIMIT}"
    );
    assert_eq!(probe_max, CAP_LIMIT, "the fleet never reached its limit");
    assert_eq!(local_max, probe_max);
    assert_eq!(server.command(&["GET", PROBE_RUNNING]), "0");
    assert_eq!(server.command(&["HGET", &key("cap", "meta"), "held"]), "0");
    assert_eq!(server.command(&["ZCARD", &key("cap", "leases")]), "0");
    assert_eq!(server.command(&["ZCARD", &key("cap", "queue")]), "0");
}

/// A holder with a 1 s lease (renewed every 300 ms) takes both permits of "killed" and is
/// `SIGKILL`ed. Its permits stay taken until its lease ends on the server, then a waiter of
/// another process (rechecking every 200 ms) gets one.
#[test]
fn killed_holder_frees_its_permits() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [("REDIS_URL", url.as_str()), ("LIMIT_FLEET_NAME", "killed")];
    let meta = key("killed", "meta");

    let mut holder = Kid::spawn("holder", &env);
    holder.expect("HELD", deadline());
    assert_eq!(server.command(&["HGET", &meta, "held"]), "2");
    // Renewed: still held after more than a lease.
    thread::sleep(LEASE + LEASE / 2);
    assert_eq!(server.command(&["HGET", &meta, "held"]), "2");
    assert_eq!(server.command(&["ZCARD", &key("killed", "leases")]), "1");

    let mut late = Kid::spawn("late", &env);
    late.expect("READY", deadline());
    let (kill_to_admit, acquired) =
        kill_then_admitted("killed_holder_frees_its_permits", &mut holder, &mut late);
    assert!(
        kill_to_admit >= Duration::from_millis(500),
        "admitted {kill_to_admit:?} after the kill: the dead holder's lease (1 s, renewed every \
         300 ms) cannot have expired yet"
    );
    // It took the other permit with `try_acquire` too: both of the dead holder's are free.
    assert!(acquired.ends_with("try_acquire=granted"), "{acquired}");
    assert_eq!(server.command(&["HGET", &meta, "held"]), "2");
    // One lease (weight 2) expired, swept by the waiter's recheck.
    assert_eq!(server.command(&["HGET", &meta, "expired"]), "1");
    late.send("GO");
    late.expect("DONE", deadline());
    late.wait_success(deadline());
    assert_eq!(server.command(&["HGET", &meta, "held"]), "0");
    assert_eq!(server.command(&["ZCARD", &key("killed", "leases")]), "0");
}

/// A holder with a 1 s lease (renewed every 300 ms, and a recheck of 3 s) holds
/// both permits of "dead-in-line" and has a third call waiting in the server's line. Alive,
/// it keeps its lease and its place for longer than a lease. Killed, with a waiter of
/// another process behind its place, the line moves on within the lease bound: its lease
/// and its place both expire, and the waiter is admitted.
#[test]
fn a_killed_holders_place_in_line_expires() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("LIMIT_FLEET_NAME", "dead-in-line"),
        ("LIMIT_FLEET_RECHECK_MS", "3000"),
    ];
    let queue = key("dead-in-line", "queue");
    let leases = key("dead-in-line", "leases");

    let mut holder = Kid::spawn("holder_waiting", &env);
    holder.expect("HELD", deadline());
    wait_until("its third call is in the server's line", HANG, || {
        server.command(&["ZCARD", &queue]) == "1"
    });
    // Its renewals run at least every 300 ms while it waits, not every recheck (3 s): after
    // 1.5 leases its lease and its place still expire in the future, by the server's clock.
    thread::sleep(LEASE + LEASE / 2);
    assert_eq!(unexpired(&server, &leases), 1);
    assert_eq!(unexpired(&server, &key("dead-in-line", "qexp")), 1);

    let mut late = Kid::spawn("late", &env);
    late.expect("READY", deadline());
    kill_then_admitted(
        "a_killed_holders_place_in_line_expires",
        &mut holder,
        &mut late,
    );
    // The waiter was behind the dead call's place: that place has left the line.
    assert_eq!(server.command(&["ZCARD", &queue]), "0");
    late.send("GO");
    late.expect("DONE", deadline());
    late.wait_success(deadline());
}

/// A holder with a 1 s lease takes both permits of "paused" and is stopped (`SIGSTOP`) past
/// its lease: a waiter of another process gets them once the lease ends on the server. When
/// the holder is continued, its call still runs, and it is told: its renewal finds the lease
/// gone (`SharedStats::leases_lost`), and its call's end gives back nothing it no longer has.
#[test]
fn paused_holder_loses_its_lease_and_is_told() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [("REDIS_URL", url.as_str()), ("LIMIT_FLEET_NAME", "paused")];
    let meta = key("paused", "meta");

    let mut holder = Kid::spawn("paused", &env);
    holder.expect("HELD", deadline());
    let mut late = Kid::spawn("late", &env);
    late.expect("READY", deadline());
    holder.signal("STOP");
    late.send("GO");
    late.expect("BUSY", deadline());
    // The stopped holder cannot renew: its lease ends, and the waiter takes both permits.
    let acquired = late.expect("ACQUIRED", deadline());
    assert!(acquired.ends_with("try_acquire=granted"), "{acquired}");
    assert_eq!(server.command(&["HGET", &meta, "held"]), "2");

    holder.signal("CONT");
    holder.send("GO");
    let lost = holder.expect("LOST", deadline());
    assert_eq!(
        lost, "leases_lost=1 running=2",
        "the continued holder's view"
    );
    holder.expect("DONE", deadline());
    holder.wait_success(deadline());
    // Its call ended without taking the waiter's permits back from the count.
    assert_eq!(server.command(&["HGET", &meta, "held"]), "2");
    late.send("GO");
    late.expect("DONE", deadline());
    late.wait_success(deadline());
    assert_eq!(server.command(&["HGET", &meta, "held"]), "0");
}

/// The parent holds the only permit of "fifo"; B, C and D join the server's line one after
/// another (each queued before the next starts), and are admitted in that order once the
/// parent lets go.
#[test]
fn fifo_across_processes() {
    let server = RedisServer::start();
    let url = server.url();
    let queue = key("fifo", "queue");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fleet = runtime.block_on(Fleet::connect(&url)).unwrap();
    let limiter = Arc::new(Limiter::new(1).with_name("fifo"));
    runtime.block_on(fleet.share_arc(&limiter)).unwrap();
    let permit = runtime.block_on(async {
        tokio::time::timeout(HANG, limiter.acquire())
            .await
            .expect("the parent's permit")
    });
    assert_eq!(server.command(&["HGET", &key("fifo", "meta"), "held"]), "1");

    let mut kids = Vec::new();
    for (i, tag) in ["B", "C", "D"].into_iter().enumerate() {
        let mut kid = Kid::spawn(
            "fifo",
            &[
                ("REDIS_URL", url.as_str()),
                ("LIMIT_FLEET_NAME", "fifo"),
                ("LIMIT_FLEET_TAG", tag),
            ],
        );
        kid.expect("READY", deadline());
        let queued = (i + 1).to_string();
        wait_until(&format!("{tag} is in the line"), HANG, || {
            server.command(&["ZCARD", &queue]) == queued
        });
        kids.push(kid);
    }
    assert_eq!(server.command(&["LLEN", "order"]), "0");
    drop(permit);
    for kid in &mut kids {
        kid.expect("DONE", deadline());
    }
    for kid in &mut kids {
        kid.wait_success(deadline());
    }
    assert_eq!(server.command(&["LRANGE", "order", "0", "-1"]), "B\nC\nD");
    assert_eq!(server.command(&["HGET", &key("fifo", "meta"), "held"]), "0");
    assert_eq!(server.command(&["ZCARD", &key("fifo", "leases")]), "0");
    assert_eq!(server.command(&["ZCARD", &queue]), "0");
}

/// Two processes hold all 5 permits of "restart" (3 calls and 2), a third waits in the
/// server's line, and the server is killed and started again without its data. The processes
/// that knew the limiter find its epoch gone: the fleet admits nothing new for one lease,
/// while the holders register their leases again. A probe on a second server (which keeps
/// its count) sees at most 5 calls inside their permits at any time; the leases on the new
/// server equal the calls running; and the waiter, admitted once a holder lets go, carries a
/// fencing token of the new epoch, above every token granted before the restart.
#[test]
fn an_empty_restart_admits_nothing_new_until_the_holders_are_back() {
    let mut server = RedisServer::start();
    let probe = RedisServer::start();
    let (url, probe_url) = (server.url(), probe.url());
    let env = |calls: &'static str| {
        [
            ("REDIS_URL", url.clone()),
            ("PROBE_URL", probe_url.clone()),
            ("LIMIT_FLEET_NAME", "restart".to_owned()),
            ("LIMIT_FLEET_CALLS", calls.to_owned()),
        ]
    };
    let spawn = |role: &str, calls: &'static str| {
        let env = env(calls);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Kid::spawn(role, &env)
    };
    let (meta, leases) = (key("restart", "meta"), key("restart", "leases"));

    let mut three = spawn("restart_holder", "3");
    let before_three = field(&three.expect("HELD", deadline()), "max_sequence");
    three.expect("EPOCH", deadline());
    let mut two = spawn("restart_holder", "2");
    let before_two = field(&two.expect("HELD", deadline()), "max_sequence");
    let old_epoch = field(&two.expect("EPOCH", deadline()), "epoch");
    assert_eq!(server.command(&["HGET", &meta, "held"]), "5");
    let mut late = spawn("restart_late", "1");
    late.expect("READY", deadline());
    late.send("GO");
    late.expect("BUSY", deadline());
    wait_until("the third process waits in the server's line", HANG, || {
        server.command(&["ZCARD", &key("restart", "queue")]) == "1"
    });

    server.restart();
    // The holders find the restart at their next renewal (every 300 ms), and register their
    // 5 leases again during the quiet period.
    wait_until("the holders' leases are registered again", HANG, || {
        server.command(&["ZCARD", &leases]) == "5"
    });
    assert_eq!(server.command(&["HGET", &meta, "held"]), "5");
    assert_eq!(server.command(&["HGET", &meta, "limit"]), "5");
    let new_epoch: i64 = server.command(&["HGET", &meta, "epoch"]).parse().unwrap();
    assert!(new_epoch > old_epoch, "epoch {old_epoch} -> {new_epoch}");
    // Past the quiet period (one 1 s lease), nothing was freed: still 5 leases, 5 calls.
    thread::sleep(LEASE + LEASE / 2);
    assert_eq!(server.command(&["ZCARD", &leases]), "5");
    assert_eq!(server.command(&["HGET", &meta, "held"]), "5");

    three.send("GO");
    assert_eq!(three.expect("DONE", deadline()), "reregistered=3 lost=0");
    three.wait_success(deadline());
    let acquired = late.expect("ACQUIRED", deadline());
    let (epoch, sequence) = (field(&acquired, "epoch"), field(&acquired, "sequence"));
    assert_eq!(epoch, new_epoch, "the waiter's token is of the new epoch");
    assert!(epoch > old_epoch && sequence >= 1, "{acquired}");
    println!(
        "tokens before the restart: {old_epoch}.{before_three}, {old_epoch}.{before_two}; \
         after: {epoch}.{sequence}"
    );
    two.send("GO");
    assert_eq!(two.expect("DONE", deadline()), "reregistered=2 lost=0");
    two.wait_success(deadline());
    late.send("GO");
    late.expect("DONE", deadline());
    late.wait_success(deadline());

    let probe_max: i64 = probe.command(&["GET", PROBE_MAX]).parse().unwrap();
    assert!(
        probe_max <= CAP_LIMIT,
        "{probe_max} calls ran at once across the fleet, above its limit of {CAP_LIMIT}"
    );
    assert_eq!(probe_max, CAP_LIMIT);
    assert_eq!(probe.command(&["GET", PROBE_RUNNING]), "0");
    assert_eq!(server.command(&["HGET", &meta, "held"]), "0");
    assert_eq!(server.command(&["ZCARD", &leases]), "0");
}

// ---------------------------------------------------------------------------------------------
// The children's side.

/// The child's entry point: nothing unless `LIMIT_FLEET_CHILD` names a role.
#[test]
fn fleet_child() {
    let Ok(role) = std::env::var("LIMIT_FLEET_CHILD") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the child's runtime");
    runtime.block_on(async {
        match role.as_str() {
            "cap" => cap_child().await,
            "holder" => holder_child().await,
            "paused" => paused_child().await,
            "holder_waiting" => holder_waiting_child().await,
            "late" => late_child().await,
            "fifo" => fifo_child().await,
            "restart_holder" => restart_holder_child().await,
            "restart_late" => restart_late_child().await,
            other => panic!("unknown role {other:?}"),
        }
    });
}

fn say(message: &str) {
    println!("{MARKER}{message}");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Blocks until the parent writes `GO`.
fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("read the parent's GO");
    assert_eq!(line.trim(), "GO", "the parent said {line:?}");
}

async fn probe_connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("the probe's client")
        .get_multiplexed_async_connection()
        .await
        .expect("the probe's connection")
}

/// Waits until the server has no lease of `fleet` for `name` left: a permit's release is
/// sent by the fleet's thread after the permit is dropped, and a process that exited at
/// once could leave it unsent (the lease would then only expire).
async fn until_released(connection: &mut MultiplexedConnection, fleet: &Fleet, name: &str) {
    let leases = key(name, "leases");
    let own = format!("{}:", fleet.id());
    let end = Instant::now() + HANG;
    loop {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(&leases)
            .arg(0)
            .arg(-1)
            .query_async(connection)
            .await
            .expect("ZRANGE leases");
        if !members.iter().any(|member| member.starts_with(&own)) {
            return;
        }
        assert!(Instant::now() < end, "leases not released: {members:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The probe, run by every call of the `cap` role inside its permit.
#[derive(Clone)]
struct Probe {
    connection: MultiplexedConnection,
    enter: Arc<redis::Script>,
    max: Arc<AtomicI64>,
}

impl Probe {
    async fn inside(&self, hold: Duration) {
        self.enter().await;
        tokio::time::sleep(hold).await;
        self.exit().await;
    }

    /// Counts a call in, and keeps the high-water mark.
    async fn enter(&self) {
        let mut connection = self.connection.clone();
        let running: i64 = self
            .enter
            .key(PROBE_RUNNING)
            .key(PROBE_MAX)
            .invoke_async(&mut connection)
            .await
            .expect("the probe's EVAL");
        self.max.fetch_max(running, Ordering::SeqCst);
    }

    /// Counts a call out.
    async fn exit(&self) {
        let mut connection = self.connection.clone();
        let _: i64 = redis::cmd("DECR")
            .arg(PROBE_RUNNING)
            .query_async(&mut connection)
            .await
            .expect("the probe's DECR");
    }
}

#[concurrency_limit(limiter = CAP)]
async fn capped(probe: &Probe, hold: Duration) {
    probe.inside(hold).await;
}

async fn cap_child() {
    let url = env("REDIS_URL");
    let calls: usize = env("LIMIT_FLEET_CALLS").parse().expect("LIMIT_FLEET_CALLS");
    let seed: u64 = env("LIMIT_FLEET_SEED").parse().expect("LIMIT_FLEET_SEED");
    let fleet = Fleet::connect(&url).await.expect("connect");
    fleet.share(&CAP).await.expect("share");
    let mut connection = probe_connection(&url).await;
    let probe = Probe {
        connection: connection.clone(),
        enter: Arc::new(redis::Script::new(PROBE_ENTER)),
        max: Arc::new(AtomicI64::new(0)),
    };
    say("READY");
    wait_for_go();
    let next = Arc::new(AtomicUsize::new(0));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..CAP_TASKS {
        let (probe, next, taken) = (probe.clone(), Arc::clone(&next), Arc::clone(&taken));
        let mut rng = Rng::new(seed * 1000 + task as u64);
        tasks.spawn(async move {
            loop {
                let call = next.fetch_add(1, Ordering::SeqCst);
                if call >= calls {
                    return;
                }
                let hold = Duration::from_millis(rng.between(1, 10));
                match call % 3 {
                    0 => capped(&probe, hold).await,
                    1 => {
                        let _permit = CAP.acquire().await;
                        probe.inside(hold).await;
                    }
                    _ => {
                        let _permit = match CAP.try_acquire() {
                            Ok(permit) => {
                                taken.fetch_add(1, Ordering::SeqCst);
                                permit
                            }
                            Err(_) => CAP.acquire().await,
                        };
                        probe.inside(hold).await;
                    }
                }
            }
        });
    }
    tokio::time::timeout(HANG, async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("a call panicked");
        }
    })
    .await
    .expect("the calls did not finish in time");
    assert_eq!(CAP.in_flight(), 0);
    until_released(&mut connection, &fleet, "cap").await;
    say(&format!(
        "DONE calls={calls} max={} try_acquired={}",
        probe.max.load(Ordering::SeqCst),
        taken.load(Ordering::SeqCst)
    ));
}

/// Shares a limiter of 2 with a 1 s lease (renewed every 300 ms; a recheck of
/// `LIMIT_FLEET_RECHECK_MS`, or 1 s) and takes both permits.
async fn hold_both() -> (Fleet, Arc<Limiter>, OwnedPermit) {
    let url = env("REDIS_URL");
    let name = env("LIMIT_FLEET_NAME");
    let recheck = std::env::var("LIMIT_FLEET_RECHECK_MS").map_or(Duration::from_secs(1), |ms| {
        Duration::from_millis(ms.parse().expect("LIMIT_FLEET_RECHECK_MS"))
    });
    let fleet = Fleet::builder(&url)
        .lease(LEASE)
        .renew_every(Duration::from_millis(300))
        .recheck(recheck)
        .build()
        .await
        .expect("connect");
    let limiter = Arc::new(Limiter::new(2).with_owned_name(name));
    fleet.share_arc(&limiter).await.expect("share");
    let permit = tokio::time::timeout(HANG, Arc::clone(&limiter).acquire_many_owned(2))
        .await
        .expect("both permits");
    say("HELD");
    (fleet, limiter, permit)
}

/// Holds both permits until it is killed.
async fn holder_child() {
    let held = hold_both().await;
    // Until killed (the deadline only bounds a parent that forgot to).
    tokio::time::sleep(HANG).await;
    drop(held);
}

/// Holds both permits, and waits for a third until it is killed.
async fn holder_waiting_child() {
    let (_fleet, limiter, _permit) = hold_both().await;
    // Until killed (the deadline only bounds a parent that forgot to).
    let _ = tokio::time::timeout(HANG, limiter.acquire()).await;
}

/// Holds both permits; once stopped past its lease and continued (then told `GO`), says what
/// it was told of the lost lease, and ends its call.
async fn paused_child() {
    let (fleet, limiter, permit) = hold_both().await;
    wait_for_go();
    let lost = || limiter.stats().fleet.expect("shared").leases_lost;
    let end = tokio::time::Instant::now() + HANG;
    while lost() == 0 && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say(&format!(
        "LOST leases_lost={} running={}",
        lost(),
        limiter.running()
    ));
    drop(permit);
    fleet.flush().await;
    say("DONE");
}

/// Waits for a permit the killed holder had, rechecking every 200 ms.
async fn late_child() {
    let url = env("REDIS_URL");
    let name = env("LIMIT_FLEET_NAME");
    let fleet = Fleet::builder(&url)
        .recheck(RECHECK)
        .build()
        .await
        .expect("connect");
    let limiter = Arc::new(Limiter::new(2).with_owned_name(name.clone()));
    fleet.share_arc(&limiter).await.expect("share");
    let mut connection = probe_connection(&url).await;
    say("READY");
    wait_for_go();
    let start = Instant::now();
    match limiter.try_acquire() {
        Ok(_) => say("NOT BUSY: try_acquire got a permit the dead holder still has"),
        Err(_) => say("BUSY"),
    }
    let permit = tokio::time::timeout(HANG, limiter.acquire())
        .await
        .expect("a permit within the deadline");
    let waited = start.elapsed();
    // The other permit is free too now, without waiting.
    let second = limiter.try_acquire();
    say(&format!(
        "ACQUIRED waited={waited:?} try_acquire={}",
        if second.is_ok() { "granted" } else { "refused" }
    ));
    wait_for_go();
    drop((permit, second));
    until_released(&mut connection, &fleet, &name).await;
    say("DONE");
}

/// Waits in the line for "fifo", then notes its turn in `order`.
async fn fifo_child() {
    let url = env("REDIS_URL");
    let name = env("LIMIT_FLEET_NAME");
    let tag = env("LIMIT_FLEET_TAG");
    let fleet = Fleet::connect(&url).await.expect("connect");
    let limiter = Arc::new(Limiter::new(1).with_owned_name(name.clone()));
    fleet.share_arc(&limiter).await.expect("share");
    let mut connection = probe_connection(&url).await;
    say("READY");
    let permit = tokio::time::timeout(HANG, limiter.acquire())
        .await
        .expect("a permit within the deadline");
    let _: i64 = redis::cmd("RPUSH")
        .arg("order")
        .arg(&tag)
        .query_async(&mut connection)
        .await
        .expect("RPUSH order");
    drop(permit);
    until_released(&mut connection, &fleet, &name).await;
    say(&format!("DONE {tag}"));
}

/// The fleet and limiter (5 permits, a 1 s lease renewed every 300 ms, a recheck of 200 ms)
/// of the restart test, and a probe on `PROBE_URL`.
async fn restart_fleet() -> (Fleet, Arc<Limiter>, Probe) {
    let fleet = Fleet::builder(&env("REDIS_URL"))
        .lease(LEASE)
        .renew_every(Duration::from_millis(300))
        .recheck(RECHECK)
        .build()
        .await
        .expect("connect");
    let limiter = Arc::new(Limiter::new(5).with_owned_name(env("LIMIT_FLEET_NAME")));
    fleet.share_arc(&limiter).await.expect("share");
    let probe = Probe {
        connection: probe_connection(&env("PROBE_URL")).await,
        enter: Arc::new(redis::Script::new(PROBE_ENTER)),
        max: Arc::new(AtomicI64::new(0)),
    };
    (fleet, limiter, probe)
}

/// Takes `LIMIT_FLEET_CALLS` permits, one by one, each counted in by the probe; once told
/// `GO` (after the restart), counts them out, gives them back, and says how many of its
/// leases it registered again.
async fn restart_holder_child() {
    let (fleet, limiter, probe) = restart_fleet().await;
    let calls: usize = env("LIMIT_FLEET_CALLS").parse().expect("LIMIT_FLEET_CALLS");
    let mut permits = Vec::new();
    for _ in 0..calls {
        let permit = tokio::time::timeout(HANG, Arc::clone(&limiter).acquire_owned())
            .await
            .expect("a permit");
        probe.enter().await;
        permits.push(permit);
    }
    let tokens: Vec<_> = permits
        .iter()
        .map(|permit| permit.fencing_token().expect("a lease has a token"))
        .collect();
    let max = tokens.iter().max().expect("a token");
    // Within one epoch, each grant's sequence is one more than the last.
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "{tokens:?}"
    );
    say(&format!("HELD max_sequence={}", max.sequence()));
    say(&format!("EPOCH epoch={}", max.epoch()));
    wait_for_go();
    for permit in permits {
        probe.exit().await;
        drop(permit);
    }
    fleet.flush().await;
    let stats = limiter.stats().fleet.expect("shared");
    say(&format!(
        "DONE reregistered={} lost={}",
        stats.reregistered, stats.leases_lost
    ));
}

/// Waits for one permit (in the server's line across the restart); once admitted, counts
/// itself in with the probe and says its fencing token.
async fn restart_late_child() {
    let (fleet, limiter, probe) = restart_fleet().await;
    say("READY");
    wait_for_go();
    match limiter.try_acquire() {
        Ok(_) => say("NOT BUSY: try_acquire got a permit the holders have"),
        Err(_) => say("BUSY"),
    }
    let permit = tokio::time::timeout(HANG, limiter.acquire())
        .await
        .expect("a permit within the deadline");
    probe.enter().await;
    let token = permit.fencing_token().expect("a lease has a token");
    say(&format!(
        "ACQUIRED epoch={} sequence={}",
        token.epoch(),
        token.sequence()
    ));
    wait_for_go();
    probe.exit().await;
    drop(permit);
    fleet.flush().await;
    say("DONE");
}
