//! [`Link`]: a shared limiter's [`Backend`], installed in its core by `Fleet::share`. It
//! keeps this process's side of the limiter: the leases its calls hold (renewed by the
//! fleet's thread), the limit and fleet-wide count the server last told it, and the local
//! line's head.
//!
//! **Only the head of the local line talks to the server.** A waiting call first takes the
//! link's `door` (a one-permit FIFO semaphore), and holds it while it asks the server and,
//! if queued there, until it is granted. So each process has at most one waiter in the
//! server's line per limiter, and its other calls wait in FIFO order behind it, here.
//!
//! **Leases are fungible inside a process.** A permit does not remember which lease it is:
//! when a call of weight `w` ends, any lease of weight `w` this process holds is given back.
//! So the permits stay the size they are for a local limiter.

use std::collections::HashMap;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use super::driver::{Handle, Joined, Request, Settle};
use super::scripts::Keys;
use crate::Name;
use crate::backend::{Admission, Ask, Backend};
use crate::stats::SharedStats;

/// What the fleet's thread and the link share: the link's state, without the way to the
/// thread (which a request could not carry without keeping the thread alive).
pub(super) struct LinkState {
    pub(super) name: Name,
    pub(super) keys: Keys,
    /// The limit this process's code gave the limiter.
    pub(super) local_limit: usize,
    /// The fleet's limit, as last learned.
    limit: AtomicUsize,
    /// Permits held by every process together, as last learned.
    fleet_held: AtomicUsize,
    /// Permits held by this process's calls.
    held: AtomicUsize,
    leases: Mutex<Leases>,
    leases_lost: AtomicU64,
    requeued: AtomicU64,
    /// How many `set_limit`s this process made: a failed one is tried again only while it
    /// is the latest.
    limit_generation: AtomicU64,
    /// The head of the local line holds it: see the module docs.
    door: Semaphore,
}

/// This process's leases of one limiter, by weight.
#[derive(Default)]
struct Leases {
    live: HashMap<usize, Vec<String>>,
    /// Leases the server no longer has (expired while their calls ran), by weight: the next
    /// call of that weight to end has nothing to give back.
    lost: HashMap<usize, usize>,
}

impl LinkState {
    /// Takes in `{held, limit}` from a script's reply.
    pub(super) fn learn(&self, (held, limit): (usize, usize)) {
        self.fleet_held.store(held, Relaxed);
        self.limit.store(limit, Relaxed);
    }

    pub(super) fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    pub(super) fn limit_generation(&self) -> u64 {
        self.limit_generation.load(SeqCst)
    }

    /// Every lease this process holds, for the renewal.
    pub(super) fn lease_members(&self) -> Vec<String> {
        lock(&self.leases)
            .live
            .values()
            .flatten()
            .cloned()
            .collect()
    }

    /// The server no longer has `member`: its call runs on without a lease.
    pub(super) fn lose(&self, member: &str) {
        let mut leases = lock(&self.leases);
        let weight = leases.live.iter_mut().find_map(|(weight, members)| {
            let at = members.iter().position(|m| m == member)?;
            members.swap_remove(at);
            Some(*weight)
        });
        if let Some(weight) = weight {
            *leases.lost.entry(weight).or_default() += 1;
            drop(leases);
            self.leases_lost.fetch_add(1, Relaxed);
            crate::observe::fleet_lease_lost(&self.name, weight);
        }
    }

    /// A waiter's place in the server's line expired; it joins again.
    pub(super) fn requeued(&self) {
        self.requeued.fetch_add(1, Relaxed);
    }

    /// A call now holds `member`'s `weight` permits; returns this process's permits held.
    fn hold(&self, member: String, weight: usize) -> usize {
        lock(&self.leases)
            .live
            .entry(weight)
            .or_default()
            .push(member);
        self.held.fetch_add(weight, SeqCst) + weight
    }

    /// A call of `weight` permits ended: the lease to give back, if the server still has one.
    fn unhold(&self, weight: usize) -> Option<String> {
        self.held.fetch_sub(weight, SeqCst);
        let mut leases = lock(&self.leases);
        if let Some(lost) = leases.lost.get_mut(&weight)
            && *lost > 0
        {
            *lost -= 1;
            return None;
        }
        leases.live.get_mut(&weight)?.pop()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A shared limiter's backend. It holds the fleet's [`Handle`], so the fleet's thread lives
/// as long as any shared limiter does.
pub(super) struct Link {
    fleet: Arc<Handle>,
    state: Arc<LinkState>,
}

impl Link {
    pub(super) fn new(
        fleet: Arc<Handle>,
        name: Name,
        local_limit: usize,
        joined: Joined,
    ) -> (Self, Arc<LinkState>) {
        let keys = Keys::new(&fleet.shared.config.prefix, name.as_str());
        let state = Arc::new(LinkState {
            name,
            keys,
            local_limit,
            limit: AtomicUsize::new(joined.limit),
            fleet_held: AtomicUsize::new(joined.held),
            held: AtomicUsize::new(0),
            leases: Mutex::new(Leases::default()),
            leases_lost: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            limit_generation: AtomicU64::new(0),
            door: Semaphore::new(1),
        });
        let link = Self {
            fleet,
            state: Arc::clone(&state),
        };
        (link, state)
    }
}

/// A call that asked the fleet and has no answer yet. Dropped before the answer (the call
/// gave up: dropped, or past its `max_wait`), it cancels: the server takes it out of the
/// line, or takes back what it was granted meanwhile.
struct Asking {
    fleet: Arc<Handle>,
    state: Arc<LinkState>,
    member: Option<String>,
}

impl Asking {
    /// Registers the call's `settle` and sends its request.
    fn start(
        fleet: &Arc<Handle>,
        state: &Arc<LinkState>,
        weight: usize,
        ask: Ask,
        settle: Settle,
    ) -> (Self, String) {
        let member = fleet.shared.member(weight);
        fleet.shared.wait_for(state, &member, settle);
        fleet.send(Request::Acquire {
            link: Arc::clone(state),
            member: member.clone(),
            weight,
            ask,
        });
        let asking = Self {
            fleet: Arc::clone(fleet),
            state: Arc::clone(state),
            member: Some(member.clone()),
        };
        (asking, member)
    }

    /// The answer came: nothing to cancel.
    fn answered(mut self) {
        self.member = None;
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        if let Some(member) = self.member.take() {
            self.fleet.shared.give_up(&member);
            self.fleet.send(Request::Cancel {
                link: Arc::clone(&self.state),
                member,
                returning: self.fleet.shared.returning(),
            });
        }
    }
}

impl Backend for Link {
    fn limit(&self) -> usize {
        self.state.limit()
    }

    fn held(&self) -> usize {
        self.state.held.load(SeqCst)
    }

    fn set_limit(&self, limit: usize) {
        self.state.limit.store(limit, Relaxed);
        let generation = self.state.limit_generation.fetch_add(1, SeqCst) + 1;
        self.fleet.send(Request::SetLimit {
            link: Arc::clone(&self.state),
            limit,
            generation,
        });
    }

    fn admit(&self, weight: usize, ask: Ask) -> Admission {
        let fleet = Arc::clone(&self.fleet);
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let door = if ask == Ask::Now {
                // A call that may not wait does not overtake the local line.
                Some(state.door.try_acquire().ok()?)
            } else {
                // Never closed.
                state.door.acquire().await.ok()
            };
            let (settle, answer) = oneshot::channel();
            let (asking, member) = Asking::start(
                &fleet,
                &state,
                weight,
                ask,
                Box::new(move |granted| {
                    let _ = settle.send(granted);
                }),
            );
            // The thread ends only when no link is left, and this one lives.
            let granted = answer.await.unwrap_or(false);
            asking.answered();
            drop(door);
            granted.then(|| state.hold(member, weight))
        })
    }

    fn try_admit(&self, weight: usize) -> Option<usize> {
        // A call that may not wait does not overtake the local line.
        let door = self.state.door.try_acquire().ok()?;
        let (settle, answer) = std::sync::mpsc::sync_channel(1);
        let (asking, member) = Asking::start(
            &self.fleet,
            &self.state,
            weight,
            Ask::Now,
            Box::new(move |granted| {
                let _ = settle.send(granted);
            }),
        );
        // Blocks this thread for one round trip (at most two command timeouts, after which
        // the call gives up, and `asking` cancels whatever it was granted).
        let answered = answer.recv_timeout(self.fleet.shared.config.command_timeout * 2);
        let granted = answered == Ok(true);
        if answered.is_ok() {
            asking.answered();
        }
        drop(door);
        granted.then(|| self.state.hold(member, weight))
    }

    fn release(&self, weight: usize) {
        if weight == 0 {
            return;
        }
        if let Some(member) = self.state.unhold(weight) {
            self.fleet.send(Request::Release {
                link: Arc::clone(&self.state),
                members: vec![member],
                returning: self.fleet.shared.returning(),
            });
        }
    }

    fn stats(&self) -> SharedStats {
        SharedStats {
            held: self.state.fleet_held.load(Relaxed),
            local_limit: self.state.local_limit,
            leases_lost: self.state.leases_lost.load(Relaxed),
            requeued: self.state.requeued.load(Relaxed),
        }
    }
}

impl Drop for Link {
    /// The limiter is gone (its last `Arc`): its leases go back, and its name is free.
    fn drop(&mut self) {
        let members = self.state.lease_members();
        if !members.is_empty() {
            self.fleet.send(Request::Release {
                link: Arc::clone(&self.state),
                members,
                returning: self.fleet.shared.returning(),
            });
        }
        self.fleet.shared.forget(&self.state);
    }
}
