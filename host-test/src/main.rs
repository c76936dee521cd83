//! `h2fw`: encodes frame scripts through the h2fw component (or the native
//! library) and runs stream mixes. Without a subcommand it runs `stream-mix`
//! with its defaults (the seed scenario under every policy).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use h2fw::conn::{Config, Connection};
use h2fw::pool::{Pool, PoolConfig};
use h2fw_host::mix::cli::{self as mix, StreamMixArgs};
use h2fw_host::proxy::cli::ProxyArgs;
use h2fw_host::proxy::heap::CountingAllocator;
use h2fw_host::runtime::ComponentWriter;
use h2fw_host::script;
use h2fw_host::writer::Writer;

/// Counts the heap the proxy's upstream side holds (`proxy-bench`); otherwise the system allocator.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// HTTP/2 frame writer with a tiered buffer pool, run as a WebAssembly component.
#[derive(Parser)]
#[command(name = "h2fw", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Encode a frame script (JSON Lines, docs/frame-script.md) into wire bytes.
    Encode(EncodeArgs),
    /// Run stream mixes under each pool policy and report memory (the default).
    StreamMix(StreamMixArgs),
    /// Component-versus-native benchmark table (BENCHMARKS.md).
    Bench(h2fw_host::bench::cli::BenchArgs),
    /// HTTP/2 reverse proxy whose upstream frames the component writes.
    Proxy(ProxyArgs),
    /// The proxy beside the same proxy over hyper's client: throughput and memory table.
    ProxyBench(h2fw_host::proxy::bench::ProxyBenchArgs),
    /// HTTP/2 echo backend for the proxy (bodies and trailers streamed back).
    EchoServer(h2fw_host::proxy::cli::EchoArgs),
}

#[derive(clap::Args)]
struct EncodeArgs {
    /// The script to encode (`-` reads standard input).
    script: PathBuf,
    /// Where to write the bytes (standard output when absent).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Encode with the native library instead of the component.
    #[arg(long)]
    native: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Encode(args)) => encode(args),
        Some(Command::StreamMix(args)) => mix::run(args),
        Some(Command::Bench(args)) => h2fw_host::bench::cli::run(args),
        Some(Command::Proxy(args)) => h2fw_host::proxy::cli::run(args),
        Some(Command::ProxyBench(args)) => h2fw_host::proxy::bench::run(args),
        Some(Command::EchoServer(args)) => h2fw_host::proxy::cli::echo_server(args),
        None => mix::run(&StreamMixArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("h2fw: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn encode(args: &EncodeArgs) -> anyhow::Result<()> {
    let config = Config::default();
    let mut writer: Box<dyn Writer> = if args.native {
        Box::new(Connection::new(config, &Pool::default()))
    } else {
        Box::new(ComponentWriter::new(&config, &PoolConfig::default(), None)?)
    };
    let input: Box<dyn io::BufRead> = if args.script.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.script).with_context(|| format!("cannot open {}", args.script.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut output: BufWriter<Box<dyn Write>> = BufWriter::new(match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(io::stdout().lock()),
    });
    script::run(input, writer.as_mut(), &mut output).with_context(|| format!("{}", args.script.display()))?;
    Ok(())
}
