//! The synchronization primitives of the parts that are model-checked (`gate`, `in_flight`):
//! `std`'s normally, `loom`'s under `--cfg loom`, so that loom can explore every
//! interleaving of their atomics and locks.
//!
//! loom's types cannot be built in a `const` context, so constructors built on them are
//! declared with [`const_fn!`]: `const` normally, a plain `fn` under loom. tokio's `Notify`
//! and `Semaphore` stay tokio's under loom: loom treats each of their operations as one step,
//! which is what they are to us (tokio model-checks them itself).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Declares a function that is `const` except under loom.
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $($rest)*

        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
pub(crate) use const_fn;
