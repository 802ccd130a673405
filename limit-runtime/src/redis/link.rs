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
//! So the permits stay the size they are for a local limiter. (A call's fencing token is the
//! one its grant carried, whichever lease of its weight its end gives back.)
//!
//! **Local admissions** (`OnUnreachable::Local`): while the server cannot be reached, a call
//! may be admitted by this process alone, up to the fallback's limit, and holds no lease.
//! Those permits are given back first when a call of their weight ends, so the process
//! returns to the fleet's count as soon as it can.

use std::collections::HashMap;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use super::driver::{Answer, Handle, Joined, Request, Settle};
use super::scripts::Keys;
use crate::Name;
use crate::backend::{Admission, Ask, Backend, Grant};
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
    /// The limiter's epoch on the server, as last learned (0 before the first reply): every
    /// script is told it, to find a restart that lost the keys (see `lua/preamble.lua`).
    epoch: AtomicU64,
    leases: Mutex<Leases>,
    leases_lost: AtomicU64,
    requeued: AtomicU64,
    reregistered: AtomicU64,
    local_admissions: AtomicU64,
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
    /// Calls admitted locally while the server was unreachable, by weight, and the permits
    /// they hold together.
    local: HashMap<usize, usize>,
    local_held: usize,
}

/// Permits taken from the local fallback for one call: given back when dropped, unless the
/// call is admitted with them ([`keep`](Self::keep)). So an answer that finds its call gone
/// (it gave up meanwhile) gives them back by being dropped.
pub(super) struct LocalSlot {
    link: Arc<LinkState>,
    weight: usize,
}

impl LocalSlot {
    /// `weight` permits of `link`'s local fallback of `limit`, if that many are free.
    pub(super) fn take(link: &Arc<LinkState>, weight: usize, limit: usize) -> Option<Self> {
        let mut leases = lock(&link.leases);
        if leases.local_held + weight > limit {
            return None;
        }
        leases.local_held += weight;
        *leases.local.entry(weight).or_default() += 1;
        Some(Self {
            link: Arc::clone(link),
            weight,
        })
    }

    /// The call is admitted with these permits: they are given back when it ends.
    fn keep(self) -> usize {
        let held = self.link.held.fetch_add(self.weight, SeqCst) + self.weight;
        self.link.local_admissions.fetch_add(1, Relaxed);
        crate::observe::fleet_local_admission(&self.link.name, self.weight);
        std::mem::forget(self);
        held
    }
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        lock(&self.link.leases).unhold_local(self.weight);
    }
}

impl Leases {
    /// Gives back one local admission of `weight`; false if there is none.
    fn unhold_local(&mut self, weight: usize) -> bool {
        match self.local.get_mut(&weight) {
            Some(count) if *count > 0 => {
                *count -= 1;
                self.local_held -= weight;
                true
            }
            _ => false,
        }
    }
}

impl LinkState {
    /// Takes in `{held, limit, epoch}` from a script's reply.
    pub(super) fn learn(&self, (held, limit, epoch): (usize, usize, u64)) {
        self.fleet_held.store(held, Relaxed);
        self.limit.store(limit, Relaxed);
        self.epoch.store(epoch, Relaxed);
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Relaxed)
    }

    /// `count` leases of this process were registered again after a restart.
    pub(super) fn reregistered(&self, count: u64) {
        if count > 0 {
            self.reregistered.fetch_add(count, Relaxed);
            crate::observe::fleet_reregistered(&self.name, count);
        }
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

    /// What a call of `weight` that asked as `member` was told comes to.
    fn admitted(&self, member: String, weight: usize, answer: Answer) -> Option<Grant> {
        let (held, fence) = match answer {
            Answer::Refused => return None,
            Answer::Lease(fence) => (self.hold(member, weight), fence),
            Answer::Local(slot) => (slot.keep(), None),
        };
        Some(Grant { held, fence })
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

    /// A call of `weight` permits ended: the lease to give back, if the server still has one
    /// (and it is not one of the local fallback's admissions, given back first).
    fn unhold(&self, weight: usize) -> Option<String> {
        self.held.fetch_sub(weight, SeqCst);
        let mut leases = lock(&self.leases);
        if leases.unhold_local(weight) {
            return None;
        }
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
            epoch: AtomicU64::new(joined.epoch),
            leases: Mutex::new(Leases::default()),
            leases_lost: AtomicU64::new(0),
            requeued: AtomicU64::new(0),
            reregistered: AtomicU64::new(0),
            local_admissions: AtomicU64::new(0),
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
                Box::new(move |answer| {
                    let _ = settle.send(answer);
                }),
            );
            // The thread ends only when no link is left, and this one lives.
            let answer = answer.await.unwrap_or(Answer::Refused);
            asking.answered();
            drop(door);
            state.admitted(member, weight, answer)
        })
    }

    fn try_admit(&self, weight: usize) -> Option<Grant> {
        // A call that may not wait does not overtake the local line.
        let door = self.state.door.try_acquire().ok()?;
        let (settle, answer) = std::sync::mpsc::sync_channel(1);
        let (asking, member) = Asking::start(
            &self.fleet,
            &self.state,
            weight,
            Ask::Now,
            Box::new(move |answer| {
                let _ = settle.send(answer);
            }),
        );
        // Blocks this thread for one round trip (at most two command timeouts, after which
        // the call gives up, and `asking` cancels whatever it was granted).
        let answer = answer
            .recv_timeout(self.fleet.shared.config.command_timeout * 2)
            .ok()?;
        asking.answered();
        drop(door);
        self.state.admitted(member, weight, answer)
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
            reregistered: self.state.reregistered.load(Relaxed),
            local_admissions: self.state.local_admissions.load(Relaxed),
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
