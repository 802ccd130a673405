//! The table: each contender's measured run compared with the oracle of its scenario, and
//! the score. The definitions, which the bench prints under the table, are [`DEFINITIONS`].
//!
//! - **Throughput**: calls served per second over the whole run (the warm-up included: a
//!   slow ramp costs), as a fraction of the oracle's.
//! - **p50, p99**: the client-side latency of the served calls, from the caller's arrival
//!   to the call's end, the wait in the limiter included (what users feel), as multiples of
//!   the unloaded service time (100 ms). A call still running at the end counts with its
//!   age; calls refused by the limiter (their caller gave up after `max_wait`) or by the
//!   downstream (a 503) are counted apart, not in the latency.
//! - **Limit CV**: the time-weighted coefficient of variation (standard deviation over
//!   mean) of the limit in each steady-state window of the scenario (the second half of
//!   each phase, see `scenarios.rs`); the largest is shown.
//! - **RTTs to converge**: for each phase that starts with a change (or the start of the
//!   run) and is overloaded, the first time after the change from which the limit stays
//!   within ±10% (at least ±1) of the new ideal (the capacity: servers behind the limiter)
//!   to the end of the phase, in unloaded RTTs (100 ms); "never" if it does not.
//! - **Score**: a contender *passes* when its throughput is at least 0.95 of the oracle's
//!   **and** its p99 at most 1.5× the oracle's. Passes rank above failures; within each,
//!   the higher throughput ranks first.
//! - **Oracle**: the best fixed limit of the scenario's sweep by the same score, judged
//!   against the sweep itself: a fixed limit passes when its throughput is at least 0.95
//!   of the sweep's best and its p99 at most 1.5× the lowest p99 among those; the oracle is
//!   the passing one with the highest throughput, where throughputs within 1% of the best
//!   passing one count as equal and the lower p99 wins.

use std::cmp::Ordering;
use std::fmt::Write as _;

use super::metrics::Measured;
use super::scenarios::Scenario;

/// The definitions, as printed under the table.
pub const DEFINITIONS: &str = "\
- throughput: calls served per second over the whole run (warm-up included), as a fraction of the oracle's.
- p50, p99: client-side latency of served calls, from arrival to end (the wait in the limiter included), \
in unloaded service times (100 ms); a call still running at the end counts with its age; refused and dropped calls are counted apart.
- limit CV: time-weighted standard deviation / mean of the limit in each steady-state window \
(the second half of each phase); the largest is shown.
- RTTs to converge: per overloaded phase (the start, or a change of capacity or load), the first time from which the limit \
stays within ±10% (at least ±1) of the new ideal (the capacity) to the end of the phase, in unloaded RTTs; never if it does not.
- refused: arrivals whose caller gave up after waiting max_wait (1 RTT) in the limiter; dropped: arrivals the downstream refused (503).
- score: pass = throughput >= 0.95 x the oracle's AND p99 <= 1.5 x the oracle's; passes rank first, then by throughput.
- oracle: the best fixed limit of the sweep by the same score, judged against the sweep \
(throughput >= 0.95 x the sweep's best, p99 <= 1.5 x the lowest p99 among those); the highest throughput wins, \
within 1% the lower p99.";

/// The share of the reference throughput a pass needs.
pub const THROUGHPUT_BAR: f64 = 0.95;
/// The multiple of the reference p99 a pass may reach.
pub const P99_BAR: f64 = 1.5;

/// Whether `m` passes against a reference throughput and p99.
#[must_use]
pub fn passes(m: &Measured, throughput: f64, p99: f64) -> bool {
    m.throughput >= THROUGHPUT_BAR * throughput && m.p99 <= P99_BAR * p99
}

/// The index of the oracle in a sweep of fixed limits (see the module's definitions).
///
/// # Panics
///
/// If `sweep` is empty.
#[must_use]
pub fn oracle(sweep: &[Measured]) -> usize {
    let best = sweep.iter().map(|m| m.throughput).fold(0.0, f64::max);
    let p99 = sweep
        .iter()
        .filter(|m| m.throughput >= THROUGHPUT_BAR * best)
        .map(|m| m.p99)
        .fold(f64::INFINITY, f64::min);
    let passing: Vec<usize> = (0..sweep.len())
        .filter(|&i| passes(&sweep[i], best, p99))
        .collect();
    let top = passing
        .iter()
        .map(|&i| sweep[i].throughput)
        .fold(0.0, f64::max);
    passing
        .into_iter()
        .filter(|&i| sweep[i].throughput >= 0.99 * top)
        .min_by(|&a, &b| sweep[a].p99.total_cmp(&sweep[b].p99).then(a.cmp(&b)))
        .expect("a sweep has a fixed limit within 0.95 of its best throughput")
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The scenario's name.
    pub scenario: String,
    /// The contender's name, with " (oracle)" for the oracle.
    pub contender: String,
    /// Throughput over the oracle's.
    pub throughput: f64,
    /// The measured run.
    pub measured: Measured,
    /// Whether it passes against the oracle.
    pub pass: bool,
    /// Why not, when it does not: "throughput", "p99" or both.
    pub failed_on: String,
}

/// The rows of one scenario: the oracle (from `sweep`), the fixed limits of `shown` (by
/// limit, e.g. the capacity), and `contenders`, ranked by score.
#[must_use]
pub fn rows(
    scenario: &Scenario,
    sweep: &[(usize, Measured)],
    shown: &[usize],
    contenders: &[Measured],
) -> Vec<Row> {
    let measured: Vec<Measured> = sweep.iter().map(|(_, m)| m.clone()).collect();
    let index = oracle(&measured);
    let reference = &measured[index];
    let row = |m: &Measured, is_oracle: bool| {
        let throughput_ok = m.throughput >= THROUGHPUT_BAR * reference.throughput;
        let p99_ok = m.p99 <= P99_BAR * reference.p99;
        let failed_on = match (throughput_ok, p99_ok) {
            (true, true) => String::new(),
            (false, true) => "throughput".to_owned(),
            (true, false) => "p99".to_owned(),
            (false, false) => "throughput, p99".to_owned(),
        };
        Row {
            scenario: scenario.name.to_owned(),
            contender: if is_oracle {
                format!("{} (oracle)", m.contender)
            } else {
                m.contender.clone()
            },
            throughput: if reference.throughput > 0.0 {
                m.throughput / reference.throughput
            } else {
                0.0
            },
            measured: m.clone(),
            pass: failed_on.is_empty(),
            failed_on,
        }
    };
    let mut out = vec![row(reference, true)];
    for (i, (limit, m)) in sweep.iter().enumerate() {
        if i != index && shown.contains(limit) {
            out.push(row(m, false));
        }
    }
    out.extend(contenders.iter().map(|m| row(m, false)));
    out.sort_by(rank);
    out
}

/// Passes first, then higher throughput, then the name (so the order is total).
fn rank(a: &Row, b: &Row) -> Ordering {
    b.pass
        .cmp(&a.pass)
        .then(b.throughput.total_cmp(&a.throughput))
        .then_with(|| a.contender.cmp(&b.contender))
}

fn converge_text(converge: &[Option<f64>]) -> String {
    let parts: Vec<String> = converge
        .iter()
        .map(|c| c.map_or_else(|| "never".to_owned(), |rtts| format!("{rtts:.0}")))
        .collect();
    parts.join(" / ")
}

/// The table in markdown, one row per scenario and contender. The same rows give the same
/// bytes.
#[must_use]
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | contender | throughput | p50 | p99 | limit CV | RTTs to converge | refused | dropped | score |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in rows {
        let m = &r.measured;
        let score = if r.pass {
            "pass".to_owned()
        } else {
            format!("fail ({})", r.failed_on)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.2} | {:.2} | {:.3} | {} | {:.1}% | {:.1}% | {} |",
            r.scenario,
            r.contender,
            r.throughput,
            m.p50,
            m.p99,
            m.cv,
            converge_text(&m.converge),
            100.0 * m.refused,
            100.0 * m.dropped,
            score,
        );
    }
    out
}
