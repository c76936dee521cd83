//! The `h2fw` binary: `encode` writes a script's bytes; a bad line stops the
//! run with a non-zero exit naming the line, after writing the earlier
//! lines' frames whole.

use std::path::PathBuf;
use std::process::{Command, Output};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// SETTINGS with ACK: length 0, type 4, flags ACK, stream 0 (RFC 9113 §6.5).
const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 4, 1, 0, 0, 0, 0];
/// PING with opaque data 01..08: length 8, type 6, no flags, stream 0 (RFC 9113 §6.7).
const PING: [u8; 17] = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

const GOOD_LINES: &str = concat!(
    "{\"type\":\"preface\"}\n",
    "# a comment and a blank line still count as lines\n",
    "\n",
    "{\"type\":\"settings_ack\"}\n",
    "{\"type\":\"ping\",\"opaque_data\":\"0102030405060708\"}\n",
);

fn expected_good_bytes() -> Vec<u8> {
    [PREFACE, &SETTINGS_ACK, &PING].concat()
}

/// A file under cargo's per-test-binary scratch directory.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn h2fw(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_h2fw")).args(args).output().unwrap()
}

#[test]
fn encode_writes_the_frames_to_stdout_and_to_a_file() {
    let script = scratch("good.jsonl", GOOD_LINES);
    let stdout = h2fw(&["encode".as_ref(), script.as_os_str()]);
    assert!(stdout.status.success(), "{}", String::from_utf8_lossy(&stdout.stderr));
    assert_eq!(stdout.stdout, expected_good_bytes());

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("good.bin");
    let file = h2fw(&["encode".as_ref(), script.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(file.status.success(), "{}", String::from_utf8_lossy(&file.stderr));
    assert!(file.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), expected_good_bytes());
}

#[test]
fn component_and_native_encode_the_same_bytes() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/every_op.jsonl");
    let component = h2fw(&["encode".as_ref(), script.as_os_str()]);
    let native = h2fw(&["encode".as_ref(), script.as_os_str(), "--native".as_ref()]);
    assert!(component.status.success(), "{}", String::from_utf8_lossy(&component.stderr));
    assert!(native.status.success(), "{}", String::from_utf8_lossy(&native.stderr));
    assert!(component.stdout.starts_with(PREFACE));
    assert!(component.stdout == native.stdout, "component and native bytes differ");
}

#[test]
fn a_rejected_operation_names_its_line_and_keeps_earlier_frames_whole() {
    // Line 6: a WINDOW_UPDATE increment of 0 is invalid (RFC 9113 §6.9).
    let text = format!(
        "{GOOD_LINES}{}",
        "{\"type\":\"window_update\",\"stream\":0,\"increment\":0}\n{\"type\":\"settings_ack\"}\n"
    );
    let script = scratch("rejected.jsonl", &text);
    for native in [false, true] {
        let mut args = vec!["encode".as_ref(), script.as_os_str()];
        if native {
            args.push("--native".as_ref());
        }
        let output = h2fw(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "native={native}: exit status {}", output.status);
        assert!(stderr.contains("line 6"), "native={native}: {stderr}");
        assert!(stderr.contains("increment 0"), "native={native}: {stderr}");
        assert_eq!(output.stdout, expected_good_bytes(), "native={native}");
    }
}

#[test]
fn unknown_fields_and_types_are_rejected_with_their_line() {
    let cases = [
        ("{\"type\":\"ping\",\"opaque\":\"0102030405060708\"}", "unknown field `opaque`"),
        ("{\"type\":\"headers\",\"stream\":1,\"headers\":[],\"endstream\":true}", "unknown field `endstream`"),
        ("{\"type\":\"continuation\",\"stream\":1}", "unknown variant `continuation`"),
        ("{\"type\":\"data\",\"stream\":1}", "exactly one of"),
        ("not json", "expected"),
    ];
    for (index, (line, reason)) in cases.iter().enumerate() {
        let script = scratch(&format!("unknown-{index}.jsonl"), &format!("{GOOD_LINES}{line}\n"));
        let output = h2fw(&["encode".as_ref(), script.as_os_str()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{line}: exit status {}", output.status);
        assert!(stderr.contains("line 6") && stderr.contains(reason), "{line}: {stderr}");
        assert_eq!(output.stdout, expected_good_bytes(), "{line}");
    }
}

#[test]
fn a_missing_script_is_an_error() {
    let output = h2fw(&["encode".as_ref(), "/nonexistent/script.jsonl".as_ref()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot open /nonexistent/script.jsonl"));
}
