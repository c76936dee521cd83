//! h2fw: an HTTP/2 frame writer with a tiered buffer pool.
//!
//! Layers, bottom up: [`frame`] (wire format), [`hpack`] (RFC 7541),
//! [`pool`] (size-classed buffers shared by an instance's connections),
//! [`conn`] (the stateful writer). With the `baselines` feature, `baseline`
//! models Go's pools for comparison.

#[cfg(feature = "baselines")]
pub mod baseline;
#[cfg(target_family = "wasm")]
mod component;
pub mod conn;
pub mod frame;
pub mod hpack;
pub mod pool;
