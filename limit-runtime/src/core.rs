//! [`Core`]: the state of one limit, shared by every handle to it. A [`Limiter`] creates its
//! core at its first use, and the registry keeps a weak reference to it, so a limiter that
//! is dropped takes its core (and its registry entry) with it.
//!
//! Calls reach the core only through the methods here (`enter`, `admitted`, `refused`,
//! `released`, `exit`): `call.rs` writes no atomics of its own, and knows nothing of the
//! registry. A fleet-wide limit plugs in behind these same methods, as a [`Backend`]
//! (`backend.rs`), with the `redis` feature.
//!
//! [`Limiter`]: crate::Limiter
//! [`Backend`]: crate::backend::Backend

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::adaptive::Bounds;
use crate::adaptive::controller::Reason;
use crate::adaptive::state::{Change, Stamp, State};
#[cfg(feature = "redis")]
use crate::backend::Backend;
use crate::error::LimitError;
use crate::gate::Gate;
use crate::in_flight::InFlight;
use crate::keyed::{Keys, Slot};
use crate::name::Name;
use crate::observe::{self, Observed, WaitObservation};
use crate::registry;
use crate::stats::Stats;

// Aligned to two cache lines (the unit that x86 prefetches together): two cores allocated
// side by side must not share a line, or two threads calling two independently limited
// functions slow each other down (the end of one, read by every call, next to the start of
// the next, written by every call).
#[repr(align(128))]
pub struct Core {
    name: Name,
    /// The core's key in the registry.
    pub(crate) id: u64,
    gate: Gate,
    keys: OnceLock<Keys>,
    /// Serializes `set_limit`, so that the gate and every key end at the same limit when two
    /// resizes race.
    resize: Mutex<()>,
    /// Calls of all keys holding a permit (the gate counts the others).
    keyed_running: AtomicUsize,
    peak_running: AtomicUsize,
    admitted: AtomicU64,
    rejected: AtomicU64,
    in_flight: InFlight,
    /// The controller of an adaptive limiter (`Limiter::adaptive`), which moves the gate's
    /// limit; `None` for a fixed limit. Boxed: a fixed limit's core pays one pointer.
    adaptive: Option<Box<State>>,
    /// What the `metrics` feature keeps (the limiter's metric keys); zero-sized without it,
    /// and then never read.
    #[cfg_attr(not(feature = "metrics"), expect(dead_code))]
    pub(crate) observed: Observed,
    /// Where the limiter's own (unkeyed) permits come from once it is shared; its gate is
    /// parked then. Set once, by `share`.
    #[cfg(feature = "redis")]
    backend: OnceLock<std::sync::Arc<dyn Backend>>,
}

impl Core {
    pub(crate) fn new(name: Name, id: u64, limit: usize, adaptive: Option<Bounds>) -> Self {
        // An adaptive limit starts at its `initial`, whatever `limit` says.
        let limit = adaptive.map_or(limit, |bounds| bounds.initial);
        Self {
            name,
            id,
            gate: Gate::new(limit),
            keys: OnceLock::new(),
            resize: Mutex::new(()),
            keyed_running: AtomicUsize::new(0),
            peak_running: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            in_flight: InFlight::new(),
            adaptive: adaptive.map(|bounds| Box::new(State::new(bounds))),
            observed: Observed::new(),
            #[cfg(feature = "redis")]
            backend: OnceLock::new(),
        }
    }

    /// The backend of a shared limiter, which its unkeyed calls use instead of the gate.
    #[cfg(feature = "redis")]
    #[inline]
    pub(crate) fn backend(&self) -> Option<&dyn Backend> {
        self.backend.get().map(|backend| &**backend)
    }

    /// Makes `backend` the source of this limiter's permits, if it has none yet, is not
    /// adaptive, and no call of it is in flight: its gate is parked (limit 0), so the fast
    /// path closes. `Err` says which condition failed.
    ///
    /// A call made at the same moment on another thread can still take a permit of the gate
    /// before it is parked; the docs say to share a limiter before its first call.
    #[cfg(feature = "redis")]
    pub(crate) fn share(&self, backend: std::sync::Arc<dyn Backend>) -> Result<(), Unshareable> {
        let _serial = self.resize.lock().unwrap_or_else(PoisonError::into_inner);
        if self.backend.get().is_some() {
            return Err(Unshareable::Shared);
        }
        if self.adaptive.is_some() {
            return Err(Unshareable::Adaptive);
        }
        if self.in_flight() != 0 || self.gate.held() != 0 || self.waiting() != 0 {
            return Err(Unshareable::InUse);
        }
        self.backend.set(backend).map_err(|_| Unshareable::Shared)?;
        self.gate.set_limit(0);
        Ok(())
    }

    pub(crate) fn name(&self) -> &Name {
        &self.name
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    pub(crate) fn limit(&self) -> usize {
        #[cfg(feature = "redis")]
        if let Some(backend) = self.backend() {
            return backend.limit();
        }
        self.gate.limit()
    }

    /// Permits held by this process's unkeyed calls.
    fn held(&self) -> usize {
        #[cfg(feature = "redis")]
        if let Some(backend) = self.backend() {
            return backend.held();
        }
        self.gate.held()
    }

    pub(crate) fn running(&self) -> usize {
        self.held() + self.keyed_running.load(SeqCst)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.gate.waiting() + self.keys.get().map_or(0, Keys::waiting)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.snapshot().in_flight as usize
    }

    pub(crate) fn counter(&self) -> &InFlight {
        &self.in_flight
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            name: self.name.clone(),
            limit: self.limit(),
            running: self.running(),
            waiting: self.waiting(),
            in_flight: self.in_flight(),
            admitted: self.admitted.load(SeqCst),
            rejected: self.rejected.load(SeqCst),
            peak_running: self.peak_running.load(SeqCst),
            active_keys: self.keys.get().map_or(0, Keys::active),
            #[cfg(feature = "redis")]
            fleet: self.backend().map(Backend::stats),
            #[cfg(not(feature = "redis"))]
            fleet: None,
            adaptive: self.adaptive.as_deref().map(State::stats),
        }
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        let _serial = self.resize.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keys) = self.keys.get() {
            keys.set_limit(limit);
        }
        // An adaptive limit's controller goes on from the limit set, and its gate changes
        // under the controller's lock, as its own changes do. (Never shared: see `share`.)
        if let Some(adaptive) = self.adaptive.as_deref() {
            let from = self.gate.limit();
            adaptive.set_limit(limit, |limit| self.gate.set_limit(limit));
            observe::limit_changed(
                self,
                false,
                Change {
                    from,
                    to: limit,
                    reason: Reason::SetLimit,
                },
            );
            return;
        }
        // A shared limiter's own gate stays parked: the backend holds its limit.
        #[cfg(feature = "redis")]
        if let Some(backend) = self.backend() {
            backend.set_limit(limit);
            observe::limit_set(self, limit);
            return;
        }
        self.gate.set_limit(limit);
        observe::limit_set(self, limit);
    }

    /// The controller of an adaptive limit, for a call of `slot` (a key's, which adapts on
    /// its own) or of the limiter itself.
    #[inline]
    pub(crate) fn adaptive<'a>(&'a self, slot: Option<&'a Slot>) -> Option<&'a State> {
        match slot {
            Some(slot) => slot.adaptive(),
            None => self.adaptive.as_deref(),
        }
    }

    /// An adaptive limit's bounds, for a handle made from the core (`Limiter::from_core`).
    pub(crate) fn bounds(&self) -> Option<Bounds> {
        self.adaptive.as_deref().map(State::bounds)
    }

    /// Whether the limit is adaptive.
    #[cfg(feature = "redis")]
    pub(crate) fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// The sample of an adaptive call of `slot` (or of the limiter), stamped as its body
    /// started, whose body just returned: the controller may move the gate's limit. Out of
    /// line, as `Admitted::stamp` is (`call.rs`).
    #[inline(never)]
    pub(crate) fn sample(&self, slot: Option<&Slot>, stamp: Stamp, overloaded: bool) {
        let Some(state) = self.adaptive(slot) else {
            return;
        };
        let gate = slot.map_or(&self.gate, |slot| &slot.gate);
        if let Some(change) = state.sample(stamp, overloaded, |limit| gate.set_limit(limit)) {
            observe::limit_changed(self, slot.is_some(), change);
        }
    }

    /// Counts a call as in flight: from now until [`exit`](Self::exit).
    #[inline]
    pub(crate) fn enter(&self) {
        self.in_flight.enter(&registry::BUSY_LIMITERS);
    }

    /// [`enter`](Self::enter), for a call of `key`: its slot, created with the limiter's
    /// limit if the key has no call in flight.
    pub(crate) fn enter_keyed<K>(&self, key: K) -> std::sync::Arc<Slot>
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
    {
        let keys = self.keys.get_or_init(Keys::default);
        let slot = keys.enter(key, || self.limit(), self.adaptive.as_deref());
        self.enter();
        slot
    }

    /// Ends a call that [`enter`](Self::enter) counted, and its key's, if it has one.
    #[inline]
    pub(crate) fn exit(&self, slot: Option<&Slot>) {
        if let Some(slot) = slot
            && let Some(keys) = self.keys.get()
        {
            keys.exit(slot);
        }
        self.in_flight.exit(&registry::BUSY_LIMITERS);
    }

    /// Counts a call that was just given its `weight` permits. `held` is the count of permits
    /// its gate held right after; `keyed`, whether that gate is a key's; `wait`, its wait, if
    /// it had to.
    #[inline]
    pub(crate) fn admitted(
        &self,
        held: usize,
        keyed: bool,
        weight: usize,
        wait: Option<WaitObservation>,
    ) {
        // A keyed call's gate is its key's; the limiter counts all keys' permits together.
        // Only keyed calls pay for that count.
        let running = if keyed {
            self.keyed_running.fetch_add(weight, SeqCst) + weight + self.held()
        } else {
            held + self.keyed_running.load(Relaxed)
        };
        if running > self.peak_running.load(Relaxed) {
            self.peak_running.fetch_max(running, Relaxed);
        }
        self.admitted.fetch_add(1, Relaxed);
        observe::admitted(self, wait);
    }

    /// Counts a call that gives its `weight` permits back to `gate` (its own, or its key's).
    #[inline]
    pub(crate) fn released(&self, gate: &Gate, keyed: bool, weight: usize) {
        if keyed {
            self.keyed_running.fetch_sub(weight, SeqCst);
        } else {
            #[cfg(feature = "redis")]
            if let Some(backend) = self.backend() {
                backend.release(weight);
                observe::released(self);
                return;
            }
        }
        if weight != 0 {
            gate.release(weight);
        }
        observe::released(self);
    }

    /// Counts a call refused at `gate`, and returns its error, made by `variant` from the
    /// name and the limit.
    pub(crate) fn refusal(
        &self,
        gate: &Gate,
        variant: impl FnOnce(Name, usize) -> LimitError,
    ) -> LimitError {
        // A shared limiter's own gate is parked: its limit is the backend's.
        let limit = if std::ptr::eq(gate, &raw const self.gate) {
            self.limit()
        } else {
            gate.limit()
        };
        let error = variant(self.name.clone(), limit);
        self.rejected.fetch_add(1, Relaxed);
        observe::rejected(self, &error);
        error
    }
}

/// Why a limiter cannot be shared (`Core::share`).
#[cfg(feature = "redis")]
pub(crate) enum Unshareable {
    /// It was shared already.
    Shared,
    /// A call of it is in flight.
    InUse,
    /// It is adaptive: the processes would need to agree on one controller.
    Adaptive,
}

impl Drop for Core {
    fn drop(&mut self) {
        registry::deregister(self);
    }
}
