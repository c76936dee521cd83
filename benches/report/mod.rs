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
