//! Builds the h2fw component (the root crate for wasm32-wasip2) so that
//! `cargo test` and `cargo run` need no manual step, and exports its path as
//! `H2FW_COMPONENT`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host-test lives inside the workspace").to_path_buf();
    // Relative to this package, so the paths stay right wherever the tree is.
    for watched in ["../src", "../wit", "../Cargo.toml", "../Cargo.lock"] {
        println!("cargo:rerun-if-changed={watched}");
    }

    let target_dir = guest_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["-p", "h2fw", "--lib", "--target", "wasm32-wasip2", "--release", "--target-dir"])
        .arg(&target_dir);
    // The parent's flags, target, jobserver and profile settings are for the
    // host build; the child must build the guest with its own.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if is_parent_build_setting(key) {
            command.env_remove(key);
        }
    }
    let status = command.status().expect("failed to run cargo for the guest component");
    assert!(status.success(), "building the h2fw component failed ({status})");

    let component = target_dir.join("wasm32-wasip2").join("release").join("h2fw.wasm");
    assert!(component.is_file(), "component not found at {}", component.display());
    println!("cargo:rustc-env=H2FW_COMPONENT={}", component.display());
}

/// `<target dir>/guest`: a target directory of its own, so that the child
/// cargo does not wait on the lock the parent holds, shared by every profile.
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target dir>[/<triple>]/<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out_dir.ancestors().nth(3).unwrap_or(Path::new("."));
    let target_dir = profile_dir.parent().unwrap_or(profile_dir);
    target_dir.join("guest")
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
