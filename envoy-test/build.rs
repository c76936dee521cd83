//! Builds the h2fw proxy-wasm filter (`h2fw-proxy-wasm` for wasm32-wasip1,
//! release, in a target directory of its own) so that `cargo test` needs no
//! manual step, and tells the crate where it is (`H2FW_ENVOY_FILTER`) and
//! where the target directory is (`H2FW_TARGET_DIR`, home of the Envoy venv).
//! The module is used as built: the library compiles its component glue
//! only for wasm32-wasip2, so nothing of it reaches this core module.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";

fn main() {
    for watched in ["../proxy-wasm/src", "../proxy-wasm/Cargo.toml", "../src", "../Cargo.toml", "../Cargo.lock"] {
        println!("cargo:rerun-if-changed={watched}");
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("envoy-test lives inside the workspace");
    let target_dir = target_dir();
    ensure_target();
    let filter_dir = target_dir.join("envoy-filter");
    let status = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .env_clear()
        .envs(env::vars_os().filter(|(key, _)| is_kept(key.to_str().unwrap_or(""))))
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["-p", "h2fw-proxy-wasm", "--lib", "--target", TARGET, "--release", "--target-dir"])
        .arg(&filter_dir)
        .status()
        .expect("failed to run cargo for the proxy-wasm filter");
    assert!(status.success(), "building the proxy-wasm filter failed ({status})");
    let filter = filter_dir.join(TARGET).join("release").join("h2fw_proxy_wasm.wasm");
    println!("cargo:rustc-env=H2FW_ENVOY_FILTER={}", filter.display());
    println!("cargo:rustc-env=H2FW_TARGET_DIR={}", target_dir.display());
}

/// What the child cargo keeps of this environment: where the tools are,
/// nothing of the parent build's flags, target or jobserver.
fn is_kept(key: &str) -> bool {
    matches!(key, "PATH" | "HOME" | "CARGO_HOME" | "RUSTUP_HOME" | "RUSTUP_TOOLCHAIN" | "TMPDIR" | "USER")
}

/// The target directory this build runs in (OUT_DIR is
/// `<target>/<profile>/build/<pkg>-<hash>/out` for a host build).
fn target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = out_dir.ancestors().nth(3).expect("OUT_DIR is deep enough");
    profile_dir.parent().unwrap_or(profile_dir).to_path_buf()
}

/// Adds the wasm target with rustup when the compiler's sysroot lacks it.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().ok().filter(|o| o.status.success());
    let Some(sysroot) = sysroot.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else { return };
    if Path::new(&sysroot).join("lib/rustlib").join(TARGET).is_dir() {
        return;
    }
    println!("cargo:warning=adding the {TARGET} target with rustup (the toolchain lacks it)");
    let added = Command::new("rustup").args(["target", "add", TARGET]).status();
    assert!(added.is_ok_and(|s| s.success()), "`rustup target add {TARGET}` failed; run it by hand");
}
