//! `h2fw bench`: prints, in one run, the component-versus-native table.

use std::time::Duration;

use super::{Calls, Corpus, Side, median};

/// Options of `h2fw bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Run only these workloads (all when absent).
    #[arg(long = "workload", value_enum)]
    pub workloads: Vec<Workload>,
    /// Runs per side (native, component) of every workload; each side reports its median run.
    #[arg(long, default_value_t = 8)]
    pub rounds: usize,
    /// 16 MiB units of body per DATA run (8 × 8 rounds = 1 GiB per side and frame size).
    #[arg(long, default_value_t = 8)]
    pub data_units: usize,
    /// Messages per small-frame run.
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Bytes per small message (a gRPC length prefix plus a small protobuf).
    #[arg(long, default_value_t = 128)]
    pub message_bytes: usize,
    /// Messages per `send-batch` call in the batched small-frame run.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Header blocks per connection of the HPACK corpus (six connections).
    #[arg(long, default_value_t = 200)]
    pub corpus_messages: usize,
}

/// The workloads of the table, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// DATA in 16 KiB frames, a frame's worth per write: `frame-in-place`, `send-and-drain`, and `send` + `drain`.
    Data16k,
    /// DATA in 1 MiB frames, likewise.
    Data1m,
    /// The HPACK corpus: one `write_headers` plus one `drain` per block.
    Headers,
    /// Small messages, one write each: `frame-in-place`, `send-and-drain`, and `send` + `drain`.
    Small,
    /// Small messages: one `send-batch` plus one `drain` per batch.
    SmallBatch,
}

/// Body bytes per DATA unit, as in `benches/data.rs`.
const UNIT: usize = 16 << 20;
/// The ways of writing body bytes the DATA and small-frame rows compare.
const CALLS: [Calls; 3] = [Calls::FrameInPlace, Calls::SendAndDrain, Calls::SendThenDrain];
/// Streams the small messages are spread over.
const SMALL_STREAMS: u32 = 16;

/// One row of the table: the work one run does, and each side's median time.
struct Row {
    workload: String,
    unit: &'static str,
    /// Units of work per run (bytes in GiB, thousands of blocks, frames).
    amount: f64,
    /// `true` for rates (amount per second), `false` for costs (ns per amount).
    rate: bool,
    native: Duration,
    component: Duration,
}

impl Row {
    fn value(&self, time: Duration) -> f64 {
        if self.rate { self.amount / time.as_secs_f64() } else { time.as_secs_f64() * 1e9 / self.amount }
    }
}

/// Runs the chosen workloads on both sides and prints the table.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rounds > 0 && args.data_units > 0 && args.messages > 0 && args.batch > 0 && args.batch <= args.messages,
        "rounds, units, messages and batch must be positive, and batch at most messages"
    );
    let chosen = |workload| args.workloads.is_empty() || args.workloads.contains(&workload);
    let body: Vec<u8> = (0..UNIT as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let corpus = Corpus::generate(args.corpus_messages);
    let message = vec![0x2a; args.message_bytes];
    let data_gib = (UNIT * args.data_units) as f64 / (1u64 << 30) as f64;

    let mut rows = Vec::new();
    for (workload, frame_size, label) in
        [(Workload::Data16k, 16usize << 10, "16 KiB"), (Workload::Data1m, 1 << 20, "1 MiB")]
    {
        for calls in CALLS.into_iter().filter(|_| chosen(workload)) {
            let (native, component) =
                measure(args.rounds, |side| super::data(side, calls, &body, frame_size, args.data_units))?;
            rows.push(Row {
                workload: format!("DATA, {label} frames: {} per frame", calls.label()),
                unit: "GiB/s",
                amount: data_gib,
                rate: true,
                native,
                component,
            });
        }
    }
    if chosen(Workload::Headers) {
        let (native, component) = measure(args.rounds, |side| super::headers(side, &corpus))?;
        rows.push(Row {
            workload: format!("HEADERS, corpus of {} blocks: write_headers + drain per block", corpus.blocks()),
            unit: "k blocks/s",
            amount: corpus.blocks() as f64 / 1e3,
            rate: true,
            native,
            component,
        });
    }
    for calls in CALLS.into_iter().filter(|_| chosen(Workload::Small)) {
        let (native, component) =
            measure(args.rounds, |side| super::small_frames(side, calls, &message, SMALL_STREAMS, args.messages))?;
        rows.push(Row {
            workload: format!(
                "small frame, {} B on {SMALL_STREAMS} streams: {} per frame",
                args.message_bytes,
                calls.label()
            ),
            unit: "ns/frame",
            amount: args.messages as f64,
            rate: false,
            native,
            component,
        });
    }
    if chosen(Workload::SmallBatch) {
        let (native, component) = measure(args.rounds, |side| {
            super::small_frames_batched(side, &message, SMALL_STREAMS, args.messages, args.batch)
        })?;
        rows.push(Row {
            workload: format!("small frame, {} B: send-batch of {} + one drain", args.message_bytes, args.batch),
            unit: "ns/frame",
            amount: (args.messages / args.batch * args.batch) as f64,
            rate: false,
            native,
            component,
        });
    }
    print_table(args, &rows);
    Ok(())
}

/// Alternates native and component runs of `workload`; returns each side's median.
fn measure(
    rounds: usize,
    mut workload: impl FnMut(Side) -> anyhow::Result<Duration>,
) -> anyhow::Result<(Duration, Duration)> {
    let (mut native_runs, mut component_runs) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        native_runs.push(workload(Side::Native)?);
        component_runs.push(workload(Side::Component)?);
    }
    Ok((median(&mut native_runs), median(&mut component_runs)))
}

fn print_table(args: &BenchArgs, rows: &[Row]) {
    println!("h2fw bench: median of {} alternating runs per side\n", args.rounds);
    println!("| workload | unit | native | component | component / native speed |");
    println!("| --- | --- | --- | --- | --- |");
    for row in rows {
        let speed = row.native.as_secs_f64() / row.component.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {:.2}× |",
            row.workload,
            row.unit,
            sig3(row.value(row.native)),
            sig3(row.value(row.component)),
            speed
        );
    }
}

/// `value` with about three significant digits.
fn sig3(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v => format!("{v:.2}"),
    }
}
