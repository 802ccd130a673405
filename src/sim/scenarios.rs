//! The seven scenarios of issue 16, and a short one for CI. Every scenario overloads its
//! downstream at some point (a controller cannot learn a capacity that is never reached), and
//! every latency is counted in unloaded service times (100 ms everywhere: "one RTT").
//!
//! Their lengths keep the whole bench (7 scenarios × about 20 fixed limits and the anchors)
//! within a minute in release: simulated time is free on the paused clock, calls are not,
//! so a scenario's cost is its number of arrivals.

use std::time::Duration;

use super::downstream::DownstreamSpec;
use super::load::LoadSpec;

/// The unloaded service time of every scenario: the table's unit of latency and of time.
pub const SERVICE: Duration = Duration::from_millis(100);

/// How long a caller waits in the limiter before it gives up: one unloaded service time.
/// A limit at capacity then costs an overloaded caller at most one extra RTT of waiting,
/// and a limit above capacity shows as the queue it builds inside the downstream.
pub const MAX_WAIT: Duration = SERVICE;

/// One scenario: downstreams, a load, a length, and where the table looks.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name in the table and the plot's file name.
    pub name: &'static str,
    /// One line on what it tests.
    pub about: &'static str,
    /// The services behind the one limiter; calls go to them in turn (call `i` to
    /// `i % len`).
    pub downstreams: Vec<DownstreamSpec>,
    /// The client load.
    pub load: LoadSpec,
    /// How long it runs (simulated).
    pub duration: Duration,
    /// The phases over which convergence is measured, `(change, end)`: from the start or a
    /// change of capacity or load that the controller must follow, to the end of that
    /// phase. Only overloaded phases: an idle controller cannot learn a capacity.
    pub converge: Vec<(Duration, Duration)>,
    /// The steady-state windows over which the limit's coefficient of variation is taken;
    /// the table shows the largest.
    pub steady: Vec<(Duration, Duration)>,
    /// The seed of every draw of a run (arrivals, service times).
    pub seed: u64,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Scenario {
    /// The unloaded service time of its first downstream (all are equal).
    #[must_use]
    pub fn unloaded(&self) -> Duration {
        self.downstreams[0].service
    }

    /// The ideal limit at `t`: the number of servers behind the limiter then (summed over
    /// the services).
    #[must_use]
    pub fn capacity(&self, t: Duration) -> usize {
        self.downstreams.iter().map(|d| d.servers(t)).sum()
    }

    /// The largest ideal limit over the run.
    #[must_use]
    pub fn max_capacity(&self) -> usize {
        let mut times: Vec<Duration> = vec![Duration::ZERO];
        for d in &self.downstreams {
            times.extend(d.capacity_changes.iter().map(|&(at, _)| at));
        }
        times
            .into_iter()
            .map(|t| self.capacity(t))
            .max()
            .unwrap_or(1)
    }

    /// The fixed limits swept for the oracle: every limit from 1 to twice the largest
    /// capacity when that is at most 20, else twenty steps of a tenth of it (5, 10, …, 100
    /// for a capacity of 50), with every capacity of the run added.
    #[must_use]
    pub fn sweep(&self) -> Vec<usize> {
        let max = self.max_capacity();
        let mut limits: Vec<usize> = if 2 * max <= 20 {
            (1..=2 * max).collect()
        } else {
            (1..=20)
                .map(|k| ((max * k) as f64 / 10.0).round() as usize)
                .collect()
        };
        limits.push(self.capacity(Duration::ZERO));
        for &(at, _) in &self.converge {
            limits.push(self.capacity(at));
        }
        limits.retain(|&l| l >= 1);
        limits.sort_unstable();
        limits.dedup();
        limits
    }
}

/// The seven scenarios, in the table's order.
#[must_use]
pub fn all() -> Vec<Scenario> {
    vec![
        hard_limit(),
        shallow_knee(),
        jittery(),
        capacity_drop(),
        drift(),
        burst(),
        two_services(),
    ]
}

/// The scenario called `name`, if any (the quick one included).
#[must_use]
pub fn by_name(name: &str) -> Option<Scenario> {
    all().into_iter().chain([quick()]).find(|s| s.name == name)
}

/// Vector's "defers at high concurrency": 5 servers, a constant 100 ms, a hard FIFO queue
/// beyond them (the ideal is 50 req/s; Vector's own simulator accepts 20–44). Poisson
/// arrivals at 75/s, 1.5× the capacity.
#[must_use]
pub fn hard_limit() -> Scenario {
    Scenario {
        name: "hard-limit-5",
        about: "5 servers, constant 100 ms, FIFO queue beyond; 75 req/s (1.5x)",
        downstreams: vec![DownstreamSpec::new(5, SERVICE)],
        load: LoadSpec::poisson(75.0, MAX_WAIT),
        duration: secs(60),
        converge: vec![(Duration::ZERO, secs(60))],
        steady: vec![(secs(30), secs(60))],
        seed: 1,
    }
}

/// A shallow knee: 20 servers, and past them every call is still served at once, each call
/// beyond capacity adding half a service time per 20 (`knee = 0.5`): latency grows slowly
/// and throughput still grows a little. 250 req/s, 1.25× the capacity: the load is served
/// in full only about 1.7× past the knee, at 1.33 RTTs.
#[must_use]
pub fn shallow_knee() -> Scenario {
    Scenario {
        name: "shallow-knee",
        about: "20 servers, past them no queue but +50% service time per 20 extra calls; 250 req/s",
        downstreams: vec![DownstreamSpec::new(20, SERVICE).knee(0.5)],
        load: LoadSpec::poisson(250.0, MAX_WAIT),
        duration: secs(60),
        converge: vec![(Duration::ZERO, secs(60))],
        steady: vec![(secs(30), secs(60))],
        seed: 2,
    }
}

/// A jittery link: 20 servers, service times uniform in 50–150 ms, 240 req/s (1.2×).
#[must_use]
pub fn jittery() -> Scenario {
    Scenario {
        name: "jittery",
        about: "20 servers, service time 100 ms +-50% (uniform), FIFO queue; 240 req/s (1.2x)",
        downstreams: vec![DownstreamSpec::new(20, SERVICE).jitter(0.5)],
        load: LoadSpec::poisson(240.0, MAX_WAIT),
        duration: secs(60),
        converge: vec![(Duration::ZERO, secs(60))],
        steady: vec![(secs(30), secs(60))],
        seed: 3,
    }
}

/// The capacity drops from 50 servers to 10 at 20 s and comes back at 40 s, under 600
/// req/s (1.2× the full capacity, 6× the low one).
#[must_use]
pub fn capacity_drop() -> Scenario {
    Scenario {
        name: "capacity-drop",
        about: "50 servers, 10 from 20 s to 40 s, constant 100 ms, FIFO queue; 600 req/s",
        downstreams: vec![
            DownstreamSpec::new(50, SERVICE)
                .capacity_at(secs(20), 10)
                .capacity_at(secs(40), 50),
        ],
        load: LoadSpec::poisson(600.0, MAX_WAIT),
        duration: secs(60),
        converge: vec![
            (Duration::ZERO, secs(20)),
            (secs(20), secs(40)),
            (secs(40), secs(60)),
        ],
        steady: vec![
            (secs(10), secs(20)),
            (secs(30), secs(40)),
            (secs(50), secs(60)),
        ],
        seed: 4,
    }
}

/// A slow drift: 10 servers whose service time grows from 100 ms to 200 ms over 10
/// simulated minutes, under 120 req/s (1.2× at the start, 2.4× at the end). The ideal
/// limit stays 10; a controller that holds on to an old minimum RTT sees a queue that is
/// not there.
#[must_use]
pub fn drift() -> Scenario {
    Scenario {
        name: "latency-drift",
        about: "10 servers, service time 100 -> 200 ms over 10 min, FIFO queue; 120 req/s",
        downstreams: vec![DownstreamSpec::new(10, SERVICE).drift(secs(600), 2.0)],
        load: LoadSpec::poisson(120.0, MAX_WAIT),
        duration: secs(600),
        converge: vec![(Duration::ZERO, secs(600))],
        steady: vec![(secs(300), secs(600))],
        seed: 5,
    }
}

/// A burst: 20 servers under 120 req/s (0.6×), and ten times that (6×) from 20 s to 30 s.
/// Convergence is measured over the burst, the only overloaded phase.
#[must_use]
pub fn burst() -> Scenario {
    Scenario {
        name: "burst-10x",
        about: "20 servers, constant 100 ms, FIFO queue; 120 req/s, 1200 req/s from 20 s to 30 s",
        downstreams: vec![DownstreamSpec::new(20, SERVICE)],
        load: LoadSpec::poisson(120.0, MAX_WAIT).burst(secs(20), secs(30), 10.0),
        duration: secs(60),
        converge: vec![(secs(20), secs(30))],
        steady: vec![
            (secs(10), secs(20)),
            (secs(25), secs(30)),
            (secs(45), secs(60)),
        ],
        seed: 6,
    }
}

/// Two services behind one limiter, their capacities 10× apart (5 and 50 servers, both
/// 100 ms): the calls alternate between them, 200 req/s in all, so the small one is 2×
/// overloaded and the large one at a fifth of its capacity. One limit cannot suit both:
/// the case per-key limits (`key`) are for. The ideal shown is the sum, 55.
#[must_use]
pub fn two_services() -> Scenario {
    Scenario {
        name: "two-services",
        about: "5 and 50 servers behind one limiter, calls alternate, FIFO queues; 200 req/s",
        downstreams: vec![
            DownstreamSpec::new(5, SERVICE),
            DownstreamSpec::new(50, SERVICE),
        ],
        load: LoadSpec::poisson(200.0, MAX_WAIT),
        duration: secs(60),
        converge: vec![(Duration::ZERO, secs(60))],
        steady: vec![(secs(30), secs(60))],
        seed: 7,
    }
}

/// The smoke scenario for CI: the hard limit of 5 for 10 s (about 750 calls).
#[must_use]
pub fn quick() -> Scenario {
    Scenario {
        name: "quick",
        duration: secs(10),
        converge: vec![(Duration::ZERO, secs(10))],
        steady: vec![(secs(5), secs(10))],
        ..hard_limit()
    }
}
