//! Per-key limits for `key = …`: one [`Gate`] per distinct key, created by the key's first
//! call and removed with its last, so memory follows the keys in use, not the keys ever seen.
//!
//! The key type is whatever the key expression yields, so the map stores keys behind a
//! small object-safe trait, `DynKey`, with hashing and equality forwarded to the real type.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::gate::Gate;

/// A key of any type, as the map stores it.
pub(crate) trait DynKey: Send + Sync + 'static {
    fn dyn_hash(&self, state: &mut dyn Hasher);
    fn dyn_eq(&self, other: &dyn DynKey) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<K: Hash + Eq + Send + Sync + 'static> DynKey for K {
    fn dyn_hash(&self, mut state: &mut dyn Hasher) {
        self.hash(&mut state);
    }

    fn dyn_eq(&self, other: &dyn DynKey) -> bool {
        other.as_any().downcast_ref::<K>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Hash for dyn DynKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.dyn_hash(state);
    }
}

impl PartialEq for dyn DynKey {
    fn eq(&self, other: &Self) -> bool {
        self.dyn_eq(other)
    }
}

impl Eq for dyn DynKey {}

/// The map's key; borrowing it as `dyn DynKey` lets a lookup use the caller's key as is.
struct StoredKey(Arc<dyn DynKey>);

impl Hash for StoredKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0).hash(state);
    }
}

impl PartialEq for StoredKey {
    fn eq(&self, other: &Self) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for StoredKey {}

impl Borrow<dyn DynKey> for StoredKey {
    fn borrow(&self) -> &dyn DynKey {
        &*self.0
    }
}

/// The permits of one key, shared by its calls.
pub(crate) struct Slot {
    pub(crate) gate: Gate,
    /// Calls of this key in flight; changed only under the map's lock.
    calls: AtomicUsize,
    key: Arc<dyn DynKey>,
}

/// The keys of one limiter.
#[derive(Default)]
pub(crate) struct Keys {
    map: Mutex<HashMap<StoredKey, Arc<Slot>>>,
}

impl Keys {
    fn lock(&self) -> MutexGuard<'_, HashMap<StoredKey, Arc<Slot>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a call of `key`, creating its slot with `limit()` permits if it has none.
    /// `limit` is read under the lock, so a key created while `set_limit` runs cannot keep
    /// the old limit: `set_limit` stores the new one before it walks the keys.
    pub(crate) fn enter<K: Hash + Eq + Send + Sync + 'static>(
        &self,
        key: K,
        limit: impl FnOnce() -> usize,
    ) -> Arc<Slot> {
        let mut map = self.lock();
        let slot = if let Some(slot) = map.get(&key as &dyn DynKey) {
            Arc::clone(slot)
        } else {
            let key: Arc<dyn DynKey> = Arc::new(key);
            let slot = Arc::new(Slot {
                gate: Gate::new(limit()),
                calls: AtomicUsize::new(0),
                key: Arc::clone(&key),
            });
            map.insert(StoredKey(key), Arc::clone(&slot));
            slot
        };
        slot.calls.fetch_add(1, Relaxed);
        slot
    }

    /// Ends a call of `slot`'s key; the key is forgotten with its last call.
    pub(crate) fn exit(&self, slot: &Slot) {
        let mut map = self.lock();
        if slot.calls.fetch_sub(1, Relaxed) == 1 {
            map.remove(&*slot.key);
            // A burst of keys leaves a large table behind; give the memory back once it is
            // mostly empty.
            if map.capacity() > 64 && map.len() * 4 < map.capacity() {
                let len = map.len();
                map.shrink_to(len * 2);
            }
        }
    }

    pub(crate) fn active(&self) -> usize {
        self.lock().len()
    }

    /// Calls queued for a permit, all keys together.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().values().map(|slot| slot.gate.waiting()).sum()
    }

    /// Applies a new per-key limit to every key in use.
    pub(crate) fn set_limit(&self, limit: usize) {
        for slot in self.lock().values() {
            slot.gate.set_limit(limit);
        }
    }
}
