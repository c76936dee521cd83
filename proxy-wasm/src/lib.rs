//! h2fw inside Envoy: a proxy-wasm network filter that carries every
//! downstream TCP connection over an HTTP/2 CONNECT tunnel (RFC 9113 §8.5)
//! whose bytes toward the upstream are all written by h2fw.
//!
//! Layers: [`frames`] (upstream frames, parsed and checked), [`inbox`]
//! (client bytes held in the pool), [`tunnel`] (one tunnel: the h2fw writer,
//! the HPACK decoder and the CONNECT state), [`config`] (the plugin and VM
//! configuration), and, on wasm only, the proxy-wasm glue (`filter`, `host`,
//! `ballast`) that runs tunnels in Envoy with one pool per VM.

#[cfg(target_family = "wasm")]
mod ballast;
pub mod config;
#[cfg(target_family = "wasm")]
mod filter;
pub mod frames;
#[cfg(target_family = "wasm")]
mod host;
pub mod inbox;
#[cfg(test)]
mod testing;
pub mod tunnel;

/// HTTP/2 error codes (RFC 9113 §7) the filter reads or writes.
pub mod error_code {
    /// NO_ERROR
    pub const NO_ERROR: u32 = 0x0;
    /// PROTOCOL_ERROR
    pub const PROTOCOL_ERROR: u32 = 0x1;
    /// INTERNAL_ERROR
    pub const INTERNAL_ERROR: u32 = 0x2;
    /// FRAME_SIZE_ERROR
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    /// CANCEL
    pub const CANCEL: u32 = 0x8;
    /// COMPRESSION_ERROR
    pub const COMPRESSION_ERROR: u32 = 0x9;

    /// The RFC name of `code` ("0x.." for an unknown one).
    pub fn name(code: u32) -> std::borrow::Cow<'static, str> {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        match NAMES.get(code as usize) {
            Some(name) => (*name).into(),
            None => format!("{code:#x}").into(),
        }
    }
}
