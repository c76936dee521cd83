//! `h2fw proxy` and `h2fw echo-server`.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::echo;
use super::{Proxy, ProxyConfig, UpstreamKind};

/// Options of `h2fw proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Where clients connect (cleartext HTTP/2, prior knowledge).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The HTTP/2 backend.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// Upstream connections in the pool.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Print the statistics line at exit (SIGINT, SIGTERM); SIGUSR1 prints it any time.
    #[arg(long)]
    pub stats: bool,
    /// Which upstream side writes the frames.
    #[arg(long = "upstream-kind", value_enum, default_value_t = UpstreamKind::Component)]
    pub kind: UpstreamKind,
}

/// Options of `h2fw echo-server`.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoArgs {
    /// Where to listen (cleartext HTTP/2, prior knowledge).
    #[arg(long)]
    pub listen: SocketAddr,
}

/// Runs the proxy until SIGINT or SIGTERM. Prints `listening on ADDR` on
/// standard output first, and statistics lines on standard error.
pub fn run(args: &ProxyArgs) -> anyhow::Result<()> {
    let config =
        ProxyConfig { connections: args.connections, kind: args.kind, ..ProxyConfig::new(args.listen, args.upstream) };
    let proxy = Proxy::start(config).context("starting the proxy")?;
    announce(proxy.address())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = usr1.recv() => eprintln!("{}", proxy.stats().await?),
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
            }
        }
        if args.stats {
            eprintln!("{}", proxy.stats().await?);
        }
        anyhow::Ok(())
    })
}

/// Runs the echo backend until killed.
pub fn echo_server(args: &EchoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("{}", args.listen))?;
        announce(listener.local_addr()?)?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            () = echo::serve(listener, None) => {}
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        anyhow::Ok(())
    })
}

/// Tells whoever started us where we listen.
fn announce(address: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {address}")?;
    stdout.flush()?;
    Ok(())
}
