//! FIFO across shrinks, poll by poll. A waiter that tokio has handed a permit, but that has
//! not run since, loses that permit to a shrink (`set_limit` never lets a new call start over
//! the new limit); it then waits at the front of the line, ahead of everyone who started
//! waiting after it. These tests drive the corners of that: permits of waiters that give up
//! (handed or not, in the queue or at the front), and newcomers arriving meanwhile.
//!
//! Each test has a fresh limiter, and polls `acquire()` futures by hand with a no-op waker,
//! so each interleaving is exactly the one written.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use limit_runtime::{Limiter, Permit};

type Wait = Pin<Box<dyn Future<Output = Permit<'static>>>>;

/// A limiter of this test's own, leaked so that the boxed waits can hold it.
fn fresh(limit: usize) -> &'static Limiter {
    Box::leak(Box::new(Limiter::new(limit)))
}

fn wait(limiter: &'static Limiter) -> Wait {
    Box::pin(limiter.acquire())
}

fn poll(wait: &mut Wait) -> Option<Permit<'static>> {
    match wait.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(permit) => Some(permit),
        Poll::Pending => None,
    }
}

/// A limit of 1 with its permit held, and two waiters in line behind it, polled once.
fn two_waiters_behind_a_held_permit() -> (&'static Limiter, Permit<'static>, Wait, Wait) {
    let limiter = fresh(1);
    let held = limiter.try_acquire().expect("a free permit");
    let (mut a, mut b) = (wait(limiter), wait(limiter));
    assert!(poll(&mut a).is_none() && poll(&mut b).is_none());
    (limiter, held, a, b)
}

#[test]
fn a_waiter_sent_to_the_front_gets_the_permit_of_a_handed_waiter_that_gives_up() {
    let (limiter, held, a, mut b) = two_waiters_behind_a_held_permit();
    limiter.set_limit(3); // both are handed a permit...
    limiter.set_limit(0); // ...and a shrink is owed 3
    assert!(
        poll(&mut b).is_none(),
        "b's permit pays the shrink; b waits at the front"
    );
    drop(a); // a's handed permit goes back to the semaphore, where nobody waits for it
    limiter.set_limit(2);
    assert!(
        poll(&mut b).is_some(),
        "b, at the front, gets a permit once the limit allows one"
    );
    drop(held);
}

#[test]
fn a_front_waiter_that_gives_up_does_not_divert_later_permits() {
    let (limiter, held, mut a, mut b) = two_waiters_behind_a_held_permit();
    drop(held); // handed to a
    limiter.set_limit(0); // and taken back
    assert!(
        poll(&mut a).is_none(),
        "a waits at the front, still owed a permit"
    );
    drop(a);
    limiter.set_limit(1);
    assert!(
        poll(&mut b).is_some(),
        "the permit goes to b, the only waiter left"
    );
}

#[test]
fn the_permit_a_front_waiter_was_given_goes_on_when_it_gives_up() {
    let (limiter, held, mut a, mut b) = two_waiters_behind_a_held_permit();
    drop(held); // handed to a
    limiter.set_limit(0); // and taken back
    assert!(poll(&mut a).is_none(), "a waits at the front");
    limiter.set_limit(1); // a is given the permit, but has not run since
    drop(a);
    assert!(poll(&mut b).is_some(), "a's permit goes on to b");
}

#[test]
fn a_newcomer_does_not_overtake_a_handed_waiter_after_a_shrink() {
    let limiter = fresh(1);
    let held = limiter.try_acquire().expect("a free permit");
    let (mut first, mut second, mut third) = (wait(limiter), wait(limiter), wait(limiter));
    for waiter in [&mut first, &mut second, &mut third] {
        assert!(poll(waiter).is_none());
    }
    limiter.set_limit(4); // all three are handed a permit...
    limiter.set_limit(1); // ...and a shrink is owed 3
    drop(second); // their handed permits go back: they pay the shrink
    drop(third);
    let mut newcomer = wait(limiter);
    assert!(poll(&mut newcomer).is_none(), "nothing is free");
    drop(held); // pays the last of the shrink: `first` may now run, under a limit of 1
    let first_in = poll(&mut first);
    let newcomer_in = poll(&mut newcomer);
    assert!(
        first_in.is_some() && newcomer_in.is_none(),
        "first: {}, newcomer: {}",
        first_in.is_some(),
        newcomer_in.is_some()
    );
    assert_eq!((limiter.running(), limiter.waiting()), (1, 1));
    drop(first_in);
    assert!(
        poll(&mut newcomer).is_some(),
        "the newcomer is next in line"
    );
}

#[test]
fn waiters_sent_back_by_a_shrink_go_before_every_later_waiter() {
    let (limiter, held, mut a, mut b) = two_waiters_behind_a_held_permit();
    limiter.set_limit(3); // a and b are handed a permit
    limiter.set_limit(1); // and a shrink takes both back (2 owed)
    assert!(poll(&mut a).is_none() && poll(&mut b).is_none());
    let mut later = wait(limiter);
    assert!(poll(&mut later).is_none());
    drop(held);
    limiter.set_limit(2);
    // Two places: a and b take them, in the order they came back, before `later`.
    let (a_in, b_in, later_in) = (poll(&mut a), poll(&mut b), poll(&mut later));
    assert!(a_in.is_some() && b_in.is_some() && later_in.is_none());
    drop(a_in);
    assert!(poll(&mut later).is_some(), "`later` follows them");
}
