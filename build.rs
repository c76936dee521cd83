//! Gives the component a 64 KiB wasm stack instead of Rust's default 1 MiB,
//! so that an instance costs little before its first connection (hosts that
//! keep one instance per connection pay it for every one). Nothing in the
//! writer recurses or keeps large buffers on the stack; the host tests run
//! every export with it.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|family| family.split(',').any(|f| f == "wasm")) {
        println!("cargo::rustc-cdylib-link-arg=-zstack-size={}", 64 << 10);
    }
}
