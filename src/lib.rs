//! h2fw: an HTTP/2 frame writer with a tiered buffer pool.
//!
//! Layers, bottom up: [`frame`] (wire format), [`hpack`] (RFC 7541),
//! [`pool`] (size-classed buffers shared by an instance's connections),
//! [`conn`] (the stateful writer). With the `baselines` feature, `baseline`
//! models Go's pools for comparison.

#[cfg(feature = "baselines")]
pub mod baseline;
// The component glue only where the component is built: on other wasm
// targets (the wasm-bindgen and proxy-wasm builds) its exports and
// imports would land in their modules.
#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod component;
pub mod conn;
pub mod frame;
pub mod hpack;
pub mod pool;

/// Bytes of call arguments the component can always take, even once its
/// linear memory is full: the size of its reserve (see `wit/writer.wit`).
/// Larger arguments need that much room under the host's memory cap.
pub const COMPONENT_ARGUMENT_RESERVE: usize = 64 << 10;
