//! Builds the npm package in this folder and runs its JavaScript tests, so
//! that `cargo test --workspace --release` covers them with no manual step:
//!
//! 1. adds the wasm targets if the toolchain lacks them;
//! 2. builds this crate for `wasm32-unknown-unknown` and runs the
//!    wasm-bindgen CLI (the exact version `Cargo.toml` pins, installed into
//!    `<target dir>/tools` if missing) for `--target nodejs` and `--target
//!    web` into `pkg/node` and `pkg/web`;
//! 3. builds the production component (`h2fw` for `wasm32-wasip2`), runs
//!    `npm ci` if `node_modules` is missing or older than the lock file, and
//!    transpiles the component with jco into `pkg/component`;
//! 4. runs `node --test` on `test/node` once per build, the Chromium page
//!    test (installing Debian's `chromium` with apt-get when running as
//!    root), and `tsc` on a typed use of the declarations.
//!
//! Anything missing fails the test; nothing is skipped.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The package folder (this crate's).
fn package() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's target directory (`CARGO_TARGET_TMPDIR` is its `tmp`).
fn target_dir() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR lies in the target directory")
}

/// What every test needs, set up once: the built package and a browser.
struct Setup {
    chromium: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    match SETUP.get_or_init(build_package) {
        Ok(setup) => setup,
        Err(failure) => panic!("setting up the JS package failed: {failure}"),
    }
}

fn build_package() -> Result<Setup, String> {
    let pkg = package().join("pkg");
    let guest_dir = target_dir().join("guest");
    ensure_targets(&["wasm32-unknown-unknown", "wasm32-wasip2"])?;

    cargo_build(&["-p", "h2fw-js", "--lib", "--target", "wasm32-unknown-unknown"], &guest_dir)?;
    let module = guest_dir.join("wasm32-unknown-unknown/release/h2fw_js.wasm");
    let wasm_bindgen = wasm_bindgen()?;
    for (target, dir) in [("nodejs", "node"), ("web", "web")] {
        let out = pkg.join(dir);
        remove_dir(&out)?;
        let mut command = Command::new(&wasm_bindgen);
        command.args(["--target", target, "--out-name", "h2fw", "--out-dir"]).arg(&out).arg(&module);
        run(&mut command)?;
    }
    // The nodejs target is CommonJS, inside an ES module package.
    fs::write(pkg.join("node/package.json"), "{ \"type\": \"commonjs\" }\n").map_err(|e| format!("pkg/node: {e}"))?;

    cargo_build(&["-p", "h2fw", "--lib", "--target", "wasm32-wasip2"], &guest_dir)?;
    let component = guest_dir.join("wasm32-wasip2/release/h2fw.wasm");
    npm_ci()?;
    let out = pkg.join("component");
    remove_dir(&out)?;
    let mut jco = Command::new(package().join("node_modules/.bin/jco"));
    jco.arg("transpile").arg(&component).args(["--name", "h2fw", "--quiet", "-o"]).arg(&out);
    run(&mut jco)?;

    Ok(Setup { chromium: chromium()? })
}

/// Runs `command` in the package folder; its output is kept for the error.
fn run(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let output = command
        .current_dir(package())
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{shown}: cannot run: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    if output.status.success() { Ok(text) } else { Err(format!("{shown}: {}\n{text}", output.status)) }
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {error}", dir.display())),
        _ => Ok(()),
    }
}

/// `cargo build --release` of `args` into `target_dir`, with none of the
/// settings this test's own build passed down (flags, target, jobserver).
fn cargo_build(args: &[&str], target_dir: &Path) -> Result<(), String> {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(package().join("../Cargo.toml"))
        .args(args)
        .args(["--release", "--target-dir"])
        .arg(target_dir);
    for key in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(key);
    }
    run(&mut command).map(drop)
}

/// Adds each target with rustup when the compiler's sysroot lacks it (a
/// pinned toolchain installed without its targets).
fn ensure_targets(targets: &[&str]) -> Result<(), String> {
    let sysroot =
        run(Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())).args(["--print", "sysroot"]))?;
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|target| !Path::new(sysroot.trim()).join("lib/rustlib").join(target).is_dir())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add"]).args(&missing)).map(drop)
}

/// The version `Cargo.toml` pins the wasm-bindgen crate to (`=x.y.z`).
fn wasm_bindgen_version() -> Result<String, String> {
    let manifest = fs::read_to_string(package().join("Cargo.toml")).map_err(|e| format!("Cargo.toml: {e}"))?;
    manifest
        .lines()
        .find_map(|line| line.strip_prefix("wasm-bindgen = \"="))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(String::from)
        .ok_or_else(|| "Cargo.toml pins no `wasm-bindgen = \"=x.y.z\"`".into())
}

/// The wasm-bindgen CLI of the pinned version, installed into
/// `<target dir>/tools` if it is not there yet (a few minutes, once).
fn wasm_bindgen() -> Result<PathBuf, String> {
    let version = wasm_bindgen_version()?;
    let root = target_dir().join("tools");
    let cli = root.join("bin/wasm-bindgen");
    let installed =
        run(Command::new(&cli).arg("--version")).is_ok_and(|out| out.trim() == format!("wasm-bindgen {version}"));
    if !installed {
        let mut install = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        // Not `--locked`: the CLI's lock file names crate versions that this
        // machine's registry may not serve; cargo picks ones that build with
        // the pinned toolchain.
        install.args(["install", "--force", "--version", &version, "--root"]).arg(&root).arg("wasm-bindgen-cli");
        install.env_remove("CARGO_TARGET_DIR").env_remove("RUSTFLAGS").env_remove("CARGO_MAKEFLAGS");
        run(&mut install)?;
    }
    Ok(cli)
}

/// `npm ci` when `node_modules` is missing or older than the lock file.
fn npm_ci() -> Result<(), String> {
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(&package().join("node_modules/.package-lock.json"));
    let locked = modified(&package().join("package-lock.json")).ok_or("package-lock.json is missing")?;
    if installed.is_some_and(|installed| installed >= locked) {
        return Ok(());
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"])).map(drop)
}

/// Debian's `chromium`: found on PATH, or installed with apt-get when this
/// runs as root.
fn chromium() -> Result<PathBuf, String> {
    let find = || {
        env::split_paths(&env::var_os("PATH").unwrap_or_default()).map(|dir| dir.join("chromium")).find(|p| p.is_file())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let root = run(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    if !root {
        return Err("Chromium is missing: install Debian's `chromium` package (apt-get install chromium)".into());
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get").args(["install", "-y", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))?;
    find().ok_or_else(|| "apt-get installed chromium, yet it is not on PATH".into())
}

/// The `*.test.js` files of `dir` (relative to the package).
fn test_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(package().join(dir))
        .unwrap_or_else(|error| panic!("{dir}: {error}"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no tests in {dir}");
    files
}

/// Reads `pipe` to its end on a thread of its own.
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Longest a node run may take before it is killed.
const NODE_DEADLINE: Duration = Duration::from_secs(600);

/// Runs `node --test` on the tests in `dir` with `envs`; passes only if
/// tests ran and every one passed (none failed, skipped, cancelled or todo).
fn node_test(dir: &str, envs: &[(&str, &OsStr)]) {
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-reporter=tap", "--test-timeout=120000"])
        .args(test_files(dir))
        .current_dir(package())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(envs.iter().copied());
    let mut child = command.spawn().expect("node is on PATH");
    let stdout = read_all(child.stdout.take().expect("piped"));
    let stderr = read_all(child.stderr.take().expect("piped"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if started.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = stdout.join().unwrap_or_default() + &stderr.join().unwrap_or_default();
    let count = |name: &str| {
        output
            .lines()
            .find_map(|line| line.strip_prefix(&format!("# {name} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    let summary: Vec<(&str, Option<u32>)> =
        ["tests", "pass", "fail", "cancelled", "skipped", "todo"].into_iter().map(|name| (name, count(name))).collect();
    let passed = status.is_some_and(|status| status.success())
        && summary[1].1.is_some_and(|pass| pass > 0 && Some(pass) == summary[0].1)
        && summary[2..].iter().all(|(_, n)| *n == Some(0));
    assert!(passed, "node --test {dir} ({envs:?}): {status:?}, {summary:?}\n{output}");
    println!("node --test {dir} {envs:?}: {summary:?}");
}

#[test]
fn node_build() {
    setup();
    node_test("test/node", &[("H2FW_BUILD", OsStr::new("node"))]);
}

#[test]
fn web_build_in_node() {
    setup();
    node_test("test/node", &[("H2FW_BUILD", OsStr::new("web"))]);
}

#[test]
fn component_under_jco() {
    setup();
    node_test("test/node", &[("H2FW_BUILD", OsStr::new("component"))]);
}

#[test]
fn web_build_in_chromium() {
    let chromium = &setup().chromium;
    node_test("test/browser", &[("CHROMIUM", chromium.as_os_str())]);
}

#[test]
fn typescript_declarations() {
    setup();
    let checked = run(Command::new(package().join("node_modules/.bin/tsc")).args(["-p", "test/types"]));
    if let Err(failure) = checked {
        panic!("tsc found errors in the declarations or their typed use:\n{failure}");
    }
}
