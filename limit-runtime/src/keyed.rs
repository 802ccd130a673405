//! Per-key limits for `key = …`: one [`Gate`] per distinct key, created by the key's first
//! call and removed with its last, so memory follows the keys in use, not the keys ever seen.
//!
//! An adaptive limiter's keys each adapt on their own (a controller per slot): one limit
//! learned from two services' calls would serve neither. What a key learned must not be
//! lost just because the key went idle for a moment, so an adaptive limiter keeps the slots
//! of its idle keys too, up to [`LEARNED_KEYS`] of them; beyond that, the keys idle longest
//! are forgotten (a `DEBUG` event says how many), and such a key starts again from the
//! limiter's limit when it comes back.
//!
//! The key type is whatever the key expression yields. Each key lives inside its slot (one
//! allocation per key in use), and the slot is stored type-erased, as `Slot<dyn DynKey>`,
//! with equality forwarded to the real type. The key's hash is computed once, on the real
//! type, and kept in the slot: the table is keyed by that number, so growing and shrinking it
//! never hashes a key again (a burst of new keys grows the table, and their end shrinks it).

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::adaptive::state::State;
use crate::gate::Gate;

/// A key of any type, compared through the trait object. `pub` only because `call::Claim`
/// names `Slot`; the module is private.
pub trait DynKey: Send + Sync + 'static {
    fn dyn_eq(&self, other: &dyn DynKey) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<K: Eq + Send + Sync + 'static> DynKey for K {
    fn dyn_eq(&self, other: &dyn DynKey) -> bool {
        other.as_any().downcast_ref::<K>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The permits of one key, shared by its calls, and the key itself.
pub struct Slot<K: ?Sized + DynKey = dyn DynKey> {
    pub(crate) gate: Gate,
    /// Calls of this key in flight; changed only under the map's lock.
    calls: AtomicUsize,
    /// The key's own controller, for an adaptive limiter.
    adaptive: Option<Box<State>>,
    /// When the key's last call ended, in the table's count of such ends (for forgetting
    /// idle keys oldest first); changed only under the map's lock.
    idle_since: AtomicU64,
    /// The key's hash under its limiter's `RandomState`.
    hash: u64,
    key: K,
}

impl Slot {
    /// The key's controller, for an adaptive limiter.
    #[inline]
    pub(crate) fn adaptive(&self) -> Option<&State> {
        self.adaptive.as_deref()
    }
}

/// What the table is searched by: a hash and a key. Both a stored slot and a probe built from
/// the caller's key are one, so a lookup borrows the caller's key as is.
trait Lookup {
    fn hash(&self) -> u64;
    fn key(&self) -> &dyn DynKey;
}

impl Hash for dyn Lookup + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Lookup::hash(self));
    }
}

impl PartialEq for dyn Lookup + '_ {
    fn eq(&self, other: &Self) -> bool {
        Lookup::hash(self) == Lookup::hash(other) && self.key().dyn_eq(other.key())
    }
}

impl Eq for dyn Lookup + '_ {}

/// A slot in the table.
struct Stored(Arc<Slot>);

impl Lookup for Stored {
    fn hash(&self) -> u64 {
        self.0.hash
    }

    fn key(&self) -> &dyn DynKey {
        &self.0.key
    }
}

// The table's own `Hash` and `Eq` are the `dyn Lookup` ones, as `Borrow` requires.
impl Hash for Stored {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Hash::hash(self as &dyn Lookup, state);
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn Lookup) == (other as &dyn Lookup)
    }
}

impl Eq for Stored {}

impl<'a> Borrow<dyn Lookup + 'a> for Stored {
    fn borrow(&self) -> &(dyn Lookup + 'a) {
        self
    }
}

struct Probe<'k> {
    hash: u64,
    key: &'k dyn DynKey,
}

impl Lookup for Probe<'_> {
    fn hash(&self) -> u64 {
        self.hash
    }

    fn key(&self) -> &dyn DynKey {
        self.key
    }
}

/// The table hashes the stored hash: it is one already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (by `dyn Lookup`'s `Hash`); fold anything else in
        // rather than lose it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// Below this many places the table is never shrunk: a few kilobytes, kept so that keys that
/// come and go do not resize it over and over.
const KEEP_CAPACITY: usize = 1024;

/// The most idle keys an adaptive limiter keeps the learned limits of (see the module docs).
/// Beyond it, the longest idle quarter is forgotten at once, so that the sweep's cost is
/// shared by many exits.
pub(crate) const LEARNED_KEYS: usize = 1024;

/// The keys of one limiter.
#[derive(Default)]
pub(crate) struct Keys {
    map: Mutex<Table>,
    hasher: RandomState,
}

/// The slots, and what the adaptive limiter's idle keys need.
#[derive(Default)]
struct Table {
    set: HashSet<Stored, BuildHasherDefault<PassThrough>>,
    /// Slots kept with no call in flight (an adaptive limiter's idle keys).
    idle: usize,
    /// Ends of a key's last call so far: the idle keys' order.
    ends: u64,
}

impl Keys {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call of `key`, creating its slot with `limit()` permits if it has none (and,
    /// for an adaptive limiter, `adaptive`'s bounds, from that limit). `limit` is read under
    /// the lock, so a key created while `set_limit` runs cannot keep the old limit:
    /// `set_limit` stores the new one before it walks the keys.
    pub(crate) fn enter<K: Hash + Eq + Send + Sync + 'static>(
        &self,
        key: K,
        limit: impl FnOnce() -> usize,
        adaptive: Option<&State>,
    ) -> Arc<Slot> {
        // Hashed before the lock is taken, on the real type.
        let hash = self.hasher.hash_one(&key);
        let mut table = self.lock();
        let probe = Probe { hash, key: &key };
        let slot = if let Some(stored) = table.set.get(&probe as &dyn Lookup) {
            let slot = Arc::clone(&stored.0);
            if slot.calls.load(Relaxed) == 0 {
                table.idle -= 1; // an adaptive key, back with what it learned
            }
            slot
        } else {
            let limit = limit();
            let slot: Arc<Slot> = Arc::new(Slot {
                gate: Gate::new(limit),
                calls: AtomicUsize::new(0),
                adaptive: adaptive.map(|state| Box::new(state.for_key(limit))),
                idle_since: AtomicU64::new(0),
                hash,
                key,
            });
            table.set.insert(Stored(Arc::clone(&slot)));
            slot
        };
        slot.calls.fetch_add(1, Relaxed);
        slot
    }

    /// Ends a call of `slot`'s key; the key is forgotten with its last call, unless it
    /// adapts (see the module docs).
    pub(crate) fn exit(&self, slot: &Slot) {
        let mut table = self.lock();
        if slot.calls.fetch_sub(1, Relaxed) == 1 {
            if slot.adaptive.is_some() {
                table.ends += 1;
                slot.idle_since.store(table.ends, Relaxed);
                table.idle += 1;
                if table.idle > LEARNED_KEYS {
                    table.forget_idle(LEARNED_KEYS * 3 / 4);
                }
                return;
            }
            let probe = Probe {
                hash: slot.hash,
                key: &slot.key,
            };
            table.set.remove(&probe as &dyn Lookup);
            // A burst of keys leaves a large table behind; give the memory back once it is
            // mostly empty.
            let (len, capacity) = (table.set.len(), table.set.capacity());
            if capacity > KEEP_CAPACITY && len * 4 < capacity {
                table.set.shrink_to(len * 2);
            }
        }
    }

    /// Keys with a call in flight.
    pub(crate) fn active(&self) -> usize {
        let table = self.lock();
        table.set.len() - table.idle
    }

    /// Idle keys whose learned limits are kept (an adaptive limiter's).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().idle
    }

    /// Calls queued for a permit, all keys together.
    pub(crate) fn waiting(&self) -> usize {
        self.lock()
            .set
            .iter()
            .map(|stored| stored.0.gate.waiting())
            .sum()
    }

    /// Applies a new per-key limit to every key in use (and every idle key kept): an
    /// adaptive key's controller goes on from it.
    pub(crate) fn set_limit(&self, limit: usize) {
        for stored in &self.lock().set {
            let slot = &stored.0;
            match slot.adaptive() {
                Some(state) => state.set_limit(limit, |limit| slot.gate.set_limit(limit)),
                None => slot.gate.set_limit(limit),
            }
        }
    }
}

impl Table {
    /// Forgets the idle keys that have been idle longest, until `keep` are left.
    #[cold]
    fn forget_idle(&mut self, keep: usize) {
        let mut ends: Vec<u64> = self
            .set
            .iter()
            .filter(|stored| stored.0.calls.load(Relaxed) == 0)
            .map(|stored| stored.0.idle_since.load(Relaxed))
            .collect();
        let forget = ends.len().saturating_sub(keep);
        if forget == 0 {
            return;
        }
        // The `forget`-th oldest end: every idle key that ended at or before it goes.
        let (_, &mut cutoff, _) = ends.select_nth_unstable(forget - 1);
        self.set.retain(|stored| {
            stored.0.calls.load(Relaxed) != 0 || stored.0.idle_since.load(Relaxed) > cutoff
        });
        self.idle -= forget;
        crate::observe::keys_forgotten(forget);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_share_a_slot_and_the_last_call_forgets_it() {
        let keys = Keys::default();
        let a = keys.enter(String::from("a"), || 2, None);
        let also_a = keys.enter(String::from("a"), || 2, None);
        let b = keys.enter(String::from("b"), || 2, None);
        assert!(Arc::ptr_eq(&a, &also_a));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(keys.active(), 2);
        keys.exit(&a);
        assert_eq!(keys.active(), 2, "`a` still has a call");
        keys.exit(&also_a);
        keys.exit(&b);
        assert_eq!(keys.active(), 0);
    }

    #[test]
    fn keys_of_different_types_with_one_hash_stay_apart() {
        // The table compares keys through `dyn DynKey`; a `u64` and an `i64` that hash alike
        // are different keys.
        let keys = Keys::default();
        let unsigned = keys.enter(7_u64, || 1, None);
        let signed = keys.enter(7_i64, || 1, None);
        assert!(!Arc::ptr_eq(&unsigned, &signed));
        assert_eq!(keys.active(), 2);
        keys.exit(&unsigned);
        keys.exit(&signed);
        assert_eq!(keys.active(), 0);
    }

    #[test]
    fn the_table_shrinks_after_a_burst_but_keeps_a_small_capacity() {
        let keys = Keys::default();
        let slots: Vec<_> = (0..10_000_u32)
            .map(|key| keys.enter(key, || 1, None))
            .collect();
        assert!(keys.lock().set.capacity() >= 10_000);
        for slot in &slots {
            keys.exit(slot);
        }
        let capacity = keys.lock().set.capacity();
        assert!(
            capacity <= KEEP_CAPACITY * 2,
            "capacity {capacity} after the burst"
        );
    }

    fn adaptive() -> State {
        State::new(crate::adaptive::Adaptive::new().max(64).resolve())
    }

    #[test]
    fn an_adaptive_key_is_kept_idle_with_what_it_learned() {
        let keys = Keys::default();
        let state = adaptive();
        let a = keys.enter("a", || 4, Some(&state));
        a.adaptive()
            .unwrap()
            .set_limit(9, |limit| a.gate.set_limit(limit));
        keys.exit(&a);
        assert_eq!((keys.active(), keys.idle()), (0, 1));
        let again = keys.enter("a", || 4, Some(&state));
        assert!(
            Arc::ptr_eq(&a, &again),
            "the idle key's slot is the one it comes back to"
        );
        assert_eq!(again.gate.limit(), 9);
        assert_eq!((keys.active(), keys.idle()), (1, 0));
        keys.exit(&again);
    }

    #[test]
    fn beyond_the_learned_keys_the_longest_idle_are_forgotten() {
        let keys = Keys::default();
        let state = adaptive();
        for key in 0..=LEARNED_KEYS {
            let slot = keys.enter(key, || 4, Some(&state));
            keys.exit(&slot);
        }
        // One over: the oldest quarter is forgotten at once.
        assert_eq!(keys.idle(), LEARNED_KEYS * 3 / 4);
        assert_eq!(keys.active(), 0);
        let newest = keys.enter(LEARNED_KEYS, || 4, Some(&state));
        assert_eq!(keys.idle(), LEARNED_KEYS * 3 / 4 - 1, "the newest is kept");
        keys.exit(&newest);
        let before = keys.lock().set.len();
        let oldest = keys.enter(0_usize, || 4, Some(&state));
        assert_eq!(
            keys.lock().set.len(),
            before + 1,
            "the oldest was forgotten"
        );
        keys.exit(&oldest);
    }
}
