//! loom models of the lock-free parts: the gate's fast path and hand-over to the queue, and
//! the drain handshake. loom runs each model under every interleaving of their atomics and
//! locks (up to `LOOM_MAX_PREEMPTIONS` preemptions), so a lost wake-up shows up as a deadlock
//! and an over-admission as a failed assertion.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p limit-runtime --lib --release --target-dir target/loom
//! ```
//!
//! CI runs them so, with 3 preemptions; the README's Testing section gives the fuller run.
//!
//! tokio's `Semaphore` is not loom-aware: loom sees each of its operations as one step, which
//! is how the gate uses it (tokio checks its insides with its own models). tokio's `Notify` is
//! replaced under loom by a stand-in with the same contract (see `sync.rs`).

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::SeqCst;
use loom::thread;

use crate::gate::{Gate, Handed, handed};
use crate::in_flight::InFlight;

/// Takes a permit as a call does: the fast path, else the queue.
fn acquire(gate: &Gate) {
    acquire_many(gate, 1);
}

/// Takes `n` permits as a call of weight `n` does: the fast path while no call is queued,
/// else the line (a call that finds calls queued does not look for idle permits itself; only
/// `try_acquire`, which may not wait, does).
fn acquire_many(gate: &Gate, n: usize) {
    if let Some(word) = gate.fast_path_open()
        && gate.try_take(word, n).is_some()
    {
        return;
    }
    assert!(gate.enqueue(None));
    let mut at_front = false;
    while let Handed::Front =
        gate.take_handed(handed(block_on(gate.next_permit(at_front, n))), at_front, n)
    {
        at_front = true;
    }
    gate.leave(false, n);
}

/// Runs `work` on a new thread, with the gate shared.
fn on_thread<T: Send + 'static>(
    gate: &Arc<Gate>,
    work: impl FnOnce(&Gate) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let gate = Arc::clone(gate);
    thread::spawn(move || work(&gate))
}

/// Runs `body` holding a permit, and checks that at most `limit` bodies ever run at once.
fn with_permit(gate: &Gate, inside: &AtomicUsize, limit: usize) {
    with_permits(gate, inside, limit, 1);
}

/// Runs `body` holding `n` permits, and checks that at most `limit` permits are ever held by
/// the bodies running at once.
fn with_permits(gate: &Gate, inside: &AtomicUsize, limit: usize, n: usize) {
    acquire_many(gate, n);
    let now = inside.fetch_add(n, SeqCst) + n;
    assert!(now <= limit, "{now} permits inside a limit of {limit}");
    inside.fetch_sub(n, SeqCst);
    gate.release(n);
}

/// Every permit is back: exactly `limit` can be taken at once.
fn assert_all_permits_back(gate: &Gate, limit: usize) {
    assert_eq!(gate.held(), 0);
    assert_eq!(gate.waiting(), 0);
    for _ in 0..limit {
        assert!(gate.try_acquire(1).is_some(), "a permit was lost");
    }
    assert!(gate.try_acquire(1).is_none(), "a permit was made up");
}

#[test]
fn n_plus_one_threads_never_exceed_n_permits() {
    for limit in [1, 2] {
        loom::model(move || {
            let gate = Arc::new(Gate::new(limit));
            let inside = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..limit)
                .map(|_| {
                    let (gate, inside) = (gate.clone(), inside.clone());
                    thread::spawn(move || with_permit(&gate, &inside, limit))
                })
                .collect();
            with_permit(&gate, &inside, limit);
            for thread in threads {
                thread.join().unwrap();
            }
            assert_all_permits_back(&gate, limit);
        });
    }
}

#[test]
fn a_queued_call_is_woken_by_the_release_it_waits_for() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let releaser = on_thread(&gate, |gate| gate.release(1));
        acquire(&gate); // deadlocks under loom if the release is lost
        gate.release(1);
        releaser.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

/// tokio's `concurrent_cancel` pattern: a wait polled once and dropped, racing a release.
#[test]
fn a_wait_polled_once_and_dropped_racing_a_release_loses_no_permit() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let releaser = on_thread(&gate, |gate| gate.release(1));
        if gate.try_acquire(1).is_some() {
            gate.release(1);
        } else {
            assert!(gate.enqueue(None));
            {
                let mut wait = std::pin::pin!(gate.next_permit(false, 1));
                let waker = std::task::Waker::noop();
                let mut cx = std::task::Context::from_waker(waker);
                if let std::task::Poll::Ready(permit) = wait.as_mut().poll(&mut cx) {
                    // No resize here, so nobody is ever sent to the front.
                    assert!(matches!(
                        gate.take_handed(handed(permit), false, 1),
                        Handed::Admitted(_)
                    ));
                    gate.release(1);
                }
            } // dropped: whatever it was assigned goes back
            gate.leave(false, 1);
        }
        releaser.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

#[test]
fn the_last_waiter_leaving_races_a_new_waiter_and_a_release() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        // A waiter that gives up, racing a newcomer that must still get the permit.
        let quitter = on_thread(&gate, |gate| {
            assert!(gate.enqueue(None));
            gate.leave(false, 1);
        });
        let releaser = on_thread(&gate, |gate| gate.release(1));
        acquire(&gate);
        gate.release(1);
        quitter.join().unwrap();
        releaser.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

#[test]
fn set_limit_racing_acquire_and_release_keeps_the_count_exact() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let resizer = on_thread(&gate, |gate| {
            gate.set_limit(2);
            gate.set_limit(1);
        });
        let worker = {
            let (gate, inside) = (gate.clone(), inside.clone());
            // Up to 2 may run while the limit is 2.
            thread::spawn(move || with_permit(&gate, &inside, 2))
        };
        with_permit(&gate, &inside, 2);
        resizer.join().unwrap();
        worker.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

/// A waiter queued for the only permit, its release and a shrink to 0 racing (the waiter may
/// be handed the permit before or after the shrink, and give up or be admitted): afterwards
/// nothing is admitted while the limit is 0, and the one permit is accounted for, exactly,
/// once the limit grows again.
#[test]
fn shrinking_while_a_waiter_is_handed_a_permit_admits_no_one_over_the_limit() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let resizer = on_thread(&gate, |gate| gate.set_limit(0));
        let waiter = on_thread(&gate, wait_twice_then_give_up);
        gate.release(1);
        resizer.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(gate.held(), 0);
        assert!(gate.try_acquire(1).is_none(), "the limit is 0 now");
        gate.set_limit(1);
        assert_all_permits_back(&gate, 1);
    });
}

/// A release racing the last waiter's leaving, with nobody queuing after it: the permit
/// comes back to the fast path whichever of the two goes first (`hand_over` looks at the
/// flag again after giving the permit to the semaphore).
#[test]
fn a_release_racing_the_last_waiter_leaving_loses_no_permit() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let quitter = on_thread(&gate, |gate| {
            assert!(gate.enqueue(None));
            gate.leave(false, 1);
        });
        gate.release(1);
        quitter.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

/// A newcomer's `try_acquire` never takes the permit a release hands to a call already in
/// the semaphore's queue.
#[test]
fn a_newcomer_never_overtakes_a_waiting_call() {
    loom::model(|| newcomer_races_the_release_a_waiter_needs(1));
}

/// With one permit held and a waiter of `weight` in the line (`weight - 1` permits free, handed
/// to it), a release of that permit races a newcomer asking for 1: the newcomer gets nothing,
/// and the waiter is admitted with its `weight` permits.
fn newcomer_races_the_release_a_waiter_needs(weight: usize) {
    let gate = Arc::new(Gate::new(weight));
    assert!(gate.try_acquire(1).is_some());
    assert!(gate.enqueue(None));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut wait = Box::pin(gate.next_permit(false, weight));
    assert!(wait.as_mut().poll(&mut cx).is_pending(), "in the line now");
    let releaser = on_thread(&gate, |gate| gate.release(1));
    let newcomer = on_thread(&gate, |gate| gate.try_acquire(1).is_some());
    assert!(!newcomer.join().unwrap(), "a newcomer overtook the waiter");
    releaser.join().unwrap();
    let std::task::Poll::Ready(permit) = wait.as_mut().poll(&mut cx) else {
        panic!("the waiter was not handed the permits it waits for");
    };
    assert!(matches!(
        gate.take_handed(handed(permit), false, weight),
        Handed::Admitted(held) if held == weight
    ));
    drop(wait);
    gate.leave(false, weight);
    gate.release(weight);
    assert_all_permits_back(&gate, weight);
}

/// A waiter handed a permit gives up while another is owed one at the front; a newcomer's
/// `try_acquire` racing it must not take that permit.
#[test]
fn a_newcomer_does_not_take_a_permit_owed_to_the_front() {
    loom::model(|| {
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(1)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.enqueue(None));
        let mut first = Box::pin(gate.next_permit(false, 1));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(gate.enqueue(None));
        let mut quitter = Box::pin(gate.next_permit(false, 1));
        assert!(quitter.as_mut().poll(&mut cx).is_pending());
        gate.set_limit(3); // both are handed a permit
        gate.set_limit(1); // and 2 are owed
        let std::task::Poll::Ready(permit) = first.as_mut().poll(&mut cx) else {
            panic!("the first waiter was handed a permit");
        };
        assert!(matches!(
            gate.take_handed(handed(permit), false, 1),
            Handed::Front
        ));
        drop(first);
        let mut first = Box::pin(gate.next_permit(true, 1));
        assert!(
            first.as_mut().poll(&mut cx).is_pending(),
            "at the front now"
        );
        gate.release(1); // pays the last of the debt
        let quitter = thread::spawn(move || {
            drop(quitter); // its handed permit goes back to the semaphore...
            gate.leave(false, 1); // ...and on to the front
        });
        let newcomer = thread::spawn(move || gate.try_acquire(1).is_some());
        let overtook = newcomer.join().unwrap();
        quitter.join().unwrap();
        assert!(!overtook, "a newcomer took the permit owed to the front");
        let std::task::Poll::Ready(permit) = first.as_mut().poll(&mut cx) else {
            panic!("the front waiter was not served");
        };
        assert!(matches!(
            gate.take_handed(handed(permit), true, 1),
            Handed::Admitted(1)
        ));
    });
}

/// Waits for a permit with at most two polls, each of a fresh wait (dropped if pending), and
/// gives up after that; if admitted, gives the permit back at once.
fn wait_twice_then_give_up(gate: &Gate) {
    wait_twice_for_many_then_give_up(gate, 1);
}

/// [`wait_twice_then_give_up`], for `n` permits.
fn wait_twice_for_many_then_give_up(gate: &Gate, n: usize) {
    if gate.try_acquire(n).is_some() {
        gate.release(n);
        return;
    }
    assert!(gate.enqueue(None));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut at_front = false;
    for _ in 0..2 {
        let mut wait = std::pin::pin!(gate.next_permit(at_front, n));
        if let std::task::Poll::Ready(permit) = wait.as_mut().poll(&mut cx) {
            match gate.take_handed(handed(permit), at_front, n) {
                Handed::Admitted(_) => {
                    gate.leave(false, n);
                    gate.release(n);
                    return;
                }
                Handed::Front => at_front = true,
            }
        }
    }
    gate.leave(at_front, n);
}

/// A shrink takes back the permit a waiter was handed before it ran; the waiter waits at the
/// front, and the limit growing again admits it, whatever the order of release and resizes.
#[test]
fn a_waiter_sent_to_the_front_by_a_shrink_is_admitted_when_the_limit_grows() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let waiter = on_thread(&gate, |gate| {
            acquire(gate); // deadlocks under loom if the front waiter is forgotten
            gate.release(1);
        });
        gate.release(1);
        gate.set_limit(0);
        gate.set_limit(1);
        waiter.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

/// Waiters giving up in the queue and at the front, racing releases and a shrink and grow:
/// no permit is lost (a front waiter's, or one tokio handed to a waiter that then left) and
/// none is made up.
#[test]
fn waiters_giving_up_at_the_front_and_in_the_queue_lose_no_permit() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(2));
        assert!(gate.try_acquire(1).is_some());
        assert!(gate.try_acquire(1).is_some());
        let waiters: Vec<_> = (0..2)
            .map(|_| on_thread(&gate, wait_twice_then_give_up))
            .collect();
        gate.release(1);
        gate.set_limit(1);
        gate.release(1);
        gate.set_limit(2);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_all_permits_back(&gate, 2);
    });
}

/// Weighted calls racing a shrink and a grow: the permits held never exceed the largest
/// limit, and every permit is back at the end, wherever the resizes fell (the debt paid by a
/// heavy waiter's handed permits, with some left over, included).
#[test]
fn weighted_calls_racing_a_resize_keep_the_count_exact() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let resizer = on_thread(&gate, |gate| {
            gate.set_limit(2);
            gate.set_limit(3);
        });
        let heavy = {
            let (gate, inside) = (gate.clone(), inside.clone());
            thread::spawn(move || with_permits(&gate, &inside, 3, 2))
        };
        with_permits(&gate, &inside, 3, 2);
        resizer.join().unwrap();
        heavy.join().unwrap();
        assert_all_permits_back(&gate, 3);
    });
}

/// A heavy waiter at the head of the line is not overtaken: with 1 of its 2 permits free,
/// a newcomer asking for 1 gets nothing, whether it comes before or after the release that
/// completes the waiter's 2.
#[test]
fn a_heavy_waiter_at_the_head_is_not_overtaken_by_a_light_newcomer() {
    loom::model(|| newcomer_races_the_release_a_waiter_needs(2));
}

/// Weighted waiters giving up in the line and at the front, racing releases and a shrink and
/// grow: no permit is lost and none is made up.
#[test]
fn weighted_waiters_giving_up_at_the_front_and_in_the_queue_lose_no_permit() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(3));
        assert!(gate.try_acquire(3).is_some());
        let heavy = on_thread(&gate, |gate| wait_twice_for_many_then_give_up(gate, 2));
        let light = on_thread(&gate, wait_twice_then_give_up);
        gate.release(1);
        gate.set_limit(2);
        gate.release(2);
        gate.set_limit(3);
        heavy.join().unwrap();
        light.join().unwrap();
        assert_all_permits_back(&gate, 3);
    });
}

/// A call that finds calls queued joins the line, even while a permit a quitter was handed
/// lies idle in it: it is served in its turn (or the last waiter out takes the permit back to
/// the fast path). A permit stranded in the line deadlocks here.
#[test]
fn a_newcomer_that_finds_calls_queued_waits_in_line_and_is_served() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(1));
        assert!(gate.try_acquire(1).is_some());
        let quitter = on_thread(&gate, |gate| {
            assert!(gate.enqueue(None));
            {
                // Polled once, then dropped: a permit it was handed goes back to the line.
                let mut wait = std::pin::pin!(gate.next_permit(false, 1));
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let _ = wait.as_mut().poll(&mut cx);
            }
            gate.leave(false, 1);
        });
        let releaser = on_thread(&gate, |gate| gate.release(1));
        acquire(&gate);
        gate.release(1);
        quitter.join().unwrap();
        releaser.join().unwrap();
        assert_all_permits_back(&gate, 1);
    });
}

#[test]
fn drain_never_returns_early_and_never_sleeps_through_the_last_exit() {
    loom::model(|| {
        let parent = Arc::new(InFlight::new());
        let child = Arc::new(InFlight::new());
        let exited = Arc::new(AtomicUsize::new(0));
        child.enter(&parent);
        child.enter(&parent);
        let exits: Vec<_> = (0..2)
            .map(|_| {
                let (parent, child, exited) = (parent.clone(), child.clone(), exited.clone());
                thread::spawn(move || {
                    exited.fetch_add(1, SeqCst);
                    child.exit(&parent);
                })
            })
            .collect();
        // The process-wide drain: register, then unmark idle limiters, then wait.
        block_on(parent.wait_idle_after(|| child.unmark(&parent)));
        assert_eq!(
            exited.load(SeqCst),
            2,
            "drain returned with a call in flight"
        );
        for exit in exits {
            exit.join().unwrap();
        }
    });
}

#[test]
fn a_limiter_drain_racing_the_last_exit_and_a_new_call_returns() {
    loom::model(|| {
        let parent = Arc::new(InFlight::new());
        let child = Arc::new(InFlight::new());
        child.enter(&parent);
        let drainer = {
            let (parent, child) = (parent.clone(), child.clone());
            // Returns at the first moment after it began that nothing is in flight: the
            // zero moment below, or, if it began after the new call, that call's end.
            thread::spawn(move || block_on(child.wait_idle(&parent)))
        };
        child.exit(&parent);
        child.enter(&parent); // a new call right after the zero moment
        child.exit(&parent);
        drainer.join().unwrap();
    });
}

/// A limiter's drain and the process-wide drain, both pending while the last call exits:
/// the exit finds them through the one count of every pending drain (`watchers`), and wakes
/// both.
#[test]
fn a_limiter_drain_and_the_process_drain_both_see_the_last_exit() {
    loom::model(|| {
        let parent = Arc::new(InFlight::new());
        let child = Arc::new(InFlight::new());
        child.enter(&parent);
        let exit = {
            let (parent, child) = (parent.clone(), child.clone());
            thread::spawn(move || child.exit(&parent))
        };
        let limiter_drain = {
            let (parent, child) = (parent.clone(), child.clone());
            thread::spawn(move || block_on(child.wait_idle(&parent)))
        };
        block_on(parent.wait_idle_after(|| child.unmark(&parent)));
        assert_eq!(
            child.snapshot().in_flight,
            0,
            "drain returned with a call in flight"
        );
        limiter_drain.join().unwrap();
        exit.join().unwrap();
    });
}

#[test]
fn the_notify_stand_in_delivers_notify_waiters() {
    loom::model(|| {
        let notify = Arc::new(crate::sync::Notify::const_new());
        let flag = Arc::new(AtomicUsize::new(0));
        let t = {
            let (notify, flag) = (notify.clone(), flag.clone());
            thread::spawn(move || {
                flag.store(1, SeqCst);
                notify.notify_waiters();
            })
        };
        block_on(async {
            loop {
                let mut n = std::pin::pin!(notify.notified());
                n.as_mut().enable();
                if flag.load(SeqCst) == 1 {
                    break;
                }
                n.await;
            }
        });
        t.join().unwrap();
    });
}
