//! The fleet's thread: one per [`Fleet`](super::Fleet), with a current-thread tokio runtime
//! of its own, so that it outlives whichever runtime connected it and works for callers on
//! any executor (they talk to it through channels alone).
//!
//! It owns the two connections to the server: a multiplexed one for the scripts (redis-rs's
//! `ConnectionManager`, which reconnects by itself), and a pub/sub one on which the scripts
//! tell this fleet that a waiter of its was granted its permits. It runs every script on
//! behalf of the calls, and renews every lease and every waiter of every limiter of the
//! fleet with one pipelined round trip per tick.
//!
//! What makes it safe to lose a message or a connection: every script is idempotent per
//! member (a call's one entry in the server's lists), a call that gives up always sends a
//! `cancel`, and a waiting process asks the server again at every `recheck`, so a lost
//! wake-up costs latency, never a hang.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, RedisResult, Script, ScriptInvocation};
use futures_core::Stream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::link::{LinkState, LocalSlot};
use super::scripts::{FLEET_ID, Keys, SCRIPTS, channel_prefix};
use super::{FencingToken, FleetError, FleetStats, OnUnreachable};
use crate::backend::Ask;
use crate::fence::Fence;

/// A [`FleetBuilder`](super::FleetBuilder)'s settings.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) lease: Duration,
    pub(super) renew_every: Duration,
    pub(super) recheck: Duration,
    pub(super) prefix: String,
    pub(super) key_ttl: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    pub(super) on_unreachable: OnUnreachable,
    /// The server's URL without its password, for messages.
    pub(super) server: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            recheck: Duration::from_secs(1),
            prefix: "limit-runtime".to_owned(),
            key_ttl: Duration::from_hours(24),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            on_unreachable: OnUnreachable::Wait,
            server: String::new(),
        }
    }
}

impl Config {
    pub(super) fn check(&self) -> Result<(), FleetError> {
        let reason = if self.lease < Duration::from_millis(10) {
            "the lease must be at least 10 ms".to_owned()
        } else if self.renew_every.is_zero() || self.renew_every > self.lease / 2 {
            format!(
                "renew_every ({:?}) must be more than 0 and at most half the lease ({:?})",
                self.renew_every, self.lease
            )
        } else if self.recheck.is_zero() {
            "recheck must be more than 0".to_owned()
        } else if self.prefix.is_empty() || self.prefix.contains(['{', '}']) {
            format!(
                "the key prefix {:?} must be non-empty, without `{{` or `}}` (the limiter's \
                 name is the keys' hash tag)",
                self.prefix
            )
        } else if self.key_ttl < self.lease {
            "key_ttl must be at least the lease".to_owned()
        } else {
            return Ok(());
        };
        Err(FleetError::InvalidConfig { reason })
    }

    fn millis(duration: Duration) -> u64 {
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn lease_ms(&self) -> u64 {
        Self::millis(self.lease)
    }
}

/// `url` without the credentials it may carry: its user and password (`user:pass@`), and a
/// `pass` or `password` in its query (where redis-rs reads a unix socket's password).
///
/// A URL that does not parse (or has no `//`) is hidden more bluntly, since its parts cannot be told apart: a
/// password with an unescaped `/`, `?` or `#` is why it does not parse, so everything up to
/// its last `@` goes, and all of it if it has a query.
pub(super) fn redacted(url: &str) -> String {
    // Without `//`, what follows the scheme is an opaque path, where the parser finds no
    // credentials to take out.
    let parsed = url.contains("://").then(|| url::Url::parse(url).ok());
    let Some(Some(mut parsed)) = parsed else {
        let Some((scheme, rest)) = url.split_once("://") else {
            return if url.contains(['@', '?']) {
                "***".to_owned()
            } else {
                url.to_owned()
            };
        };
        return match rest.rfind('@') {
            _ if rest.contains('?') => format!("{scheme}://***"),
            Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        };
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Neither fails on a URL with a host, which one with credentials has.
        let _ = parsed.set_password(None);
        let _ = parsed.set_username("***");
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let secret =
                    key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password");
                (
                    key.into_owned(),
                    if secret {
                        "***".to_owned()
                    } else {
                        value.into_owned()
                    },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.into()
}

/// What a call wants of the fleet's thread.
pub(super) enum Request {
    /// Share a limiter: store its limit unless one is stored, and learn the stored one.
    Join {
        keys: Keys,
        local_limit: usize,
        reply: oneshot::Sender<Result<Joined, FleetError>>,
    },
    /// Take `member`'s permits, or queue for them unless `ask` is `Now`. The answer goes
    /// to the member's waiter (see [`Shared::settle`]).
    Acquire {
        link: Arc<LinkState>,
        member: String,
        weight: usize,
        ask: Ask,
    },
    /// End these leases.
    Release {
        link: Arc<LinkState>,
        members: Vec<String>,
        returning: Returning,
    },
    /// A call gave up: leave the line, or give back what it was granted meanwhile.
    Cancel {
        link: Arc<LinkState>,
        member: String,
        returning: Returning,
    },
    /// Store a new limit: the `generation`th of this process's `set_limit`s.
    SetLimit {
        link: Arc<LinkState>,
        limit: usize,
        generation: u64,
    },
}

/// The fleet's answer to a `Join`: the limit stored in Redis, the permits held there, and
/// the limiter's epoch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Joined {
    pub(super) held: usize,
    pub(super) limit: usize,
    pub(super) epoch: u64,
}

/// What a call that asked for permits is told.
pub(super) enum Answer {
    /// Not admitted: the permits were not free and it asked not to wait, or the server is
    /// unreachable and its settings refuse such calls meanwhile.
    Refused,
    /// It holds a lease, with its fencing token.
    Lease(Fence),
    /// The server is unreachable, and the local fallback admitted it (`OnUnreachable::Local`).
    Local(LocalSlot),
}

/// A call waiting for the fleet's [`Answer`]. An answer that finds nobody is dropped (and a
/// local slot in it given back).
pub(super) type Settle = Box<dyn FnOnce(Answer) + Send>;

struct Waiter {
    link: Weak<LinkState>,
    settle: Settle,
}

/// What the fleet's thread and its callers share.
pub(super) struct Shared {
    pub(super) id: u64,
    pub(super) config: Config,
    /// The channel prefix the scripts publish grants on (they append a fleet's id).
    channel_prefix: String,
    next_member: AtomicU64,
    /// Every call of this fleet that waits for the server's answer, by member.
    waiters: Mutex<HashMap<String, Waiter>>,
    /// Every limiter shared through this fleet, by name: an empty `Weak` while `share` is
    /// under way.
    links: Mutex<HashMap<String, Weak<LinkState>>>,
    pub(super) stats: Counters,
    returns: Arc<Returns>,
}

/// The permits this process gave back (releases and cancellations) that are not yet done
/// with: sent, or tried until their lease would have run out anyway. What
/// [`Fleet::flush`](super::Fleet::flush) waits for.
#[derive(Default)]
struct Returns {
    pending: AtomicUsize,
    done: Notify,
}

/// One pending return, counted from when a call gives its permits back until the request
/// that carries it is done with (or dropped, with the fleet's thread).
pub(super) struct Returning(Arc<Returns>);

impl Drop for Returning {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

#[derive(Default)]
pub(super) struct Counters {
    round_trips: AtomicU64,
    pushes: AtomicU64,
    found_by_renewal: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> FleetStats {
        FleetStats {
            round_trips: self.round_trips.load(Relaxed),
            pushes: self.pushes.load(Relaxed),
            found_by_renewal: self.found_by_renewal.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// A new member for a call of `weight` permits: `<fleet>:<n>:<weight>:<lease ms>`.
    pub(super) fn member(&self, weight: usize) -> String {
        let n = self.next_member.fetch_add(1, Relaxed);
        format!("{}:{n}:{weight}:{}", self.id, self.config.lease_ms())
    }

    /// Counts a return (a `Release` or `Cancel` about to be sent) as pending.
    pub(super) fn returning(&self) -> Returning {
        self.returns.pending.fetch_add(1, SeqCst);
        Returning(Arc::clone(&self.returns))
    }

    /// Waits until no return is pending.
    pub(super) async fn returned(&self) {
        loop {
            let done = self.returns.done.notified();
            let mut done = std::pin::pin!(done);
            // Registered before the check, so a last return ending in between wakes it.
            done.as_mut().enable();
            if self.returns.pending.load(SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }

    /// Registers a call waiting for `member`'s answer.
    pub(super) fn wait_for(&self, link: &Arc<LinkState>, member: &str, settle: Settle) {
        lock(&self.waiters).insert(
            member.to_owned(),
            Waiter {
                link: Arc::downgrade(link),
                settle,
            },
        );
    }

    /// Tells `member`'s call its answer, having counted it in `counter` (first, so that the
    /// call finds it counted); false if it gave up (or was told already).
    fn settle(&self, member: &str, answer: Answer, counter: Option<&AtomicU64>) -> bool {
        let Some(waiter) = lock(&self.waiters).remove(member) else {
            return false;
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Relaxed);
        }
        (waiter.settle)(answer);
        true
    }

    /// The call waiting for `member` gives up; true if it was still waiting.
    pub(super) fn give_up(&self, member: &str) -> bool {
        lock(&self.waiters).remove(member).is_some()
    }

    fn is_waiting(&self, member: &str) -> bool {
        lock(&self.waiters).contains_key(member)
    }

    /// Reserves `name` for a limiter being shared; `None` if another limiter has it, or is
    /// being shared under it (its entry is an empty `Weak` meanwhile).
    pub(super) fn reserve(self: &Arc<Self>, name: &str) -> Option<Reservation> {
        let mut links = lock(&self.links);
        if let Some(link) = links.get(name)
            && (link.strong_count() > 0 || link.ptr_eq(&Weak::new()))
        {
            return None;
        }
        links.insert(name.to_owned(), Weak::new());
        Some(Reservation {
            shared: Arc::clone(self),
            name: name.to_owned(),
            filled: false,
        })
    }

    /// Forgets a dropped limiter, unless its name was shared again meanwhile.
    pub(super) fn forget(&self, link: &Arc<LinkState>) {
        let mut links = lock(&self.links);
        let name = link.name.as_str();
        if links
            .get(name)
            .is_some_and(|of| of.as_ptr() == Arc::as_ptr(link))
        {
            links.remove(name);
        }
    }

    fn live_links(&self) -> Vec<Arc<LinkState>> {
        lock(&self.links)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn has_waiters(&self) -> bool {
        !lock(&self.waiters).is_empty()
    }

    fn round_trip(&self) {
        self.stats.round_trips.fetch_add(1, Relaxed);
    }

    fn failed(&self, what: &str, error: &RedisError) {
        self.stats.errors.fetch_add(1, Relaxed);
        crate::observe::fleet_error(&self.config.server, what, error);
    }
}

/// A name held for a limiter while `share` runs; released unless filled.
pub(super) struct Reservation {
    shared: Arc<Shared>,
    name: String,
    filled: bool,
}

impl Reservation {
    pub(super) fn fill(mut self, link: &Arc<LinkState>) {
        lock(&self.shared.links).insert(self.name.clone(), Arc::downgrade(link));
        self.filled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.filled {
            lock(&self.shared.links).remove(&self.name);
        }
    }
}

/// What a [`Fleet`](super::Fleet) and its shared limiters hold: the way to the thread. When
/// the last one is dropped, the thread finishes what it was asked and ends.
pub(super) struct Handle {
    pub(super) shared: Arc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Handle {
    pub(super) fn send(&self, request: Request) {
        // The thread ends only once every sender is dropped, and this is one.
        let _ = self.requests.send(request);
    }

    /// Joins limiter `name`'s keys; see [`Request::Join`].
    pub(super) async fn join(&self, name: &str, local_limit: usize) -> Result<Joined, FleetError> {
        let (reply, joined) = oneshot::channel();
        self.send(Request::Join {
            keys: Keys::new(&self.shared.config.prefix, name),
            local_limit,
            reply,
        });
        joined.await.unwrap_or_else(|_| Err(thread_ended()))
    }
}

fn thread_ended() -> FleetError {
    FleetError::Redis {
        source: "the fleet's thread ended".into(),
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// Starts the fleet's thread, which connects, and waits for it to have connected.
pub(super) async fn start(client: Client, config: Config) -> Result<Handle, FleetError> {
    let (started, connected) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("limit-runtime-fleet".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = started.send(Err(FleetError::Redis {
                        source: error.into(),
                    }));
                    return;
                }
            };
            runtime.block_on(async move {
                match connect(&client, config).await {
                    Ok((connection, pubsub, shared)) => {
                        let (requests, inbox) = mpsc::unbounded_channel();
                        let handle = Handle {
                            shared: Arc::clone(&shared),
                            requests,
                        };
                        if started.send(Ok(handle)).is_ok() {
                            run(shared, connection, client, pubsub, inbox).await;
                        }
                    }
                    Err(error) => {
                        let _ = started.send(Err(error));
                    }
                }
            });
        });
    if let Err(error) = thread {
        return Err(FleetError::Redis {
            source: error.into(),
        });
    }
    connected.await.unwrap_or_else(|_| Err(thread_ended()))
}

/// Connects to the server, gets this fleet's id from it, loads the scripts and subscribes
/// to the fleet's channel.
async fn connect(
    client: &Client,
    config: Config,
) -> Result<(ConnectionManager, ::redis::aio::PubSub, Arc<Shared>), FleetError> {
    let unreachable = |error: RedisError| FleetError::Unreachable {
        url: config.server.clone(),
        source: error.into(),
    };
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_number_of_retries(1);
    let mut connection = tokio::time::timeout(
        config.connect_timeout,
        ConnectionManager::new_with_config(client.clone(), manager),
    )
    .await
    .map_err(|_| FleetError::Unreachable {
        url: config.server.clone(),
        source: "connect timed out".into(),
    })?
    .map_err(unreachable)?;
    let id: u64 = FLEET_ID
        .key(format!("{}:fleets", config.prefix))
        .invoke_async(&mut connection)
        .await
        .map_err(unreachable)?;
    for script in SCRIPTS.all() {
        script
            .prepare_invoke()
            .load_async(&mut connection)
            .await
            .map_err(unreachable)?;
    }
    let channel = format!("{}{id}", channel_prefix(&config.prefix));
    let pubsub = subscribe(client, &channel, config.connect_timeout)
        .await
        .map_err(unreachable)?;
    let shared = Arc::new(Shared {
        id,
        channel_prefix: channel_prefix(&config.prefix),
        config,
        next_member: AtomicU64::new(0),
        waiters: Mutex::new(HashMap::new()),
        links: Mutex::new(HashMap::new()),
        stats: Counters::default(),
        returns: Arc::default(),
    });
    Ok((connection, pubsub, shared))
}

async fn subscribe(
    client: &Client,
    channel: &str,
    timeout: Duration,
) -> RedisResult<::redis::aio::PubSub> {
    let subscribing = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    };
    tokio::time::timeout(timeout, subscribing)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        })
}

/// The thread's loop: requests as they come, and a renewal at every tick, until every
/// [`Handle`] is dropped; then it finishes the scripts under way.
async fn run(
    shared: Arc<Shared>,
    connection: ConnectionManager,
    client: Client,
    pubsub: ::redis::aio::PubSub,
    mut inbox: mpsc::UnboundedReceiver<Request>,
) {
    let resubscribed = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(
        Arc::clone(&shared),
        client,
        pubsub,
        Arc::clone(&resubscribed),
    ));
    let mut tasks = JoinSet::new();
    let mut jitter = Jitter::new(shared.id);
    let mut next_tick = Instant::now() + shared.config.renew_every;
    let mut renewed = Instant::now();
    loop {
        let renew = tokio::select! {
            request = inbox.recv() => {
                let Some(first) = request else { break };
                let mut batch = vec![first];
                while let Ok(request) = inbox.try_recv() {
                    batch.push(request);
                }
                dispatch(&shared, &connection, &mut tasks, batch);
                false
            }
            // A tick set for a waiter that has been answered since (admitted at once, say)
            // renews nothing early: a process without waiters renews every `renew_every`.
            () = tokio::time::sleep_until(next_tick) => {
                shared.has_waiters() || renewed.elapsed() >= shared.config.renew_every
            }
            () = resubscribed.notified() => true,
        };
        // A waiting process asks at every `recheck`; one that only holds, at every renewal.
        // Never less often than the renewal: its leases (and its waiters' places) would
        // expire under a `recheck` longer than the lease.
        let period = if shared.has_waiters() {
            jitter
                .around(shared.config.recheck)
                .min(shared.config.renew_every)
        } else {
            shared.config.renew_every
        };
        if renew {
            tasks.spawn(renew_all(Arc::clone(&shared), connection.clone()));
            renewed = Instant::now();
            next_tick = renewed + period;
        } else if Instant::now() >= next_tick {
            next_tick = renewed + period;
        } else {
            next_tick = next_tick.min(Instant::now() + period);
        }
        while tasks.try_join_next().is_some() {}
    }
    listener.abort();
    // What was asked last (the releases of a dropped limiter) still goes out.
    let _ = tokio::time::timeout(shared.config.command_timeout * 2, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Spawns a task per request, in order (so the server sees them in order, on the one
/// multiplexed connection), with the releases of each limiter coalesced into one script and
/// sent first: an acquire in the same batch then finds the permits they free.
fn dispatch(
    shared: &Arc<Shared>,
    connection: &ConnectionManager,
    tasks: &mut JoinSet<()>,
    batch: Vec<Request>,
) {
    let mut releases: Vec<(Arc<LinkState>, Vec<String>, Vec<Returning>)> = Vec::new();
    let mut others = Vec::new();
    for request in batch {
        match request {
            Request::Release {
                link,
                members,
                returning,
            } => match releases.iter_mut().find(|(l, ..)| Arc::ptr_eq(l, &link)) {
                Some((_, all, returns)) => {
                    all.extend(members);
                    returns.push(returning);
                }
                None => releases.push((link, members, vec![returning])),
            },
            other => others.push(other),
        }
    }
    for (link, members, returns) in releases {
        let release = release(Arc::clone(shared), connection.clone(), link, members);
        tasks.spawn(async move {
            release.await;
            drop(returns);
        });
    }
    for request in others {
        let shared = Arc::clone(shared);
        let connection = connection.clone();
        match request {
            // Sent above.
            Request::Release { .. } => {}
            Request::Join {
                keys,
                local_limit,
                reply,
            } => {
                tasks.spawn(async move {
                    let _ = reply.send(join(&shared, connection, &keys, local_limit).await);
                });
            }
            Request::Acquire {
                link,
                member,
                weight,
                ask,
            } => {
                tasks.spawn(acquire(shared, connection, link, member, weight, ask));
            }
            Request::Cancel {
                link,
                member,
                returning,
            } => {
                tasks.spawn(async move {
                    cancel(shared, connection, link, member).await;
                    drop(returning);
                });
            }
            Request::SetLimit {
                link,
                limit,
                generation,
            } => {
                tasks.spawn(set_limit(shared, connection, link, limit, generation));
            }
        }
    }
}

/// How long to wait before trying a failed round trip again: 50 ms, doubling to 1 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(50))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(1));
    }
}

/// `{held, limit, epoch}` from the end of a script's reply, clamped to what they can be.
fn counts(held: i64, limit: i64, epoch: i64) -> (usize, usize, u64) {
    let count = |n: i64| usize::try_from(n.max(0)).unwrap_or(usize::MAX);
    (count(held), count(limit), u64::try_from(epoch).unwrap_or(0))
}

/// An invocation of `script` on `keys`, with the arguments every script takes first (see
/// `lua/preamble.lua`): the epoch this process knows, its lease (the quiet period after a
/// restart), and the limit to store if the server has none. The script's own follow.
fn invoke(
    script: &'static Script,
    shared: &Shared,
    keys: &Keys,
    epoch: u64,
    restore: usize,
) -> ScriptInvocation<'static> {
    let mut invocation = script.prepare_invoke();
    invocation
        .key(&keys.0[..])
        .arg(epoch)
        .arg(shared.config.lease_ms())
        .arg(restore);
    invocation
}

/// [`invoke`] for a shared limiter: its epoch, and the fleet's limit as last learned, which
/// a restart that lost the keys gets back.
fn invoke_on(
    script: &'static Script,
    shared: &Shared,
    link: &LinkState,
) -> ScriptInvocation<'static> {
    invoke(script, shared, &link.keys, link.epoch(), link.limit())
}

/// A fencing token from a script's numbers (a sequence of 0 is none).
fn token(epoch: u64, sequence: i64) -> Fence {
    FencingToken::from_parts(epoch, u64::try_from(sequence).unwrap_or(0))
}

async fn join(
    shared: &Shared,
    mut connection: ConnectionManager,
    keys: &Keys,
    local_limit: usize,
) -> Result<Joined, FleetError> {
    shared.round_trip();
    // A limiter this process has not shared before: it knows no epoch, and its code's limit
    // is stored if none is.
    let mut invocation = invoke(&SCRIPTS.join, shared, keys, 0, local_limit);
    invocation.arg(Config::millis(shared.config.key_ttl));
    let (held, limit, epoch): (i64, i64, i64) = invocation
        .invoke_async(&mut connection)
        .await
        .map_err(|error| FleetError::Redis {
            source: error.into(),
        })?;
    let (held, limit, epoch) = counts(held, limit, epoch);
    Ok(Joined { held, limit, epoch })
}

async fn acquire(
    shared: Arc<Shared>,
    mut connection: ConnectionManager,
    link: Arc<LinkState>,
    member: String,
    weight: usize,
    ask: Ask,
) {
    let mut backoff = Backoff::new();
    // Asked again until answered: the script is idempotent per member. Not once the call
    // gave up: its `cancel` follows (or went before) this on the same connection.
    while shared.is_waiting(&member) {
        shared.round_trip();
        let mut invocation = invoke_on(&SCRIPTS.acquire, &shared, &link);
        invocation
            .arg(&member)
            .arg(weight)
            .arg(u8::from(ask != Ask::Now))
            .arg(shared.config.lease_ms())
            .arg(&shared.channel_prefix);
        let reply: RedisResult<(i64, i64, i64, i64, i64)> =
            invocation.invoke_async(&mut connection).await;
        match reply {
            Ok((status, fence, held, limit, epoch)) => {
                let counts = counts(held, limit, epoch);
                link.learn(counts);
                match status {
                    1 => {
                        shared.settle(&member, Answer::Lease(token(counts.2, fence)), None);
                    }
                    0 => {
                        shared.settle(&member, Answer::Refused, None);
                    }
                    // Queued: a grant will come through pub/sub, or a renewal will find it.
                    _ => {}
                }
                return;
            }
            Err(error) => {
                shared.failed("acquire", &error);
                let answer = match (ask, shared.config.on_unreachable) {
                    (_, OnUnreachable::Local(limit)) => {
                        match LocalSlot::take(&link, weight, limit) {
                            Some(slot) => Some(Answer::Local(slot)),
                            None if ask == Ask::Now => Some(Answer::Refused),
                            None => None,
                        }
                    }
                    (Ask::Now, _) | (Ask::WaitOrRefuse, OnUnreachable::Refuse) => {
                        Some(Answer::Refused)
                    }
                    _ => None,
                };
                if let Some(answer) = answer {
                    shared.settle(&member, answer, None);
                    // Its effect is unknown: make sure it holds nothing on the server.
                    let invocation = cancel_of(&shared, &link, &member);
                    run_until_done(&shared, connection, &link, "cancel", &invocation, || false)
                        .await;
                    return;
                }
                backoff.wait().await;
            }
        }
    }
}

/// Runs `invocation` until the server answers, backing off between failures for as long
/// as `keep_trying` says, and takes in the `{…, held, limit, epoch}` that ends its reply.
async fn run_until_done(
    shared: &Shared,
    mut connection: ConnectionManager,
    link: &LinkState,
    what: &str,
    invocation: &ScriptInvocation<'_>,
    keep_trying: impl Fn() -> bool,
) {
    let mut backoff = Backoff::new();
    loop {
        shared.round_trip();
        match invocation.invoke_async::<Vec<i64>>(&mut connection).await {
            Ok(reply) => {
                if let [.., held, limit, epoch] = reply[..] {
                    link.learn(counts(held, limit, epoch));
                }
                return;
            }
            Err(error) => {
                shared.failed(what, &error);
                if !keep_trying() {
                    return;
                }
                backoff.wait().await;
            }
        }
    }
}

/// The `cancel` of `member`: idempotent, so it may be sent whatever happened before.
fn cancel_of(shared: &Shared, link: &LinkState, member: &str) -> ScriptInvocation<'static> {
    let mut invocation = invoke_on(&SCRIPTS.cancel, shared, link);
    invocation.arg(member).arg(&shared.channel_prefix);
    invocation
}

async fn cancel(
    shared: Arc<Shared>,
    connection: ConnectionManager,
    link: Arc<LinkState>,
    member: String,
) {
    // Tried until done, or until the lease would have expired anyway.
    let deadline = Instant::now() + shared.config.lease;
    let invocation = cancel_of(&shared, &link, &member);
    run_until_done(&shared, connection, &link, "cancel", &invocation, || {
        Instant::now() < deadline
    })
    .await;
}

async fn release(
    shared: Arc<Shared>,
    connection: ConnectionManager,
    link: Arc<LinkState>,
    members: Vec<String>,
) {
    let deadline = Instant::now() + shared.config.lease;
    let mut invocation = invoke_on(&SCRIPTS.release, &shared, &link);
    invocation.arg(&shared.channel_prefix).arg(&members);
    run_until_done(&shared, connection, &link, "release", &invocation, || {
        Instant::now() < deadline
    })
    .await;
}

async fn set_limit(
    shared: Arc<Shared>,
    connection: ConnectionManager,
    link: Arc<LinkState>,
    limit: usize,
    generation: u64,
) {
    let mut invocation = invoke_on(&SCRIPTS.set_limit, &shared, &link);
    invocation.arg(limit).arg(&shared.channel_prefix);
    // Until a newer `set_limit` of this process supersedes it.
    run_until_done(&shared, connection, &link, "set_limit", &invocation, || {
        link.limit_generation() == generation
    })
    .await;
}

/// One renewal's reply for one limiter: `{held, limit, epoch, lost, granted (member and
/// fencing number, in turn), gone, registered again}`.
type Renewed = (i64, i64, i64, Vec<String>, Vec<String>, Vec<String>, i64);

/// Renews every lease and every waiter of every limiter of the fleet, in one pipelined
/// round trip, and acts on what the server says: the limit and the count held, leases lost,
/// grants whose message was lost, and waiters whose place expired (they join the line
/// again).
async fn renew_all(shared: Arc<Shared>, mut connection: ConnectionManager) {
    let waiting: Vec<(String, Weak<LinkState>)> = lock(&shared.waiters)
        .iter()
        .map(|(member, waiter)| (member.clone(), waiter.link.clone()))
        .collect();
    let mut work: Vec<(Arc<LinkState>, Vec<String>, Vec<String>)> = Vec::new();
    for link in shared.live_links() {
        let leases = link.lease_members();
        let waiters: Vec<String> = waiting
            .iter()
            .filter(|(_, of)| of.as_ptr() == Arc::as_ptr(&link))
            .map(|(member, _)| member.clone())
            .collect();
        // An idle limiter is asked too: that is how its process learns a limit set elsewhere
        // within one renewal interval.
        work.push((link, leases, waiters));
    }
    if work.is_empty() {
        return;
    }
    let mut pipe = ::redis::pipe();
    for (link, leases, waiters) in &work {
        let mut invocation = invoke_on(&SCRIPTS.renew, &shared, link);
        invocation
            .arg(Config::millis(shared.config.lease))
            .arg(&shared.channel_prefix)
            .arg(Config::millis(shared.config.key_ttl))
            .arg(leases.len())
            .arg(leases)
            .arg(waiters);
        pipe.invoke_script(&invocation);
    }
    shared.round_trip();
    let mut replies: RedisResult<Vec<Renewed>> = pipe.query_async(&mut connection).await;
    if replies.as_ref().is_err_and(|error| {
        error.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript)
    }) {
        // The server restarted: load the scripts again, and renew once more.
        for script in SCRIPTS.all() {
            let _ = script.prepare_invoke().load_async(&mut connection).await;
        }
        shared.round_trip();
        replies = pipe.query_async(&mut connection).await;
    }
    let replies = match replies {
        Ok(replies) => replies,
        Err(error) => {
            shared.failed("renew", &error);
            admit_locally(&shared, &connection, waiting);
            return;
        }
    };
    for ((link, _, _), (held, limit, epoch, lost, granted, gone, again)) in
        work.into_iter().zip(replies)
    {
        let counts = counts(held, limit, epoch);
        link.learn(counts);
        link.reregistered(u64::try_from(again).unwrap_or(0));
        for member in lost {
            link.lose(&member);
        }
        for pair in granted.chunks(2) {
            if let [member, fence] = pair {
                let fence = token(counts.2, fence.parse().unwrap_or(0));
                shared.settle(
                    member,
                    Answer::Lease(fence),
                    Some(&shared.stats.found_by_renewal),
                );
            }
        }
        for member in gone {
            // Its place expired while it waited (the fleet was cut off): it joins the line
            // again, at the back, as the same member.
            link.requeued();
            let weight = member_weight(&member);
            let connection = connection.clone();
            tokio::spawn(acquire(
                Arc::clone(&shared),
                connection,
                Arc::clone(&link),
                member,
                weight,
                Ask::Wait,
            ));
        }
    }
}

/// The server could not be reached for a renewal: under `OnUnreachable::Local`, the calls
/// waiting in its line (one per limiter: the head of each local line) are admitted locally
/// while there is room, and their places cancelled, as a call that asks meanwhile is.
fn admit_locally(
    shared: &Arc<Shared>,
    connection: &ConnectionManager,
    waiting: Vec<(String, Weak<LinkState>)>,
) {
    let OnUnreachable::Local(limit) = shared.config.on_unreachable else {
        return;
    };
    for (member, link) in waiting {
        let Some(link) = link.upgrade() else { continue };
        let Some(slot) = LocalSlot::take(&link, member_weight(&member), limit) else {
            continue;
        };
        if shared.settle(&member, Answer::Local(slot), None) {
            tokio::spawn(cancel(Arc::clone(shared), connection.clone(), link, member));
        }
    }
}

/// The weight a member carries (`<fleet>:<n>:<weight>:<lease>`).
fn member_weight(member: &str) -> usize {
    member
        .rsplit(':')
        .nth(1)
        .and_then(|weight| weight.parse().ok())
        .unwrap_or(0)
}

/// Reads grants from the fleet's channel, and subscribes again whenever the connection
/// drops. After every (re)subscription the loop renews at once: a grant published while
/// nobody listened is found that way.
async fn listen(
    shared: Arc<Shared>,
    client: Client,
    pubsub: ::redis::aio::PubSub,
    resubscribed: Arc<Notify>,
) {
    let channel = format!("{}{}", shared.channel_prefix, shared.id);
    let mut pubsub = Some(pubsub);
    let mut backoff = Backoff::new();
    loop {
        let current = match pubsub.take() {
            Some(current) => current,
            None => match subscribe(&client, &channel, shared.config.connect_timeout).await {
                Ok(current) => {
                    backoff = Backoff::new();
                    resubscribed.notify_one();
                    current
                }
                Err(error) => {
                    shared.failed("subscribe", &error);
                    backoff.wait().await;
                    continue;
                }
            },
        };
        let mut messages = current.into_on_message();
        while let Some(message) =
            std::future::poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await
        {
            // "member epoch sequence": the grant and its fencing token.
            if let Ok(payload) = message.get_payload::<String>() {
                let mut parts = payload.split(' ');
                let member = parts.next().unwrap_or_default();
                let mut number = || parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let (epoch, sequence) = (number(), number());
                let fence = FencingToken::from_parts(epoch, sequence);
                shared.settle(member, Answer::Lease(fence), Some(&shared.stats.pushes));
            }
        }
    }
}

/// Spreads the rechecks of the processes of a fleet over ±25% of the period, so that they do
/// not all ask at once. Seeded by the fleet's id (xorshift: no `rand` needed for this).
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn around(&mut self, period: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // 75% to 125% of the period, in 1/1024ths.
        let factor = 768 + u32::try_from(self.0 % 513).unwrap_or(0);
        period * factor / 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redacted("rediss://:secret@host/"), "rediss://***@host/");
        assert_eq!(redacted("redis://host:6379/"), "redis://host:6379/");
        assert_eq!(redacted("not a url"), "not a url");
        assert_eq!(
            redacted("redis+unix:///run/redis.sock?db=1&pass=secret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        // Does not parse (the password's `/`): all up to the last `@` goes.
        assert_eq!(
            redacted("redis://user:sec/ret@host:notaport/"),
            "redis://***@host:notaport/"
        );
        assert_eq!(redacted("redis://u:se?cret@host:x/"), "redis://***");
        assert_eq!(redacted("u:secret@host"), "***");
    }

    #[test]
    fn a_member_carries_its_weight() {
        assert_eq!(member_weight("7:42:3:30000"), 3);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let mut jitter = Jitter::new(5);
        for _ in 0..1000 {
            let d = jitter.around(Duration::from_secs(1));
            assert!(
                d >= Duration::from_millis(750) && d <= Duration::from_millis(1250),
                "{d:?}"
            );
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let check = |config: Config| config.check().map_err(|error| error.to_string());
        assert!(check(Config::default()).is_ok());
        let half = Config {
            renew_every: Duration::from_secs(16),
            ..Config::default()
        };
        assert!(check(half).unwrap_err().contains("at most half the lease"));
        let braces = Config {
            prefix: "a{b".to_owned(),
            ..Config::default()
        };
        assert!(check(braces).unwrap_err().contains("without `{` or `}`"));
    }
}
