//! Pieces the benchmark binaries share: the median of a set of samples, and the hand-written
//! in-flight tracker that the baselines use in place of `drain()`.
//!
//! Each bench binary includes this module and uses part of it.
#![allow(dead_code)]

use std::pin::pin;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;

use tokio::sync::Notify;

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static IDLE: Notify = Notify::const_new();

/// One hand-written call in flight, counted from `enter()` until dropped (also on cancel or
/// panic): what a user writes by hand to have a `drain()`.
pub struct InFlight(());

/// Counts a call as in flight; call it where the call is made, before any `.await`.
pub fn enter() -> InFlight {
    IN_FLIGHT.fetch_add(1, SeqCst);
    InFlight(())
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, SeqCst) == 1 {
            IDLE.notify_waiters();
        }
    }
}

/// The hand-written `drain()`: registers interest before reading the count, as the library
/// does, so it cannot miss the last call out.
pub async fn drain() {
    loop {
        let mut notified = pin!(IDLE.notified());
        notified.as_mut().enable();
        if IN_FLIGHT.load(SeqCst) == 0 {
            return;
        }
        notified.await;
    }
}
