//! `h2fw proxy` (the binary) between nghttp2's real tools: `h2load`
//! loads it, `nghttpd --no-tls` is the backend (with padded frames, and
//! uploads echoed back). Every request completes with 2xx, h2load reports
//! no error, and the proxy's statistics line at exit counts every request.
//!
//! Needs Debian's `nghttp2-client` and `nghttp2-server` (.ci/run installs
//! them); without them the test fails, saying so.

mod proxy_common;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use h2fw_host::proxy::nghttp2::{self, Nghttpd};
use proxy_common::announced;

/// Requests without a body, and 64 KiB uploads.
const GETS: u64 = 50_000;
const UPLOADS: u64 = 3_000;
const UPLOAD: usize = 64 << 10;

fn docroot() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("h2fw-proxy-nghttp2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("docroot");
    std::fs::write(dir.join("small.txt"), [b'x'; 100]).expect("small.txt");
    let upload: Vec<u8> = (0..UPLOAD).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("upload.bin"), upload).expect("upload.bin");
    dir
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| arg.to_string()).collect()
}

#[test]
fn h2load_through_the_proxy_to_nghttpd_gets_every_request_2xx() {
    let h2load_found = nghttp2::find("h2load", "nghttp2-client");
    let nghttpd_found = nghttp2::find("nghttpd", "nghttp2-server");
    if let Err(error) = h2load_found.and(nghttpd_found) {
        panic!("{error}");
    }
    let docroot = docroot();
    // Padding on every frame (flow control counts it) and uploads echoed back.
    let backend = Nghttpd::start(&docroot, &["--padding=64", "--echo-upload"]).expect("nghttpd starts");

    let upstream = backend.address().to_string();
    let proxy_args = ["proxy", "--listen", "127.0.0.1:0", "--upstream", &upstream, "--connections", "4", "--stats"];
    let (mut proxy, address) = announced(&proxy_args, Stdio::piped());
    let mut stderr = proxy.0.stderr.take().expect("stderr");
    let url = format!("http://{address}/small.txt");

    let limit = Duration::from_secs(120);
    let gets = nghttp2::h2load(&args(&["-c", "50", "-m", "20", "-t", "1", "-n", &GETS.to_string(), &url]), limit)
        .expect("h2load (GET)");
    assert!(gets.all_succeeded() && gets.total == GETS, "{}", gets.output);
    assert_eq!(gets.data_bytes, GETS * 100, "{}", gets.output);

    let upload = docroot.join("upload.bin").display().to_string();
    let uploads_args = args(&["-c", "20", "-m", "10", "-t", "1", "-n", &UPLOADS.to_string(), "-d", &upload, &url]);
    let uploads = nghttp2::h2load(&uploads_args, limit).expect("h2load (uploads)");
    assert!(uploads.all_succeeded() && uploads.total == UPLOADS, "{}", uploads.output);
    assert_eq!(uploads.data_bytes, UPLOADS * UPLOAD as u64, "every upload echoed back whole: {}", uploads.output);

    // SIGINT: the proxy prints its statistics line and exits.
    let interrupted = Command::new("kill").args(["-INT", &proxy.0.id().to_string()]).status().expect("kill -INT");
    assert!(interrupted.success());
    let mut report = String::new();
    stderr.read_to_string(&mut report).expect("the statistics line");
    let requests = format!("requests {} (", GETS + UPLOADS);
    assert!(report.contains(&requests) && report.contains("upstream connections 4"), "{report}");
    assert!(report.contains("linear memory") && report.contains("pool live"), "{report}");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&docroot);
}
