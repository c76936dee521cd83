//! nghttp2's tools as real peers: `nghttpd` (Debian `nghttp2-server`) as a
//! backend and `h2load` (Debian `nghttp2-client`) as a load generator. Each
//! runs on loopback, bounded in requests and time, and is killed when its
//! handle drops.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why a tool could not be run, or what it reported.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("`{program}` is not installed (Debian package {package}; .ci/run installs it)")]
    Missing {
        /// The program.
        program: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// It could not be started or watched.
    #[error("{program}: {message}")]
    Run {
        /// The program.
        program: &'static str,
        /// What failed.
        message: String,
    },
    /// It did not finish in time.
    #[error("{program} did not finish within {seconds} s")]
    Timeout {
        /// The program.
        program: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// Its report could not be read.
    #[error("cannot read h2load's report ({what}):\n{output}")]
    Report {
        /// The line or figure that was missing.
        what: &'static str,
        /// Everything it printed.
        output: String,
    },
}

/// Finds `program` on PATH (or in /usr/sbin, where Debian puts nghttpd).
pub fn find(program: &'static str, package: &'static str) -> Result<PathBuf, ToolError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or(ToolError::Missing { program, package })
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> Result<u16, ToolError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| run_error("bind", error))?;
    Ok(listener.local_addr().map_err(|error| run_error("bind", error))?.port())
}

fn run_error(program: &'static str, error: impl std::fmt::Display) -> ToolError {
    ToolError::Run { program, message: error.to_string() }
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nghttpd --no-tls` serving `docroot` on a free loopback port.
pub struct Nghttpd {
    address: SocketAddr,
    _child: ChildGuard,
}

impl Nghttpd {
    /// Starts it with `extra` options and waits (up to 10 s) until it accepts connections.
    pub fn start(docroot: &Path, extra: &[&str]) -> Result<Nghttpd, ToolError> {
        let program = find("nghttpd", "nghttp2-server")?;
        let port = free_port()?;
        let child = Command::new(program)
            .args(["--no-tls", "-a", "127.0.0.1", "-d"])
            .arg(docroot)
            .args(extra)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| run_error("nghttpd", error))?;
        let child = ChildGuard(child);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(address).is_err() {
            if Instant::now() > deadline {
                return Err(ToolError::Timeout { program: "nghttpd", seconds: 10 });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nghttpd { address, _child: child })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// What h2load reported.
#[derive(Debug, Clone, PartialEq)]
pub struct H2loadReport {
    /// Requests per second.
    pub requests_per_second: f64,
    /// Requests asked for.
    pub total: u64,
    /// Requests done.
    pub done: u64,
    /// Requests that got a response.
    pub succeeded: u64,
    /// Requests that failed, errored or timed out.
    pub failed: u64,
    /// Responses with a 2xx status.
    pub status_2xx: u64,
    /// Response body bytes received.
    pub data_bytes: u64,
    /// Everything it printed.
    pub output: String,
}

/// Runs `h2load` with `args` (which must bound its requests), killing it
/// after `limit`.
pub fn h2load(args: &[String], limit: Duration) -> Result<H2loadReport, ToolError> {
    let program = find("h2load", "nghttp2-client")?;
    // Its report goes to a file, so that a full pipe can never stall it.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let report = std::env::temp_dir().join(format!(
        "h2fw-h2load-{}-{}.txt",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&report).map_err(|error| run_error("h2load", error))?;
    let errors = file.try_clone().map_err(|error| run_error("h2load", error))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(errors)
        .spawn()
        .map_err(|error| run_error("h2load", error))?;
    let mut child = ChildGuard(child);
    let deadline = Instant::now() + limit;
    loop {
        match child.0.try_wait().map_err(|error| run_error("h2load", error))? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                return Err(ToolError::Timeout { program: "h2load", seconds: limit.as_secs() });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let output = std::fs::read_to_string(&report).map_err(|error| run_error("h2load", error));
    let _ = std::fs::remove_file(&report);
    parse_report(output?)
}

/// Reads h2load's summary lines (`finished in`, `requests:`, `status codes:`).
fn parse_report(output: String) -> Result<H2loadReport, ToolError> {
    let line = |prefix: &str| output.lines().find(|line| line.starts_with(prefix)).map(str::to_string);
    let missing = |what| ToolError::Report { what, output: output.clone() };
    let finished = line("finished in").ok_or_else(|| missing("finished in"))?;
    let requests_per_second = finished
        .split(", ")
        .find_map(|part| part.strip_suffix(" req/s"))
        .and_then(|rate| rate.parse().ok())
        .ok_or_else(|| missing("req/s"))?;
    let requests = line("requests:").ok_or_else(|| missing("requests:"))?;
    let count = |text: &str, name: &str| {
        text.split([',', ':'])
            .map(str::trim)
            .find_map(|part| part.strip_suffix(name).and_then(|n| n.trim().parse::<u64>().ok()))
    };
    let figure = |name: &str, what| count(&requests, name).ok_or_else(|| missing(what));
    let failed = figure(" failed", "failed")? + figure(" errored", "errored")? + figure(" timeout", "timeout")?;
    let status = line("status codes:").ok_or_else(|| missing("status codes:"))?;
    // `traffic: 187.70MB (196813149) total, ... 187.50MB (196608000) data`
    let traffic = line("traffic:").ok_or_else(|| missing("traffic:"))?;
    let data_bytes = traffic
        .split(", ")
        .find_map(|part| part.strip_suffix(" data"))
        .and_then(|part| part.split_once('(')?.1.split_once(')')?.0.parse().ok())
        .ok_or_else(|| missing("data bytes"))?;
    Ok(H2loadReport {
        requests_per_second,
        total: figure(" total", "total")?,
        done: figure(" done", "done")?,
        succeeded: figure(" succeeded", "succeeded")?,
        failed,
        status_2xx: count(&status, " 2xx").ok_or_else(|| missing("2xx"))?,
        data_bytes,
        output,
    })
}

impl H2loadReport {
    /// Every request done with a 2xx and none failed.
    pub fn all_succeeded(&self) -> bool {
        self.done == self.total && self.succeeded == self.total && self.status_2xx == self.total && self.failed == 0
    }
}
