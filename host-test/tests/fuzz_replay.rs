//! Replays the `conn_calls` fuzz corpus (`fuzz/corpus/conn_calls/`) and the
//! inputs the fuzzer once found failing (`fuzz/artifacts/conn_calls/`, now
//! fixed) through the fuzz harness on stable Rust, under every check: CI
//! replays the corpus, it does not fuzz.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|ext| ext != "md"))
        .collect();
    files.sort();
    files
}

fn replay(files: &[PathBuf]) {
    let failed: Vec<_> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable input");
            std::panic::catch_unwind(|| harness::run(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} inputs fail the harness: {failed:#?}", failed.len(), files.len());
}

#[test]
fn conn_calls_corpus_and_artifacts_replay() {
    let corpus = inputs("corpus/conn_calls");
    let artifacts = inputs("artifacts/conn_calls");
    assert!(!corpus.is_empty() && !artifacts.is_empty(), "the conn_calls corpus or its artifacts are missing");
    replay(&[corpus, artifacts].concat());
}
