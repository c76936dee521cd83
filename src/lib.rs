//! h2fw: an HTTP/2 frame writer with a tiered buffer pool.
//!
//! Layers, bottom up: [`frame`] (wire format), [`hpack`] (RFC 7541),
//! [`pool`] (size-classed buffers), [`conn`] (the stateful writer).

#[cfg(target_family = "wasm")]
mod component;
pub mod conn;
pub mod frame;
pub mod hpack;
pub mod pool;
