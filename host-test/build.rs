//! Builds the h2fw component (the root crate for wasm32-wasip2) twice, so
//! that `cargo test` and `cargo run` need no manual step: the production
//! build (`H2FW_COMPONENT`) and the one with Go's pools as models for
//! comparison (`--features baselines`, `H2FW_BASELINES_COMPONENT`). Adds the
//! `wasm32-wasip2` target first when the toolchain lacks it (a pinned
//! toolchain installed without its targets: `rust-toolchain.toml` does not
//! add them then).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host-test lives inside the workspace").to_path_buf();
    // Relative to this package, so the paths stay right wherever the tree is.
    for watched in ["../src", "../wit", "../build.rs", "../Cargo.toml", "../Cargo.lock"] {
        println!("cargo:rerun-if-changed={watched}");
    }

    ensure_wasm_target();
    let production = build_guest(&root, "guest", &[]);
    let baselines = build_guest(&root, "guest-baselines", &["--features", "baselines"]);
    println!("cargo:rustc-env=H2FW_COMPONENT={}", production.display());
    println!("cargo:rustc-env=H2FW_BASELINES_COMPONENT={}", baselines.display());
}

/// Builds the component with `extra` arguments into `<target dir>/<name>`;
/// returns the path of the `.wasm` file.
fn build_guest(root: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let target_dir = guest_target_dir(name);
    let mut command = Command::new(cargo());
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["-p", "h2fw", "--lib", "--target", "wasm32-wasip2", "--release", "--target-dir"])
        .arg(&target_dir)
        .args(extra);
    // The parent's flags, target, jobserver and profile settings are for the
    // host build; the child must build the guest with its own.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if is_parent_build_setting(key) {
            command.env_remove(key);
        }
    }
    let status = command.status().expect("failed to run cargo for the guest component");
    assert!(status.success(), "building the h2fw component ({name}) failed ({status})");
    let component = target_dir.join("wasm32-wasip2").join("release").join("h2fw.wasm");
    assert!(component.is_file(), "component not found at {}", component.display());
    component
}

fn cargo() -> std::ffi::OsString {
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Adds `wasm32-wasip2` with rustup when the compiler's sysroot lacks it.
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().ok().filter(|o| o.status.success());
    let Some(sysroot) = sysroot.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else { return };
    if Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2").is_dir() {
        return;
    }
    println!("cargo:warning=adding the wasm32-wasip2 target with rustup (the toolchain lacks it)");
    let added = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
    assert!(added.is_ok_and(|status| status.success()), "`rustup target add wasm32-wasip2` failed; run it by hand");
}

/// `<target dir>/<name>`: a target directory of its own, so that the child
/// cargo does not wait on the lock the parent holds, shared by every profile.
fn guest_target_dir(name: &str) -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target dir>[/<triple>]/<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).unwrap_or(Path::new("."));
    let target_dir = profile_dir.parent().unwrap_or(profile_dir);
    target_dir.join(name)
}

/// Environment that cargo set for this build (script) and that would leak
/// into the guest build.
fn is_parent_build_setting(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_MAKEFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_INCREMENTAL",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_TARGET_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}
