//! h2fw for JavaScript: the library's pool and connection as wasm-bindgen
//! classes (`wasm32-unknown-unknown`; built with `--target nodejs` and
//! `--target web` into `pkg/`). Conversion only: every call goes straight to
//! the library, and every library error is thrown as an `H2fwError` with
//! the kind the WIT interface gives it (see `convert`).

mod convert;

use convert::{FrameInput, Headers};
use h2fw::{conn, pool};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A header field: `[name, value]`, or `[name, value, sensitive]` (a sensitive field is never indexed). Names and values are encoded as UTF-8. */
export type Header = [name: string, value: string] | [name: string, value: string, sensitive: boolean];
/** A SETTINGS parameter: `[id, value]`. */
export type Setting = [id: number, value: number];
/** Priority fields (RFC 9113 §5.3.2); `weight` is the on-wire value, the RFC weight minus one. */
export interface Priority { streamDependency: number; weight: number; exclusive?: boolean }
/** Options of `writeHeaders`. A `padLength` (even 0) sets PADDED. */
export interface HeadersOptions { endStream?: boolean; priority?: Priority; padLength?: number }
/** Options of `openStream`: the declared Content-Length, if any, and whether the HEADERS end the stream. */
export interface StreamOptions { contentLength?: number; endStream?: boolean }
/** Connection limits, bytes (the library's `Config`); `poolShare` null: only the pool's budget applies. */
export interface Config {
  poolShare: number | null; streamHighWatermark: number; connHighWatermark: number;
  maxHeaderTableSize: number; outputHighWatermark: number;
}
/** Pool limits (the library's `PoolConfig`). */
export interface PoolConfig { minClass: number; maxClass: number; idlePerClass: number; idleTotalBytes: number; budgetBytes: number }
/** Statistics of one connection. */
export interface Stats {
  leasedBytes: number; peakLeasedBytes: number; liveBytes: number; peakLiveBytes: number;
  pendingBytes: number; queuedBytes: number; openStreams: number; frames: number; bytesDrained: number;
  pendingStreams: number; trailerBytes: number; connWindow: number;
}
/** Statistics of one pool size class. */
export interface ClassStats {
  size: number; leasedBuffers: number; leasedBytes: number; idleBuffers: number; idleBytes: number;
  hits: number; misses: number; trims: number;
}
/** Statistics of a pool: every connection leasing from it together. */
export interface PoolStats {
  classes: ClassStats[]; leasedBytes: number; idleBytes: number; peakLeasedBytes: number;
  peakIdleBytes: number; peakTotalBytes: number; connections: number;
}
/** What `sendAndDrain` did: body bytes accepted, and every wire byte that could go now. */
export interface Sent { accepted: number; wire: Uint8Array }
/** One frame for `writeFrame`, as given (header blocks already HPACK-encoded). */
export type Frame =
  | { type: "data"; stream: number; data: Uint8Array; endStream?: boolean; padLength?: number }
  | { type: "headers"; stream: number; block: Uint8Array; endStream?: boolean; priority?: Priority; padLength?: number }
  | { type: "priority"; stream: number; priority: Priority }
  | { type: "rst-stream"; stream: number; errorCode: number }
  | { type: "settings"; settings: Setting[] }
  | { type: "settings-ack" }
  | { type: "push-promise"; stream: number; promisedStream: number; block: Uint8Array; padLength?: number }
  | { type: "ping"; opaqueData: Uint8Array; ack?: boolean }
  | { type: "goaway"; lastStreamId: number; errorCode: number; debugData?: Uint8Array }
  | { type: "window-update"; stream: number; increment: number }
  | { type: "priority-update"; prioritizedStream: number; fieldValue: Uint8Array }
  | { type: "extension"; frameType: number; flags: number; stream: number; payload: Uint8Array };
/** Which typed error a call threw (the WIT `error-detail` cases); `argument`: a value of the wrong shape. */
export type ErrorKind =
  | "frame" | "hpack" | "pool" | "stream-not-open" | "stream-id-invalid" | "window-overflow"
  | "would-block" | "batch-length" | "argument";
/** What every call throws. Nothing was queued and the connection stays usable. */
export interface H2fwError extends Error {
  name: "H2fwError";
  kind: ErrorKind;
  /** For `frame`, `hpack` and `pool`: the case, e.g. `window-increment`, `invalid-name`, `share-exceeded`. */
  detail?: string;
}
"#;

/// The library's `Config::default()`.
#[wasm_bindgen(js_name = defaultConfig, unchecked_return_type = "Config")]
pub fn default_config() -> JsValue {
    convert::config_to_js(&conn::Config::default())
}

/// The library's `PoolConfig::default()`.
#[wasm_bindgen(js_name = defaultPoolConfig, unchecked_return_type = "PoolConfig")]
pub fn default_pool_config() -> JsValue {
    convert::pool_config_to_js(&pool::PoolConfig::default())
}

/// A buffer pool: size classes, one idle cache and one budget shared by
/// every connection created with it. The pool lives as long as any of them.
#[wasm_bindgen]
pub struct Pool(pool::Pool);

#[wasm_bindgen]
impl Pool {
    /// An empty pool; fields missing from `config` take their defaults.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "Partial<PoolConfig>")] config: Option<JsValue>,
    ) -> Result<Pool, JsValue> {
        Ok(Pool(pool::Pool::new(convert::pool_config_of(&given(config))?)))
    }

    /// Current statistics.
    #[wasm_bindgen(unchecked_return_type = "PoolStats")]
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        let stats = self.0.try_stats().map_err(|error| convert::library_error(error.into()))?;
        Ok(convert::pool_stats_to_js(&stats))
    }
}

/// The frame writer of one HTTP/2 connection. Every call either succeeds or
/// throws an `H2fwError` and changes nothing. `free()` gives every buffer it
/// holds back to its pool.
#[wasm_bindgen]
pub struct Connection(conn::Connection);

#[wasm_bindgen]
impl Connection {
    /// A connection leasing from `pool`, with the peer's settings at their
    /// RFC defaults; fields missing from `config` take their defaults.
    #[wasm_bindgen(constructor)]
    pub fn new(
        pool: &Pool,
        #[wasm_bindgen(unchecked_optional_param_type = "Partial<Config>")] config: Option<JsValue>,
    ) -> Result<Connection, JsValue> {
        Ok(Connection(conn::Connection::new(convert::config_of(&given(config))?, &pool.0)))
    }

    /// Applies the peer's SETTINGS; validated as a whole before any takes effect.
    #[wasm_bindgen(js_name = applyPeerSettings)]
    pub fn apply_peer_settings(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Setting[]")] settings: JsValue,
    ) -> Result<(), JsValue> {
        let settings = convert::settings_of(&settings, "settings")?;
        self.0.apply_peer_settings(&settings).map_err(convert::library_error)
    }

    /// Applies a WINDOW_UPDATE received from the peer (stream 0: the connection).
    #[wasm_bindgen(js_name = applyWindowUpdate)]
    pub fn apply_window_update(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] increment: JsValue,
    ) -> Result<(), JsValue> {
        let (stream, increment) = (convert::u32_of(&stream, "stream")?, convert::u32_of(&increment, "increment")?);
        self.0.apply_window_update(stream, increment).map_err(convert::library_error)
    }

    /// Queues the 24-byte client connection preface.
    #[wasm_bindgen(js_name = writePreface)]
    pub fn write_preface(&mut self) -> Result<(), JsValue> {
        self.0.write_preface().map_err(convert::library_error)
    }

    /// Queues one frame as given (DATA here is raw: split at the peer's
    /// MAX_FRAME_SIZE, not flow-controlled).
    #[wasm_bindgen(js_name = writeFrame)]
    pub fn write_frame(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Frame")] frame: JsValue,
    ) -> Result<(), JsValue> {
        let input = FrameInput::of(&frame)?;
        self.0.write_frame(&input.frame()?).map_err(convert::library_error)
    }

    /// HPACK-encodes `headers` and queues HEADERS (+ CONTINUATION).
    #[wasm_bindgen(js_name = writeHeaders)]
    pub fn write_headers(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Header[]")] headers: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "HeadersOptions")] options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let stream = convert::u32_of(&stream, "stream")?;
        let headers = Headers::of(&headers, "headers")?;
        let options = convert::headers_options_of(&given(options))?;
        self.0.write_headers(stream, &headers.fields(), options).map_err(convert::library_error)
    }

    /// HPACK-encodes `headers` and queues PUSH_PROMISE (+ CONTINUATION).
    #[wasm_bindgen(js_name = writePushPromise)]
    pub fn write_push_promise(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(js_name = promisedStream, unchecked_param_type = "number")] promised_stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Header[]")] headers: JsValue,
        #[wasm_bindgen(js_name = padLength, unchecked_optional_param_type = "number")] pad_length: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let stream = convert::u32_of(&stream, "stream")?;
        let promised_stream = convert::u32_of(&promised_stream, "promisedStream")?;
        let headers = Headers::of(&headers, "headers")?;
        let pad_length = convert::optional(&given(pad_length), |value| convert::u8_of(value, "padLength"))?;
        self.0
            .write_push_promise(stream, promised_stream, &headers.fields(), pad_length)
            .map_err(convert::library_error)
    }

    /// Opens a flow-controlled stream: queues its HEADERS and remembers the
    /// hints. The id must be above every id opened before.
    #[wasm_bindgen(js_name = openStream)]
    pub fn open_stream(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Header[]")] headers: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "StreamOptions")] options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let stream = convert::u32_of(&stream, "stream")?;
        let headers = Headers::of(&headers, "headers")?;
        let (hints, end_stream) = convert::stream_options_of(&given(options))?;
        self.0.open_stream(stream, &headers.fields(), hints, end_stream).map_err(convert::library_error)
    }

    /// Accepts body bytes; returns how many were taken (fewer under
    /// backpressure; none: throws `would-block`).
    pub fn send(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] data: JsValue,
    ) -> Result<usize, JsValue> {
        let (stream, data) = (convert::u32_of(&stream, "stream")?, convert::bytes_of(&data, "data")?);
        self.0.send(stream, &data).map_err(convert::library_error)
    }

    /// `send`, then `drain` of every byte, in one call: bytes the windows
    /// allow with nothing queued ahead are framed straight into `wire`.
    #[wasm_bindgen(js_name = sendAndDrain, unchecked_return_type = "Sent")]
    pub fn send_and_drain(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] data: JsValue,
    ) -> Result<JsValue, JsValue> {
        let (stream, data) = (convert::u32_of(&stream, "stream")?, convert::bytes_of(&data, "data")?);
        let mut wire = Vec::new();
        let accepted = self.0.send_and_drain(stream, &data, &mut wire).map_err(convert::library_error)?;
        Ok(convert::sent_to_js(accepted, &wire))
    }

    /// Ends the stream after its pending bytes: END_STREAM on the last DATA,
    /// or a trailing HEADERS block when `trailers` is given.
    pub fn finish(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Header[]")] trailers: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let stream = convert::u32_of(&stream, "stream")?;
        let trailers = convert::optional(&given(trailers), |value| Headers::of(value, "trailers"))?;
        let fields = trailers.as_ref().map(Headers::fields);
        self.0.finish(stream, fields.as_deref()).map_err(convert::library_error)
    }

    /// Resets the stream: drops its pending bytes and queues RST_STREAM.
    pub fn reset(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "number")] stream: JsValue,
        #[wasm_bindgen(js_name = errorCode, unchecked_param_type = "number")] error_code: JsValue,
    ) -> Result<(), JsValue> {
        let (stream, error_code) = (convert::u32_of(&stream, "stream")?, convert::u32_of(&error_code, "errorCode")?);
        self.0.reset(stream, error_code).map_err(convert::library_error)
    }

    /// Takes up to `maxBytes` wire bytes (all of them when omitted): control
    /// and header frames first, then DATA within the flow-control windows.
    pub fn drain(
        &mut self,
        #[wasm_bindgen(js_name = maxBytes, unchecked_optional_param_type = "number")] max_bytes: Option<JsValue>,
    ) -> Result<Vec<u8>, JsValue> {
        let max_bytes = convert::optional(&given(max_bytes), |value| convert::u32_of(value, "maxBytes"))?;
        let mut out = Vec::new();
        self.0.drain(max_bytes.map_or(usize::MAX, |max| max as usize), &mut out).map_err(convert::library_error)?;
        Ok(out)
    }

    /// Current statistics of this connection.
    #[wasm_bindgen(unchecked_return_type = "Stats")]
    pub fn stats(&self) -> JsValue {
        convert::stats_to_js(&self.0.stats())
    }
}

/// An optional argument as given (`undefined` when omitted).
fn given(value: Option<JsValue>) -> JsValue {
    value.unwrap_or(JsValue::UNDEFINED)
}
