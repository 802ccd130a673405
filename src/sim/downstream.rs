//! The simulated downstream: `capacity` servers, a service-time distribution, and what
//! happens to a call beyond capacity (a FIFO queue inside the downstream, a shallow knee, or
//! a 503 once the queue is full). It runs on tokio's paused clock (`tokio::time::sleep`) and
//! draws from its own seeded generator, so the same calls in the same order take the same
//! times.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, sleep_until};

use super::rng::SplitMix64;

/// A slow change of the base service time: it grows (or shrinks) linearly from the
/// unloaded service time to `factor` times it over `over`, then stays there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drift {
    /// How long the drift takes.
    pub over: Duration,
    /// The base service time at the end, as a multiple of the unloaded one.
    pub factor: f64,
}

/// What a downstream is: its servers, its service times and its overload behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct DownstreamSpec {
    /// Servers at the start: calls served at once.
    pub capacity: usize,
    /// Changes of the number of servers: from each time on, that many. In time order.
    pub capacity_changes: Vec<(Duration, usize)>,
    /// The unloaded service time: the unit every latency of the table is a multiple of.
    pub service: Duration,
    /// Uniform jitter of each service time, ± this fraction (0 for a constant time).
    pub jitter: f64,
    /// A shallow knee instead of a hard queue: every call is served at once, and a call
    /// that starts while `n` calls are in service (itself included) takes
    /// `1 + knee × (n − capacity) / capacity` times the base service time when `n` is
    /// above capacity. With `knee` below 1, throughput keeps growing past capacity, slowly,
    /// at the cost of latency (1 would be a queue's cost with no throughput gained).
    pub knee: Option<f64>,
    /// A drift of the base service time over the run.
    pub drift: Option<Drift>,
    /// Calls allowed to wait beyond capacity (in the queue, or beyond the knee) before the
    /// downstream refuses the next as overloaded (a 503, after [`drop_time`]). `None`: it
    /// never refuses.
    ///
    /// [`drop_time`]: Self::drop_time
    pub max_queue: Option<usize>,
    /// How long a refusal takes to come back.
    pub drop_time: Duration,
}

impl DownstreamSpec {
    /// A downstream of `capacity` servers with a constant `service` time, a FIFO queue
    /// without bound beyond them, and no drift.
    #[must_use]
    pub fn new(capacity: usize, service: Duration) -> Self {
        Self {
            capacity,
            capacity_changes: Vec::new(),
            service,
            jitter: 0.0,
            knee: None,
            drift: None,
            max_queue: None,
            // A refusal is cheap for the server: a tenth of a call.
            drop_time: service / 10,
        }
    }

    /// The same, with service times uniform in `service × (1 ± jitter)`.
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same, with a shallow knee (see [`knee`](Self::knee)) instead of a queue.
    #[must_use]
    pub fn knee(mut self, slope: f64) -> Self {
        self.knee = Some(slope);
        self
    }

    /// The same, with the base service time drifting to `factor` times over `over`.
    #[must_use]
    pub fn drift(mut self, over: Duration, factor: f64) -> Self {
        self.drift = Some(Drift { over, factor });
        self
    }

    /// The same, with the number of servers becoming `capacity` at `at`.
    #[must_use]
    pub fn capacity_at(mut self, at: Duration, capacity: usize) -> Self {
        self.capacity_changes.push((at, capacity));
        self
    }

    /// The same, refusing calls beyond `max_queue` waiting ones.
    #[must_use]
    pub fn max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = Some(max_queue);
        self
    }

    /// The number of servers at `t` (since the run began).
    #[must_use]
    pub fn servers(&self, t: Duration) -> usize {
        self.capacity_changes
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(self.capacity, |&(_, capacity)| capacity)
    }

    /// The largest number of servers it ever has.
    #[must_use]
    pub fn max_servers(&self) -> usize {
        self.capacity_changes
            .iter()
            .map(|&(_, c)| c)
            .fold(self.capacity, usize::max)
    }

    /// The base service time at `t`, drift included, before jitter and knee.
    #[must_use]
    pub fn base_service(&self, t: Duration) -> Duration {
        match self.drift {
            None => self.service,
            Some(Drift { over, factor }) => {
                let done = (t.as_secs_f64() / over.as_secs_f64()).min(1.0);
                self.service.mul_f64(1.0 + (factor - 1.0) * done)
            }
        }
    }
}

/// How a call to the downstream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Served,
    /// Refused as overloaded (a 503).
    Dropped,
}

/// A running downstream, for one simulation run on one current-thread runtime.
#[derive(Debug)]
pub struct Downstream {
    spec: DownstreamSpec,
    start: Instant,
    state: RefCell<State>,
}

#[derive(Debug)]
struct State {
    /// Calls in service.
    busy: usize,
    capacity: usize,
    /// Calls waiting for a server, oldest first (hard-queue mode only).
    queue: VecDeque<oneshot::Sender<()>>,
    rng: SplitMix64,
}

impl Downstream {
    /// A downstream as `spec` says, whose clock began at `start`, drawing from `rng`.
    #[must_use]
    pub fn new(spec: DownstreamSpec, start: Instant, rng: SplitMix64) -> Self {
        let capacity = spec.capacity;
        Self {
            spec,
            start,
            state: RefCell::new(State {
                busy: 0,
                capacity,
                queue: VecDeque::new(),
                rng,
            }),
        }
    }

    /// What it is.
    #[must_use]
    pub const fn spec(&self) -> &DownstreamSpec {
        &self.spec
    }

    /// One call: waits for a server if all are busy (FIFO), then for its service time; or
    /// is refused after [`drop_time`](DownstreamSpec::drop_time) when too many wait.
    pub async fn call(&self) -> Outcome {
        let waiting = {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            let beyond = match self.spec.knee {
                Some(_) => (state.busy + 1).saturating_sub(state.capacity),
                None if state.busy < state.capacity => 0,
                None => state.queue.len() + 1,
            };
            if self.spec.max_queue.is_some_and(|max| beyond > max) {
                None
            } else if self.spec.knee.is_some() || beyond == 0 {
                state.busy += 1;
                Some(None)
            } else {
                let (sender, receiver) = oneshot::channel();
                state.queue.push_back(sender);
                Some(Some(receiver))
            }
        };
        match waiting {
            None => {
                sleep(self.spec.drop_time).await;
                return Outcome::Dropped;
            }
            // Given a server by `dispatch`, which counted it busy. The sender is only
            // dropped with the runtime, at the end of a run.
            Some(Some(receiver)) => {
                if receiver.await.is_err() {
                    return Outcome::Dropped;
                }
            }
            Some(None) => {}
        }
        let service = self.service_time();
        sleep(service).await;
        let mut state = self.state.borrow_mut();
        state.busy -= 1;
        Self::dispatch(&mut state);
        Outcome::Served
    }

    /// Follows the capacity changes of the spec; the harness spawns it beside the calls.
    pub async fn follow_capacity(&self) {
        for &(at, capacity) in &self.spec.capacity_changes {
            sleep_until(self.start + at).await;
            let mut state = self.state.borrow_mut();
            state.capacity = capacity;
            Self::dispatch(&mut state);
        }
    }

    /// The service time of a call that starts now, with `busy` counting it.
    fn service_time(&self) -> Duration {
        let mut state = self.state.borrow_mut();
        let mut time = self.spec.base_service(self.start.elapsed());
        if self.spec.jitter > 0.0 {
            let u = state.rng.next_f64();
            time = time.mul_f64(1.0 + self.spec.jitter * (2.0 * u - 1.0));
        }
        if let Some(slope) = self.spec.knee {
            let capacity = state.capacity.max(1);
            let beyond = state.busy.saturating_sub(capacity);
            time = time.mul_f64(1.0 + slope * beyond as f64 / capacity as f64);
        }
        time
    }

    /// Gives free servers to the oldest waiting calls.
    fn dispatch(state: &mut State) {
        while state.busy < state.capacity {
            let Some(next) = state.queue.pop_front() else {
                break;
            };
            if next.send(()).is_ok() {
                state.busy += 1;
            }
        }
    }
}
