//! The adaptive simulator's smoke test (CI runs it): the short scenario, twice, gives the
//! same run (determinism); a fixed limit at the capacity gets about the ideal throughput;
//! the table renders. A few seconds in a debug build: about 750 calls per run.

use std::time::Duration;

use limit_suite::sim::harness::{self, Fate, Fixed};
use limit_suite::sim::metrics::measure;
use limit_suite::sim::scenarios::{self, SERVICE};
use limit_suite::sim::table;

#[test]
fn the_same_seed_gives_the_same_run() {
    let scenario = scenarios::quick();
    let first = harness::run(&scenario, Box::new(Fixed(5)));
    let second = harness::run(&scenario, Box::new(Fixed(5)));
    assert!(first.calls.len() > 500, "{} calls", first.calls.len());
    assert_eq!(first, second);
    assert_eq!(measure(&scenario, &first), measure(&scenario, &second));

    for (a, b) in harness::anchors().into_iter().zip(harness::anchors()) {
        let name = a.name();
        let (a, b) = (harness::run(&scenario, a), harness::run(&scenario, b));
        assert!(a == b, "{name}: two runs differ");
    }
}

#[test]
fn a_fixed_limit_at_capacity_gets_the_ideal_throughput() {
    let scenario = scenarios::quick();
    let capacity = scenario.capacity(Duration::ZERO);
    let ideal = capacity as f64 / SERVICE.as_secs_f64();
    let run = harness::run(&scenario, Box::new(Fixed(capacity)));
    let m = measure(&scenario, &run);
    // The first call arrives after a gap and the last ones are still running at the end.
    assert!(
        m.throughput >= 0.95 * ideal && m.throughput <= ideal,
        "{m:?}"
    );
    // The limit never moved, and the calls waited for the limiter, not the downstream:
    // every served call took one service time once admitted, so at most max_wait + 1 RTT.
    assert_eq!(run.limits, vec![(Duration::ZERO, capacity)]);
    let max = scenario.load.max_wait + SERVICE;
    for call in run.calls.iter().filter(|c| c.fate == Fate::Served) {
        assert!(call.latency() <= max, "{call:?}");
    }
    // Overloaded 1.5x: about a third give up waiting.
    assert!((0.2..0.45).contains(&m.refused), "{m:?}");
    // Half the capacity, half the throughput.
    let half = measure(
        &scenario,
        &harness::run(&scenario, Box::new(Fixed(capacity / 2))),
    );
    assert!(half.throughput < 0.6 * m.throughput, "{half:?}");
}

#[test]
fn the_table_renders() {
    let scenario = scenarios::quick();
    let sweep: Vec<_> = [2, 5, 10]
        .into_iter()
        .map(|limit| {
            (
                limit,
                measure(&scenario, &harness::run(&scenario, Box::new(Fixed(limit)))),
            )
        })
        .collect();
    let anchors: Vec<_> = harness::anchors()
        .into_iter()
        .map(|c| measure(&scenario, &harness::run(&scenario, c)))
        .collect();
    let rows = table::rows(&scenario, &sweep, &[5], &anchors);
    assert_eq!(rows.len(), 1 + anchors.len(), "{rows:?}");
    assert_eq!(rows[0].contender, "fixed-5 (oracle)");
    assert!(rows[0].pass);
    let text = table::render(&rows);
    assert!(
        text.starts_with("| scenario | contender | throughput |"),
        "{text}"
    );
    assert!(
        text.contains("| quick | fixed-5 (oracle) | 1.000 |"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2 + rows.len(), "{text}");
}
