//! libFuzzer target: the component's call sequences under wasmtime, with
//! memory caps (see `../harness.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::run_component(data);
});
