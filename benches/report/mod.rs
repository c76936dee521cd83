//! Keeps every timed sample of a bench run so the bench can print its ratio
//! table at the end (criterion reports each function on its own).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Samples per bench name: `(iterations, elapsed)` of each timed call,
/// criterion's warm-up included.
static SAMPLES: Mutex<BTreeMap<String, Vec<(u64, Duration)>>> = Mutex::new(BTreeMap::new());

/// Runs `iters` iterations, each returning the time of its measured part
/// (taken with [`crate::clock`]),
/// records the sample under `name` and returns the total: the body of a
/// criterion `iter_custom`.
pub fn sample(name: &str, iters: u64, mut iteration: impl FnMut() -> Duration) -> Duration {
    let elapsed = (0..iters).map(|_| iteration()).sum();
    record(name, iters, elapsed);
    elapsed
}

/// Records a sample of `iters` iterations that took `elapsed` under `name`.
pub fn record(name: &str, iters: u64, elapsed: Duration) {
    let mut samples = SAMPLES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    samples.entry(name.to_owned()).or_default().push((iters, elapsed));
}

/// What the run measured for one bench.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Median over samples of the time per iteration, seconds.
    pub seconds_per_iter: f64,
    /// Iterations run, warm-up included.
    pub iterations: u64,
}

/// The measurement of `name`, if it ran in this process.
pub fn measured(name: &str) -> Option<Measured> {
    let samples = SAMPLES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let samples = samples.get(name)?;
    let mut per_iter: Vec<f64> = samples.iter().map(|(iters, elapsed)| elapsed.as_secs_f64() / *iters as f64).collect();
    per_iter.sort_by(f64::total_cmp);
    let seconds_per_iter = *per_iter.get(per_iter.len() / 2)?;
    let iterations = samples.iter().map(|(iters, _)| iters).sum();
    Some(Measured { seconds_per_iter, iterations })
}

/// One unit of work of a path, returning the time of its measured part.
pub type Unit<'a> = Box<dyn FnMut() -> Duration + 'a>;

/// Runs every path's unit once per round, in turn, for `rounds` rounds, and
/// returns per path the median over rounds of its speed relative to the
/// first path in the same round (first path's time / its time). Machine load
/// that drifts over seconds lands on both sides of a round alike, so these
/// ratios hold steadier than ratios of medians taken seconds apart.
///
/// Only the paths criterion measured under `group` run (all, unless a
/// filter left some out), and nothing runs unless the first path, the
/// baseline, is among them with at least one other.
pub fn paired_speeds(group: &str, rounds: usize, mut paths: Vec<(&'static str, Unit<'_>)>) -> Vec<(&'static str, f64)> {
    let baseline = paths.first().map(|(name, _)| *name);
    paths.retain(|(path, _)| measured(&format!("{group}/{path}")).is_some());
    if paths.len() < 2 || paths.first().map(|(name, _)| *name) != baseline {
        return Vec::new();
    }
    let mut speeds = vec![Vec::with_capacity(rounds); paths.len()];
    for _ in 0..rounds {
        let times: Vec<f64> = paths.iter_mut().map(|(_, unit)| unit().as_secs_f64()).collect();
        for (speed, time) in speeds.iter_mut().zip(&times) {
            speed.push(times[0] / time);
        }
    }
    paths
        .iter()
        .zip(speeds)
        .map(|((name, _), mut speed)| {
            speed.sort_by(f64::total_cmp);
            (*name, speed.get(speed.len() / 2).copied().unwrap_or(f64::NAN))
        })
        .collect()
}

/// Prints a Markdown table.
pub fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    println!("\n{title}\n");
    println!("| {} |", header.join(" | "));
    println!("|{}", " --- |".repeat(header.len()));
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
}

/// `value` with three significant digits.
pub fn sig3(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
