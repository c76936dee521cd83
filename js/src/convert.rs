//! Conversion between JavaScript values and the library's types, and
//! nothing else. A JS value of the wrong shape becomes an `argument` error
//! naming the field; a library error keeps its kind and its message.

use h2fw::conn::{self, HeadersOptions, StreamHints};
use h2fw::frame::{Frame, FrameError, Priority};
use h2fw::hpack::{HeaderField, HpackError};
use h2fw::pool::{self, PoolError};
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

/// A thrown `H2fwError`: an `Error` with `kind` (and `detail` for the
/// frame, hpack and pool kinds), the names the WIT interface gives them.
fn error(kind: &str, detail: Option<&str>, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("H2fwError");
    set(&error, "kind", &kind.into());
    if let Some(detail) = detail {
        set(&error, "detail", &detail.into());
    }
    error.into()
}

/// The `argument` error: `what` is not `expected` but `got`.
fn argument(what: &str, expected: &str, got: &JsValue) -> JsValue {
    argument_text(what, expected, &shown(got))
}

/// The `argument` error, with what was got in words.
fn argument_text(what: &str, expected: &str, got: &str) -> JsValue {
    error("argument", None, &format!("{what}: expected {expected}, got {got}"))
}

/// A JS value as a message shows it: primitives as JS writes them, others by type.
fn shown(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        format!("{text:?}")
    } else if let Some(number) = value.as_f64() {
        js_sys::Number::from(number).to_string_with_radix(10).map_or_else(|_| number.to_string(), String::from)
    } else if let Some(flag) = value.as_bool() {
        flag.to_string()
    } else if value.is_null() {
        "null".into()
    } else if value.is_undefined() {
        "undefined".into()
    } else {
        format!("a value of type {}", value.js_typeof().as_string().unwrap_or_default())
    }
}

/// A library error as the thrown `H2fwError`.
pub fn library_error(error_value: conn::Error) -> JsValue {
    use conn::Error as E;
    let (kind, detail) = match &error_value {
        E::Frame(frame) => ("frame", Some(frame_detail(frame))),
        E::Hpack(hpack) => ("hpack", Some(hpack_detail(hpack))),
        E::Pool(pool) => ("pool", Some(pool_detail(pool))),
        E::StreamNotOpen { .. } => ("stream-not-open", None),
        E::StreamIdInvalid { .. } => ("stream-id-invalid", None),
        E::WindowOverflow { .. } => ("window-overflow", None),
        E::WouldBlock { .. } => ("would-block", None),
        E::BatchLength { .. } => ("batch-length", None),
    };
    error(kind, detail, &error_value.to_string())
}

/// A frame error's WIT case name.
fn frame_detail(error: &FrameError) -> &'static str {
    match error {
        FrameError::StreamIdRequired { .. } => "stream-id-required",
        FrameError::ReservedBit { .. } => "reserved-bit",
        FrameError::SelfDependency { .. } => "self-dependency",
        FrameError::WindowIncrement { .. } => "window-increment",
        FrameError::SettingValue { .. } => "setting-value",
        FrameError::CoreFrameType { .. } => "core-frame-type",
        FrameError::PayloadTooLarge { .. } => "payload-too-large",
        FrameError::ExtensionPayloadTooLarge { .. } => "extension-payload-too-large",
        FrameError::MaxFrameSize { .. } => "max-frame-size",
        FrameError::BufferTooSmall { .. } => "buffer-too-small",
    }
}

/// A header list error's WIT case name.
fn hpack_detail(error: &HpackError) -> &'static str {
    match error {
        HpackError::InvalidName { .. } => "invalid-name",
        HpackError::InvalidValue { .. } => "invalid-value",
        HpackError::ConnectionSpecific { .. } => "connection-specific",
        HpackError::PseudoHeader { .. } => "pseudo-header",
        HpackError::BufferTooSmall { .. } => "buffer-too-small",
        HpackError::FieldLengths { .. } => "field-lengths",
    }
}

/// A pool error's WIT case name.
fn pool_detail(error: &PoolError) -> &'static str {
    match error {
        PoolError::BudgetExceeded { .. } => "budget-exceeded",
        PoolError::ShareExceeded { .. } => "share-exceeded",
        PoolError::OutOfMemory { .. } => "out-of-memory",
        PoolError::TooLarge { .. } => "too-large",
    }
}

/// Sets `target[key]`.
fn set(target: &JsValue, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object or error cannot fail.
    let _ = Reflect::set(target, &key.into(), value);
}

/// A plain object with the given properties.
fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in entries {
        set(&object, key, value);
    }
    object.into()
}

/// The fields of an options object: `None` for `undefined` or `null`;
/// refuses a non-object and any field not in `known`.
struct Fields(Option<Object>);

impl Fields {
    /// The fields of `value`, an options object called `what` in messages.
    fn of(value: &JsValue, what: &str, known: &[&str]) -> Result<Self, JsValue> {
        if value.is_undefined() || value.is_null() {
            return Ok(Fields(None));
        }
        if !value.is_object() || Array::is_array(value) {
            return Err(argument(what, "an object", value));
        }
        let object: Object = value.clone().unchecked_into();
        for key in Object::keys(&object) {
            let key = key.as_string().unwrap_or_default();
            if !known.contains(&key.as_str()) {
                let message = format!("{what}: unknown field `{key}` (known: {})", known.join(", "));
                return Err(error("argument", None, &message));
            }
        }
        Ok(Fields(Some(object)))
    }

    /// The field's value (`undefined` when absent).
    fn get(&self, key: &str) -> JsValue {
        self.0.as_ref().and_then(|object| Reflect::get(object, &key.into()).ok()).unwrap_or(JsValue::UNDEFINED)
    }
}

/// An integer in `0..=max`.
fn integer(value: &JsValue, what: &str, max: u64) -> Result<u64, JsValue> {
    match value.as_f64() {
        Some(number) if number.fract() == 0.0 && (0.0..=max as f64).contains(&number) => Ok(number as u64),
        _ => Err(argument(what, &format!("an integer in 0..={max}"), value)),
    }
}

/// A `u32` (a JS number that is an integer in range).
pub fn u32_of(value: &JsValue, what: &str) -> Result<u32, JsValue> {
    integer(value, what, u32::MAX.into()).map(|number| number as u32)
}

/// A `u8`.
pub fn u8_of(value: &JsValue, what: &str) -> Result<u8, JsValue> {
    integer(value, what, u8::MAX.into()).map(|number| number as u8)
}

/// A byte count (`usize` is 32 bits here).
fn len_of(value: &JsValue, what: &str) -> Result<usize, JsValue> {
    u32_of(value, what).map(|number| number as usize)
}

/// `default` when `undefined`, else a boolean.
fn bool_or(value: &JsValue, what: &str, default: bool) -> Result<bool, JsValue> {
    if value.is_undefined() {
        return Ok(default);
    }
    value.as_bool().ok_or_else(|| argument(what, "a boolean", value))
}

/// `None` when `undefined` or `null`, else `convert(value)`.
pub fn optional<T>(
    value: &JsValue,
    convert: impl FnOnce(&JsValue) -> Result<T, JsValue>,
) -> Result<Option<T>, JsValue> {
    if value.is_undefined() || value.is_null() { Ok(None) } else { convert(value).map(Some) }
}

/// A `Uint8Array` (a Node `Buffer` is one), copied into wasm memory.
pub fn bytes_of(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    value.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec).ok_or_else(|| argument(what, "a Uint8Array", value))
}

/// Empty when `undefined` or `null`, else a `Uint8Array`.
fn bytes_or_empty(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    optional(value, |value| bytes_of(value, what)).map(Option::unwrap_or_default)
}

/// An array.
fn array_of<'a>(value: &'a JsValue, what: &str) -> Result<&'a Array, JsValue> {
    if Array::is_array(value) { Ok(value.unchecked_ref()) } else { Err(argument(what, "an array", value)) }
}

/// A string.
fn string_of(value: &JsValue, what: &str) -> Result<String, JsValue> {
    value.as_string().ok_or_else(|| argument(what, "a string", value))
}

/// A header list as given: `[name, value]` or `[name, value, sensitive]`
/// entries, names and values as UTF-8.
pub struct Headers(Vec<(String, String, bool)>);

impl Headers {
    /// The header list `value`, called `what` in messages.
    pub fn of(value: &JsValue, what: &str) -> Result<Self, JsValue> {
        let list = array_of(value, what)?;
        let mut headers = Vec::with_capacity(list.length() as usize);
        for (index, entry) in list.iter().enumerate() {
            let at = format!("{what}[{index}]");
            let field = array_of(&entry, &at)?;
            if !(2..=3).contains(&field.length()) {
                let expected = "[name, value] or [name, value, sensitive]";
                return Err(argument_text(&at, expected, &format!("a {}-element array", field.length())));
            }
            let name = string_of(&field.get(0), &format!("{at}[0] (name)"))?;
            let value = string_of(&field.get(1), &format!("{at}[1] (value)"))?;
            let sensitive = bool_or(&field.get(2), &format!("{at}[2] (sensitive)"), false)?;
            headers.push((name, value, sensitive));
        }
        Ok(Headers(headers))
    }

    /// The fields as the library takes them.
    pub fn fields(&self) -> Vec<HeaderField<'_>> {
        self.0
            .iter()
            .map(|(name, value, sensitive)| HeaderField {
                name: name.as_bytes(),
                value: value.as_bytes(),
                sensitive: *sensitive,
            })
            .collect()
    }
}

/// `[id, value]` pairs.
pub fn settings_of(value: &JsValue, what: &str) -> Result<Vec<(u16, u32)>, JsValue> {
    let list = array_of(value, what)?;
    let mut settings = Vec::with_capacity(list.length() as usize);
    for (index, entry) in list.iter().enumerate() {
        let at = format!("{what}[{index}]");
        let pair = array_of(&entry, &at)?;
        if pair.length() != 2 {
            return Err(argument_text(&at, "[id, value]", &format!("a {}-element array", pair.length())));
        }
        let id = integer(&pair.get(0), &format!("{at}[0] (id)"), u16::MAX.into())? as u16;
        settings.push((id, u32_of(&pair.get(1), &format!("{at}[1] (value)"))?));
    }
    Ok(settings)
}

/// A `Priority` object.
fn priority_of(value: &JsValue, what: &str) -> Result<Priority, JsValue> {
    let fields = Fields::of(value, what, &["streamDependency", "weight", "exclusive"])?;
    Ok(Priority {
        stream_dependency: u32_of(&fields.get("streamDependency"), &format!("{what}.streamDependency"))?,
        weight: u8_of(&fields.get("weight"), &format!("{what}.weight"))?,
        exclusive: bool_or(&fields.get("exclusive"), &format!("{what}.exclusive"), false)?,
    })
}

/// `writeHeaders` options.
pub fn headers_options_of(value: &JsValue) -> Result<HeadersOptions, JsValue> {
    let fields = Fields::of(value, "options", &["endStream", "priority", "padLength"])?;
    Ok(HeadersOptions {
        end_stream: bool_or(&fields.get("endStream"), "options.endStream", false)?,
        priority: optional(&fields.get("priority"), |value| priority_of(value, "options.priority"))?,
        pad_length: optional(&fields.get("padLength"), |value| u8_of(value, "options.padLength"))?,
    })
}

/// `openStream` options: the stream hints and END_STREAM.
pub fn stream_options_of(value: &JsValue) -> Result<(StreamHints, bool), JsValue> {
    let fields = Fields::of(value, "options", &["contentLength", "endStream"])?;
    let content_length = optional(&fields.get("contentLength"), |value| {
        integer(value, "options.contentLength", (1 << 53) - 1) // exact in a JS number
    })?;
    Ok((StreamHints { content_length }, bool_or(&fields.get("endStream"), "options.endStream", false)?))
}

/// A frame object's payload, owned, for [`FrameInput::frame`] to borrow.
pub struct FrameInput {
    kind: String,
    fields: Fields,
    bytes: Vec<u8>,
    settings: Vec<(u16, u32)>,
}

/// Fields every frame object may have, per `type`.
const FRAME_FIELDS: &[(&str, &[&str])] = &[
    ("data", &["stream", "data", "endStream", "padLength"]),
    ("headers", &["stream", "block", "endStream", "priority", "padLength"]),
    ("priority", &["stream", "priority"]),
    ("rst-stream", &["stream", "errorCode"]),
    ("settings", &["settings"]),
    ("settings-ack", &[]),
    ("push-promise", &["stream", "promisedStream", "block", "padLength"]),
    ("ping", &["opaqueData", "ack"]),
    ("goaway", &["lastStreamId", "errorCode", "debugData"]),
    ("window-update", &["stream", "increment"]),
    ("priority-update", &["prioritizedStream", "fieldValue"]),
    ("extension", &["frameType", "flags", "stream", "payload"]),
];

/// Field that holds a frame type's bytes, if any.
fn bytes_field(kind: &str) -> Option<&'static str> {
    match kind {
        "data" => Some("data"),
        "headers" | "push-promise" => Some("block"),
        "ping" => Some("opaqueData"),
        "goaway" => Some("debugData"),
        "priority-update" => Some("fieldValue"),
        "extension" => Some("payload"),
        _ => None,
    }
}

impl FrameInput {
    /// The frame object `value`, its payload copied out.
    pub fn of(value: &JsValue) -> Result<Self, JsValue> {
        if !value.is_object() || Array::is_array(value) {
            return Err(argument("frame", "an object", value));
        }
        let type_value = Reflect::get(value, &"type".into()).unwrap_or(JsValue::UNDEFINED);
        let known = type_value.as_string().and_then(|kind| FRAME_FIELDS.iter().find(|(k, _)| *k == kind));
        let Some(&(kind, known)) = known else {
            let types = FRAME_FIELDS.iter().map(|(kind, _)| *kind).collect::<Vec<_>>().join(", ");
            return Err(argument("frame.type", &format!("one of {types}"), &type_value));
        };
        let kind = kind.to_owned();
        let fields = Fields::of(value, &format!("frame ({kind})"), &[&["type"], known].concat())?;
        let bytes = match bytes_field(&kind) {
            Some("debugData") => bytes_or_empty(&fields.get("debugData"), "frame.debugData")?,
            Some(key) => bytes_of(&fields.get(key), &format!("frame.{key}"))?,
            None => Vec::new(),
        };
        let settings =
            if kind == "settings" { settings_of(&fields.get("settings"), "frame.settings")? } else { Vec::new() };
        Ok(FrameInput { kind, fields, bytes, settings })
    }

    /// The library's frame.
    pub fn frame(&self) -> Result<Frame<'_>, JsValue> {
        let get = |key: &str| self.fields.get(key);
        let u32_field = |key: &str| u32_of(&get(key), &format!("frame.{key}"));
        let pad_length = || optional(&get("padLength"), |value| u8_of(value, "frame.padLength"));
        let end_stream = || bool_or(&get("endStream"), "frame.endStream", false);
        let bytes = &self.bytes[..];
        Ok(match self.kind.as_str() {
            "data" => Frame::Data {
                stream: u32_field("stream")?,
                data: bytes,
                end_stream: end_stream()?,
                pad_length: pad_length()?,
            },
            "headers" => Frame::Headers {
                stream: u32_field("stream")?,
                block: bytes,
                end_stream: end_stream()?,
                priority: optional(&get("priority"), |value| priority_of(value, "frame.priority"))?,
                pad_length: pad_length()?,
            },
            "priority" => Frame::Priority {
                stream: u32_field("stream")?,
                priority: priority_of(&get("priority"), "frame.priority")?,
            },
            "rst-stream" => Frame::RstStream { stream: u32_field("stream")?, error_code: u32_field("errorCode")? },
            "settings" => Frame::Settings { settings: &self.settings },
            "settings-ack" => Frame::SettingsAck,
            "push-promise" => Frame::PushPromise {
                stream: u32_field("stream")?,
                promised_stream: u32_field("promisedStream")?,
                block: bytes,
                pad_length: pad_length()?,
            },
            "ping" => {
                let opaque_data = <[u8; 8]>::try_from(bytes)
                    .map_err(|_| argument_text("frame.opaqueData", "8 bytes", &format!("{} bytes", bytes.len())))?;
                Frame::Ping { opaque_data, ack: bool_or(&get("ack"), "frame.ack", false)? }
            }
            "goaway" => Frame::Goaway {
                last_stream_id: u32_field("lastStreamId")?,
                error_code: u32_field("errorCode")?,
                debug_data: bytes,
            },
            "window-update" => Frame::WindowUpdate { stream: u32_field("stream")?, increment: u32_field("increment")? },
            "priority-update" => {
                Frame::PriorityUpdate { prioritized_stream: u32_field("prioritizedStream")?, field_value: bytes }
            }
            _ => Frame::Extension {
                frame_type: u8_of(&get("frameType"), "frame.frameType")?,
                flags: u8_of(&get("flags"), "frame.flags")?,
                stream: u32_field("stream")?,
                payload: bytes,
            },
        })
    }
}

/// Byte-count fields of a connection config.
const CONFIG_FIELDS: [&str; 4] =
    ["streamHighWatermark", "connHighWatermark", "maxHeaderTableSize", "outputHighWatermark"];

/// A connection config: the given fields over the library's defaults.
pub fn config_of(value: &JsValue) -> Result<conn::Config, JsValue> {
    let fields = Fields::of(value, "config", &[&["poolShare"][..], &CONFIG_FIELDS].concat())?;
    let mut config = conn::Config::default();
    let share = fields.get("poolShare");
    if !share.is_undefined() {
        config.pool_share = optional(&share, |value| len_of(value, "config.poolShare"))?;
    }
    let slots = [
        &mut config.stream_high_watermark,
        &mut config.conn_high_watermark,
        &mut config.max_header_table_size,
        &mut config.output_high_watermark,
    ];
    set_lens(&fields, &CONFIG_FIELDS, slots)?;
    Ok(config)
}

/// A connection config as a plain object.
pub fn config_to_js(config: &conn::Config) -> JsValue {
    let values = [
        config.stream_high_watermark,
        config.conn_high_watermark,
        config.max_header_table_size,
        config.output_high_watermark,
    ];
    let share = config.pool_share.map_or(JsValue::NULL, len);
    lens_object(&CONFIG_FIELDS, values, vec![("poolShare", share)])
}

/// Fields of a pool config (all byte or buffer counts).
const POOL_CONFIG_FIELDS: [&str; 5] = ["minClass", "maxClass", "idlePerClass", "idleTotalBytes", "budgetBytes"];

/// A pool config: the given fields over the library's defaults.
pub fn pool_config_of(value: &JsValue) -> Result<pool::PoolConfig, JsValue> {
    let fields = Fields::of(value, "config", &POOL_CONFIG_FIELDS)?;
    let mut config = pool::PoolConfig::default();
    let slots = [
        &mut config.min_class,
        &mut config.max_class,
        &mut config.idle_per_class,
        &mut config.idle_total_bytes,
        &mut config.budget_bytes,
    ];
    set_lens(&fields, &POOL_CONFIG_FIELDS, slots)?;
    Ok(config)
}

/// A pool config as a plain object.
pub fn pool_config_to_js(config: &pool::PoolConfig) -> JsValue {
    let values =
        [config.min_class, config.max_class, config.idle_per_class, config.idle_total_bytes, config.budget_bytes];
    lens_object(&POOL_CONFIG_FIELDS, values, Vec::new())
}

/// Sets each slot whose field is given.
fn set_lens<const N: usize>(fields: &Fields, keys: &[&str; N], slots: [&mut usize; N]) -> Result<(), JsValue> {
    for (key, slot) in keys.iter().zip(slots) {
        let value = fields.get(key);
        if !value.is_undefined() {
            *slot = len_of(&value, &format!("config.{key}"))?;
        }
    }
    Ok(())
}

/// An object of `entries` followed by `keys` with `values`.
fn lens_object<'a, const N: usize>(
    keys: &[&'a str; N],
    values: [usize; N],
    mut entries: Vec<(&'a str, JsValue)>,
) -> JsValue {
    entries.extend(keys.iter().zip(values).map(|(key, value)| (*key, len(value))));
    object(&entries)
}

/// A byte count as a JS number.
fn len(value: usize) -> JsValue {
    JsValue::from_f64(value as f64)
}

/// A 64-bit count as a JS number (exact below 2^53).
fn count(value: u64) -> JsValue {
    JsValue::from_f64(value as f64)
}

/// Connection statistics as a plain object.
pub fn stats_to_js(stats: &conn::Stats) -> JsValue {
    object(&[
        ("leasedBytes", len(stats.leased_bytes)),
        ("peakLeasedBytes", len(stats.peak_leased_bytes)),
        ("liveBytes", len(stats.live_bytes)),
        ("peakLiveBytes", len(stats.peak_live_bytes)),
        ("pendingBytes", len(stats.pending_bytes)),
        ("queuedBytes", len(stats.queued_bytes)),
        ("openStreams", len(stats.open_streams)),
        ("frames", count(stats.frames)),
        ("bytesDrained", count(stats.bytes_drained)),
        ("pendingStreams", len(stats.pending_streams)),
        ("trailerBytes", len(stats.trailer_bytes)),
        ("connWindow", JsValue::from_f64(stats.conn_window as f64)),
    ])
}

/// Pool statistics as a plain object (with one per size class).
pub fn pool_stats_to_js(stats: &pool::PoolStats) -> JsValue {
    let classes: Array = stats
        .classes
        .iter()
        .map(|class| {
            object(&[
                ("size", len(class.size)),
                ("leasedBuffers", len(class.leased_buffers)),
                ("leasedBytes", len(class.leased_bytes)),
                ("idleBuffers", len(class.idle_buffers)),
                ("idleBytes", len(class.idle_bytes)),
                ("hits", count(class.hits)),
                ("misses", count(class.misses)),
                ("trims", count(class.trims)),
            ])
        })
        .collect();
    object(&[
        ("classes", classes.into()),
        ("leasedBytes", len(stats.leased_bytes)),
        ("idleBytes", len(stats.idle_bytes)),
        ("peakLeasedBytes", len(stats.peak_leased_bytes)),
        ("peakIdleBytes", len(stats.peak_idle_bytes)),
        ("peakTotalBytes", len(stats.peak_total_bytes)),
        ("connections", len(stats.connections)),
    ])
}

/// The outcome of `sendAndDrain`.
pub fn sent_to_js(accepted: usize, wire: &[u8]) -> JsValue {
    object(&[("accepted", len(accepted)), ("wire", Uint8Array::from(wire).into())])
}
