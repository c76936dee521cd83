//! Replays the fuzz corpora through the fuzz harness on stable Rust, under
//! every check: CI replays the corpora, it does not fuzz.
//!
//! - `conn_calls`: the native `Connection`, from `fuzz/corpus/conn_calls/`
//!   and the inputs it once found failing (`fuzz/artifacts/conn_calls/`,
//!   now fixed);
//! - `component_calls`: the component under wasmtime with memory caps, from
//!   `fuzz/corpus/component_calls/` and `fuzz/artifacts/component_calls/`.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|ext| ext != "md"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs(&format!("corpus/{target}"));
    let artifacts = inputs(&format!("artifacts/{target}"));
    assert!(!corpus.is_empty() && !artifacts.is_empty(), "the {target} corpus or its artifacts are missing");
    let files = [corpus, artifacts].concat();
    let failed: Vec<_> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable input");
            std::panic::catch_unwind(|| run(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} {target} inputs fail the harness: {failed:#?}", failed.len(), files.len());
}

#[test]
fn conn_calls_corpus_and_artifacts_replay() {
    replay("conn_calls", harness::run);
}

#[test]
fn component_calls_corpus_and_artifacts_replay() {
    replay("component_calls", harness::run_component);
}
