//! The adaptive-limit simulator's table and plots: every scenario of
//! `limit_suite::sim::scenarios` against every fixed limit of its sweep and every anchor,
//! each run on tokio's paused clock with the scenario's seed, so the table is the same bytes
//! on every run. Writes one SVG per scenario to `docs/adaptive/<scenario>.svg`.
//!
//! ```text
//! cargo bench --bench adaptive                      # everything
//! cargo bench --bench adaptive -- capacity-drop     # one scenario (or several)
//! cargo bench --bench adaptive -- --quick           # the smoke scenario, no plots
//! cargo bench --bench adaptive -- --all-fixed       # every fixed limit of the sweeps in the table
//! cargo bench --bench adaptive -- --no-plots        # the table only
//! ```
//!
//! The runs are independent, so they are spread over the machine's cores; each is
//! deterministic on its own and the table is assembled in a fixed order.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use limit_suite::sim::Controller;
use limit_suite::sim::harness::{self, Fixed};
use limit_suite::sim::metrics::{self, Measured};
use limit_suite::sim::scenarios::{self, Scenario};
use limit_suite::sim::table::{self, DEFINITIONS};
use plotters::prelude::*;

/// One run to do: a scenario and a contender (a fixed limit, or the anchor at an index of
/// `harness::anchors()`; made inside the worker, as controllers need not be `Send`).
#[derive(Clone, Copy)]
enum Contender {
    Fixed(usize),
    Anchor(usize),
}

struct Job {
    scenario: usize,
    contender: Contender,
    /// The expected number of arrivals, to start the longest runs first.
    cost: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let quick = flag("--quick");
    let all_fixed = flag("--all-fixed");
    let plots = !quick && !flag("--no-plots");
    // `cargo bench` passes `--bench`; every other argument that is not a flag names a
    // scenario.
    let names: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let scenarios: Vec<Scenario> = if quick {
        vec![scenarios::quick()]
    } else if names.is_empty() {
        scenarios::all()
    } else {
        names
            .iter()
            .map(|name| {
                scenarios::by_name(name).unwrap_or_else(|| {
                    let known: Vec<&str> = scenarios::all().iter().map(|s| s.name).collect();
                    panic!("no scenario {name:?}; known: {}, quick", known.join(", "))
                })
            })
            .collect()
    };

    // Wall time, for the last line only: nothing in a run reads it.
    let wall = Instant::now();
    let anchors = harness::anchors().len();
    let mut jobs = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let cost = scenario.load.rate * scenario.duration.as_secs_f64();
        for limit in scenario.sweep() {
            jobs.push(Job {
                scenario: index,
                contender: Contender::Fixed(limit),
                cost,
            });
        }
        for anchor in 0..anchors {
            jobs.push(Job {
                scenario: index,
                contender: Contender::Anchor(anchor),
                cost,
            });
        }
    }
    let measured = run_all(&scenarios, &jobs);

    let mut rows = Vec::new();
    let mut plotted = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let mut sweep = Vec::new();
        let mut contenders = Vec::new();
        for (job, m) in jobs.iter().zip(&measured) {
            if job.scenario != index {
                continue;
            }
            match job.contender {
                Contender::Fixed(limit) => sweep.push((limit, m.clone())),
                Contender::Anchor(_) => contenders.push(m.clone()),
            }
        }
        let shown = if all_fixed {
            sweep.iter().map(|&(limit, _)| limit).collect()
        } else {
            // The ideal at the start, beside the oracle.
            vec![scenario.capacity(std::time::Duration::ZERO)]
        };
        let scenario_rows = table::rows(scenario, &sweep, &shown, &contenders);
        let oracle = sweep
            [table::oracle(&sweep.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>())]
        .1
        .clone();
        rows.extend(scenario_rows);
        plotted.push((oracle, contenders));
    }

    println!("{}", table::render(&rows));
    println!("Definitions:\n{DEFINITIONS}\n");
    println!("Scenarios:");
    for scenario in &scenarios {
        println!(
            "- {}: {} (sweep: {:?})",
            scenario.name,
            scenario.about,
            scenario.sweep()
        );
    }
    if anchors == 0 {
        println!("\n(no anchors yet: `limit_suite::sim::harness::anchors()` is empty)");
    }

    if plots {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/adaptive");
        std::fs::create_dir_all(&dir).expect("docs/adaptive");
        for (scenario, (oracle, contenders)) in scenarios.iter().zip(&plotted) {
            let path = dir.join(format!("{}.svg", scenario.name));
            plot(&path, scenario, oracle, contenders).expect("the plot is drawn");
            println!(
                "wrote {}",
                path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap_or(&path)
                    .display()
            );
        }
    }
    println!(
        "\n{} runs in {:.1} s (wall time)",
        jobs.len(),
        wall.elapsed().as_secs_f64()
    );
}

/// Runs every job on the machine's cores, the longest first; the results in job order.
fn run_all(scenarios: &[Scenario], jobs: &[Job]) -> Vec<Measured> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| jobs[b].cost.total_cmp(&jobs[a].cost).then(a.cmp(&b)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Measured>>> = Mutex::new(vec![None; jobs.len()]);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let taken = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = order.get(taken) else {
                        break;
                    };
                    let job = &jobs[index];
                    let scenario = &scenarios[job.scenario];
                    let controller: Box<dyn Controller> = match job.contender {
                        Contender::Fixed(limit) => Box::new(Fixed(limit)),
                        Contender::Anchor(i) => harness::anchors().swap_remove(i),
                    };
                    let run = harness::run(scenario, controller);
                    let m = metrics::measure(scenario, &run);
                    results.lock().expect("no worker panicked")[index] = Some(m);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|m| m.expect("every job ran"))
        .collect()
}

/// The colours of the contenders, in the table's order (the oracle is grey, the capacity
/// black).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(150, 150, 150);

/// One scenario's plot: each contender's limit over time against the capacity, and the
/// p99 latency per time bucket below.
fn plot(
    path: &Path,
    scenario: &Scenario,
    oracle: &Measured,
    contenders: &[Measured],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);
    let end = scenario.duration.as_secs_f64();
    let capacity = scenario.max_capacity() as f64;

    let lines: Vec<(&Measured, RGBColor)> = std::iter::once((oracle, GREY))
        .chain(contenders.iter().zip(COLORS.iter().cycle().copied()))
        .collect();

    // A limit that runs away is cut at 3× the largest capacity: the shape near the
    // capacity is what matters.
    let ceiling = 3.0 * capacity;
    let highest = lines
        .iter()
        .flat_map(|(m, _)| m.limit_series.iter().map(|&(_, l)| l as f64))
        .fold(capacity, f64::max)
        .min(ceiling);
    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{}: {}", scenario.name, scenario.about),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, 0.0..highest * 1.1)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("time (s)")
        .y_desc(format!("limit (cut at {ceiling:.0})"))
        .draw()?;
    let capacity_line: Vec<(f64, f64)> = oracle
        .limit_series
        .iter()
        .map(|&(t, _)| {
            (
                t,
                scenario.capacity(std::time::Duration::from_secs_f64(t)) as f64,
            )
        })
        .collect();
    chart
        .draw_series(LineSeries::new(capacity_line, BLACK.stroke_width(3)))?
        .label("capacity")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
    for (i, &(m, color)) in lines.iter().enumerate() {
        let points = m
            .limit_series
            .iter()
            .map(|&(t, l)| (t, (l as f64).min(ceiling)));
        let label = if i == 0 {
            format!("{} (oracle)", m.contender)
        } else {
            m.contender.clone()
        };
        // Thin lines: an oscillating limit is a band, and the bands overlap.
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let worst = lines
        .iter()
        .flat_map(|(m, _)| m.p99_series.iter().map(|&(_, p)| p))
        .fold(2.0, f64::max);
    let mut latency = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end, (0.5..worst * 1.5).log_scale())?;
    latency
        .configure_mesh()
        .light_line_style(WHITE)
        .y_labels(5)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .x_desc("time (s)")
        .y_desc("p99 latency per bucket (RTTs, log)")
        .draw()?;
    for &(m, color) in &lines {
        latency.draw_series(LineSeries::new(
            m.p99_series.iter().copied(),
            color.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}
