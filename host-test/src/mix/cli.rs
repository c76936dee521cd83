//! `h2fw stream-mix`: runs named mixes under each pool policy and prints a
//! table (or JSON lines), optionally a plot of linear memory over each run.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use clap::builder::PossibleValue;

use super::plot::{self, Chart, Series};
use super::{Hosting, POLICIES, Scenario, Sizes, Trace, Writers, fleet, play};
use crate::writer::Policy;

/// Arguments of `h2fw stream-mix`. The default (no arguments) is the
/// project's main demonstration: `seed` and `fleet` under every policy.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct StreamMixArgs {
    /// Scenarios to run, in order (`all`: every one-connection scenario) [default: seed fleet]
    #[arg(value_enum)]
    pub scenarios: Vec<ScenarioArg>,
    /// Pool policy to run each scenario under.
    #[arg(long, value_enum, default_value_t = PolicyArg::All)]
    pub policy: PolicyArg,
    /// Print one JSON object per (scenario, policy) line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw linear memory over each run, per policy, into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Drive the native library instead of the component (no linear memory).
    #[arg(long)]
    pub native: bool,
    /// Component instances: one holding every connection, or one per connection.
    #[arg(long, value_enum, default_value_t = HostingArg::Shared)]
    pub hosting: HostingArg,
    /// Scale every scenario's counts and sizes (1 = the named sizes).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

impl Default for StreamMixArgs {
    fn default() -> Self {
        StreamMixArgs {
            scenarios: Vec::new(),
            policy: PolicyArg::All,
            json: false,
            plot: None,
            native: false,
            hosting: HostingArg::Shared,
            scale: 1.0,
        }
    }
}

/// A scenario named on the command line, `fleet`, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioArg {
    /// One scenario of one connection.
    One(Scenario),
    /// Many connections (see [`super::fleet`]).
    Fleet,
    /// Every one-connection scenario.
    All,
}

/// What one row of the table ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    One(Scenario),
    Fleet,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::One(scenario) => scenario.name(),
            Run::Fleet => "fleet",
        }
    }
}

/// The `--hosting` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostingArg {
    /// One instance holds every connection of a run, with one pool.
    Shared,
    /// One instance (and pool) per connection.
    PerConnection,
}

impl ValueEnum for ScenarioArg {
    fn value_variants<'a>() -> &'a [Self] {
        use Scenario::*;
        &[
            ScenarioArg::One(GrpcIdle),
            ScenarioArg::One(GrpcChatty),
            ScenarioArg::One(UploadBurst),
            ScenarioArg::One(Seed),
            ScenarioArg::One(Adversarial),
            ScenarioArg::Fleet,
            ScenarioArg::All,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            ScenarioArg::One(scenario) => scenario.name(),
            ScenarioArg::Fleet => "fleet",
            ScenarioArg::All => "all",
        }))
    }
}

/// The `--policy` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Power-of-two classes, capped idle caches (h2fw).
    Tiered,
    /// Go after CL 508415: seven classes, per-stream scratch.
    Go7,
    /// Go before CL 508415: one global pool.
    Single,
    /// All three.
    All,
}

impl PolicyArg {
    fn policies(self) -> Vec<Policy> {
        match self {
            PolicyArg::Tiered => vec![Policy::Tiered],
            PolicyArg::Go7 => vec![Policy::Go7],
            PolicyArg::Single => vec![Policy::Single],
            PolicyArg::All => POLICIES.to_vec(),
        }
    }
}

/// One finished (scenario, policy) run.
struct Row {
    scenario: Run,
    policy: Policy,
    hosting: Hosting,
    trace: Trace,
}

/// Runs the mixes `args` names and prints their figures. Fails after
/// printing everything if a run broke for a reason other than a baseline
/// policy running out of memory.
pub fn run(args: &StreamMixArgs) -> anyhow::Result<()> {
    let mut scenarios = Vec::new();
    for arg in &args.scenarios {
        match arg {
            ScenarioArg::One(scenario) => scenarios.push(Run::One(*scenario)),
            ScenarioArg::Fleet => scenarios.push(Run::Fleet),
            ScenarioArg::All => scenarios.extend(Scenario::ALL.map(Run::One)),
        }
    }
    if scenarios.is_empty() {
        scenarios.extend([Run::One(Scenario::Seed), Run::Fleet]);
    }
    let hosting = match (args.native, args.hosting) {
        (true, _) => Hosting::Native,
        (false, HostingArg::Shared) => Hosting::Shared,
        (false, HostingArg::PerConnection) => Hosting::PerConnection,
    };
    anyhow::ensure!(
        args.scale > 0.0 && args.scale.is_finite(),
        "--scale must be a positive number, got {}",
        args.scale
    );
    let sizes = Sizes::scaled(args.scale);

    let mut stdout = std::io::stdout().lock();
    if !args.json {
        writeln!(stdout, "{}", table_header())?;
    }
    let mut rows = Vec::new();
    for &scenario in &scenarios {
        for policy in args.policy.policies() {
            let trace = match scenario {
                Run::One(one) => {
                    let mut writer = Writers::new(policy, hosting)?.connect().context("instantiating the component")?;
                    play(one, &sizes, writer.as_mut())
                }
                Run::Fleet => fleet::play(policy, hosting, &sizes).context("setting up the fleet")?,
            };
            let row = Row { scenario, policy, hosting, trace };
            let line = if args.json { serde_json::to_string(&json_row(&row, args.native))? } else { table_row(&row) };
            writeln!(stdout, "{line}")?;
            stdout.flush()?;
            rows.push(row);
        }
    }
    if !args.json {
        for row in rows.iter().filter(|row| !row.trace.marks.is_empty()) {
            let marks: Vec<String> = row
                .trace
                .marks
                .iter()
                .map(|mark| {
                    format!(
                        "{} {}",
                        mark.label,
                        size(mark.sample.linear_memory.unwrap_or(mark.sample.pool_bytes) as u64)
                    )
                })
                .collect();
            let what = if args.native { "pool bytes" } else { "linear memory" };
            writeln!(stdout, "{}/{} {what} at: {}", row.scenario.name(), row.policy.name(), marks.join(", "))?;
        }
    }
    if let Some(path) = &args.plot {
        let charts: Vec<Chart> = scenarios.iter().map(|&scenario| chart(scenario, &rows, args.native)).collect();
        std::fs::write(path, plot::svg(&charts)).with_context(|| format!("writing {}", path.display()))?;
    }
    let broken: Vec<String> = rows
        .iter()
        .filter(|row| row.trace.error.is_some() && !(row.policy != Policy::Tiered && row.trace.memory_exhausted()))
        .map(|row| format!("{}/{}", row.scenario.name(), row.policy.name()))
        .collect();
    anyhow::ensure!(broken.is_empty(), "runs failed: {}", broken.join(", "));
    Ok(())
}

/// A byte count for the table, in the largest binary unit that keeps it ≥ 1.
fn size(bytes: u64) -> String {
    plot::bytes_rounded(bytes as f64)
}

fn optional_size(bytes: Option<usize>) -> String {
    bytes.map_or_else(|| "-".to_string(), |b| size(b as u64))
}

fn table_header() -> String {
    format!(
        "{:<13} {:<7} {:>5} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>11} {:>12} {:>8}  error",
        "scenario",
        "policy",
        "conns",
        "streams",
        "frames",
        "wire",
        "peak live",
        "peak pool",
        "idle pool",
        "peak linear",
        "final linear",
        "seconds"
    )
}

fn table_row(row: &Row) -> String {
    let t = &row.trace;
    format!(
        "{:<13} {:<7} {:>5} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>11} {:>12} {:>8.1}  {}",
        row.scenario.name(),
        row.policy.name(),
        t.connections,
        t.streams,
        t.frames,
        size(t.wire_bytes),
        size(t.peak_live_bytes as u64),
        size(t.peak_pool_bytes as u64),
        size(t.idle_pool_bytes as u64),
        optional_size(t.peak_linear_memory),
        optional_size(t.final_linear_memory),
        t.seconds,
        t.error.as_ref().map_or_else(|| "-".to_string(), ToString::to_string),
    )
}

/// The `--json` line of a run.
fn json_row(row: &Row, native: bool) -> serde_json::Value {
    let t = &row.trace;
    serde_json::json!({
        "scenario": row.scenario.name(),
        "policy": row.policy.name(),
        "writer": if native { "native" } else { "component" },
        "streams": t.streams,
        "peak_open_streams": t.peak_open_streams,
        "frames": t.frames,
        "bytes_out": t.wire_bytes,
        "peak_live_bytes": t.peak_live_bytes,
        "peak_pool_bytes": t.peak_pool_bytes,
        "peak_linear_memory": t.peak_linear_memory,
        "final_linear_memory": t.final_linear_memory,
        "seconds": t.seconds,
        "error": t.error.as_ref().map(ToString::to_string),
        "memory_exhausted": t.memory_exhausted(),
        "marks": t.marks,
        "connections": t.connections,
        "hosting": row.hosting.name(),
        "idle_pool_bytes": t.idle_pool_bytes,
    })
}

fn color(policy: Policy) -> &'static str {
    match policy {
        Policy::Tiered => "#1b9e77",
        Policy::Go7 => "#d95f02",
        Policy::Single => "#7570b3",
    }
}

/// The chart of one scenario: memory against wire bytes, one line per policy,
/// plus the tiered run's live bytes (dashed) for reference.
fn chart(scenario: Run, rows: &[Row], native: bool) -> Chart {
    let mut series = Vec::new();
    let runs = rows.iter().filter(|row| row.scenario == scenario);
    for row in runs.clone() {
        let t = &row.trace;
        let memory = |s: &super::Sample| if native { s.pool_bytes } else { s.linear_memory.unwrap_or(0) };
        let peak = if native { t.peak_pool_bytes } else { t.peak_linear_memory.unwrap_or(0) };
        let ending = if t.memory_exhausted() {
            ", out of memory"
        } else if t.error.is_some() {
            ", failed"
        } else {
            ""
        };
        series.push(Series {
            label: format!("{} (peak {}{ending})", row.policy.name(), plot::bytes_rounded(peak as f64)),
            color: color(row.policy),
            dashed: false,
            cross_at_end: t.error.is_some(),
            points: t.samples.iter().map(|s| (s.wire_bytes as f64 / (1 << 20) as f64, memory(s) as f64)).collect(),
        });
    }
    if let Some(tiered) = runs.clone().find(|row| row.policy == Policy::Tiered).or(runs.clone().next()) {
        series.push(Series {
            label: format!("live bytes ({})", tiered.policy.name()),
            color: "#888888",
            dashed: true,
            cross_at_end: false,
            points: tiered
                .trace
                .samples
                .iter()
                .map(|s| (s.wire_bytes as f64 / (1 << 20) as f64, s.live_bytes as f64))
                .collect(),
        });
    }
    Chart {
        title: format!(
            "{}: {} per policy",
            scenario.name(),
            if native { "pool bytes (native)" } else { "linear memory" }
        ),
        x_label: "wire bytes written (MiB)".into(),
        y_label: if native { "pool bytes (log scale)" } else { "linear memory (log scale)" }.into(),
        series,
    }
}
