//! Host side of h2fw: runs the component under wasmtime, encodes frame
//! scripts, and drives stream mixes through the native or component writer.

pub mod bench;
pub mod mix;
pub mod proxy;
pub mod runtime;
pub mod script;
pub mod writer;
