//! The component's export glue (wasm32-wasip2 only): converts between the WIT types
//! of `wit/writer.wit` and the library's, and nothing else.
//!
//! Every allocation made here on a call path is fallible: a refused
//! `memory.grow` becomes the typed `out-of-memory` error, never a trap. A
//! small reserve (see [`memory`]) lets a capped instance still take call
//! arguments and hand out drained bytes once its memory is full.

use core::alloc::Layout;
use core::cell::RefCell;
use core::fmt::{self, Display, Write as _};

use crate::conn::{self, Connection, HeadersOptions, StreamHints};
use crate::frame::{self, FrameError, FrameType};
use crate::hpack::{self, HpackError};
use crate::pool::{self, PoolError};

#[cfg(not(feature = "baselines"))]
wit_bindgen::generate!({ path: "wit", world: "writer" });
#[cfg(feature = "baselines")]
wit_bindgen::generate!({ path: "wit", world: "writer-baselines" });

use exports::h2fw::writer::conn as wit;

struct Component;

export!(Component);

impl wit::Guest for Component {
    type Pool = PoolResource;
    type Connection = ConnectionResource;

    fn default_config() -> wit::Config {
        config_to_wit(&conn::Config::default())
    }

    fn default_pool_config() -> wit::PoolConfig {
        pool_config_to_wit(&pool::PoolConfig::default())
    }
}

/// The `pool` resource: a handle on the library's shared pool.
struct PoolResource(pool::Pool);

impl wit::GuestPool for PoolResource {
    fn new(config: wit::PoolConfig) -> Self {
        PoolResource(pool::Pool::new(pool_config_from_wit(config)))
    }

    fn stats(&self) -> Result<wit::PoolStats, wit::Error> {
        let stats = self.0.try_stats().map_err(|error| error_to_wit(error.into()))?;
        pool_stats_to_wit(&stats)
    }
}

/// The `connection` resource: the library's connection behind a `RefCell`
/// (resource methods take `&self`; the component is single-threaded).
struct ConnectionResource(RefCell<Connection>);

impl ConnectionResource {
    /// The connection, for the library's work: from here on, allocations
    /// are the connection's and may no longer fall back on the reserve.
    fn conn(&self) -> core::cell::RefMut<'_, Connection> {
        memory::arguments_lifted();
        self.0.borrow_mut()
    }
}

impl wit::GuestConnection for ConnectionResource {
    fn open(pool: wit::PoolBorrow<'_>, config: wit::Config) -> Result<wit::Connection, wit::Error> {
        memory::take();
        let pool = &pool.get::<PoolResource>().0;
        let config = config_from_wit(config);
        #[cfg(feature = "baselines")]
        let connection = match baselines::model() {
            Some(scratch) => Connection::try_with_baseline(config, pool, &scratch),
            None => Connection::try_new(config, pool),
        };
        #[cfg(not(feature = "baselines"))]
        let connection = Connection::try_new(config, pool);
        let connection = ConnectionResource(RefCell::new(connection.map_err(error_to_wit)?));
        // The resource's box is the one allocation wit-bindgen makes infallibly.
        let rep = Layout::new::<Option<ConnectionResource>>();
        if !memory::hand_over(rep) {
            return Err(oom_error(rep.size()));
        }
        Ok(wit::Connection::new(connection))
    }

    fn apply_peer_settings(&self, settings: Vec<wit::Setting>) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let settings = settings_from_wit(&settings)?;
        connection.apply_peer_settings(&settings).map_err(error_to_wit)
    }

    fn apply_window_update(&self, stream: u32, increment: u32) -> Result<(), wit::Error> {
        self.conn().apply_window_update(stream, increment).map_err(error_to_wit)
    }

    fn apply_peer_headers(&self, stream: u32, end_stream: bool) -> Result<(), wit::Error> {
        self.conn().apply_peer_headers(stream, end_stream).map_err(error_to_wit)
    }

    fn apply_peer_end_stream(&self, stream: u32) -> Result<(), wit::Error> {
        self.conn().apply_peer_end_stream(stream).map_err(error_to_wit)
    }

    fn apply_peer_reset(&self, stream: u32) -> Result<(), wit::Error> {
        self.conn().apply_peer_reset(stream).map_err(error_to_wit)
    }

    fn apply_peer_push_promise(&self, stream: u32, promised: u32) -> Result<(), wit::Error> {
        self.conn().apply_peer_push_promise(stream, promised).map_err(error_to_wit)
    }

    fn apply_peer_goaway(&self, last_stream_id: u32) -> Result<Vec<u32>, wit::Error> {
        let mut refused = Vec::new();
        self.conn().apply_peer_goaway(last_stream_id, &mut refused).map_err(error_to_wit)?;
        Ok(refused)
    }

    fn apply_peer_data(&self, stream: u32, len: u32) -> Result<(), wit::Error> {
        self.conn().apply_peer_data(stream, len).map_err(error_to_wit)
    }

    fn write_preface(&self, settings: Vec<wit::Setting>) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let settings = settings_from_wit(&settings)?;
        connection.write_preface(&settings).map_err(error_to_wit)
    }

    fn write_settings(&self, settings: Vec<wit::Setting>) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let settings = settings_from_wit(&settings)?;
        connection.write_settings(&settings).map_err(error_to_wit)
    }

    fn ack_settings(&self) -> Result<(), wit::Error> {
        self.conn().ack_settings().map_err(error_to_wit)
    }

    fn ping(&self, opaque_data: u64, ack: bool) -> Result<(), wit::Error> {
        self.conn().ping(opaque_data.to_be_bytes(), ack).map_err(error_to_wit)
    }

    fn goaway(&self, last_stream_id: u32, error_code: u32, debug_data: Vec<u8>) -> Result<(), wit::Error> {
        self.conn().goaway(last_stream_id, error_code, &debug_data).map_err(error_to_wit)
    }

    fn window_update(&self, stream: u32, increment: u32) -> Result<(), wit::Error> {
        self.conn().window_update(stream, increment).map_err(error_to_wit)
    }

    fn priority(&self, stream: u32, priority: wit::Priority) -> Result<(), wit::Error> {
        self.conn().priority(stream, priority_from_wit(priority)).map_err(error_to_wit)
    }

    fn raw_write_preface_magic(&self) -> Result<(), wit::Error> {
        self.conn().raw().write_preface_magic().map_err(error_to_wit)
    }

    fn raw_write_frame(&self, frame: wit::Frame) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let mut connection = connection.raw();
        let result = match &frame {
            wit::Frame::Data(data) => connection.write_frame(&frame::Frame::Data {
                stream: data.stream,
                data: &data.data,
                end_stream: data.end_stream,
                pad_length: data.pad_length,
            }),
            wit::Frame::Headers(headers) => connection.write_frame(&frame::Frame::Headers {
                stream: headers.stream,
                block: &headers.block,
                end_stream: headers.end_stream,
                priority: headers.priority.map(priority_from_wit),
                pad_length: headers.pad_length,
            }),
            wit::Frame::Priority(priority) => connection.write_frame(&frame::Frame::Priority {
                stream: priority.stream,
                priority: priority_from_wit(priority.priority),
            }),
            wit::Frame::RstStream(rst) => {
                connection.write_frame(&frame::Frame::RstStream { stream: rst.stream, error_code: rst.error_code })
            }
            wit::Frame::Settings(settings) => {
                let settings = settings_from_wit(settings)?;
                connection.write_frame(&frame::Frame::Settings { settings: &settings })
            }
            wit::Frame::SettingsAck => connection.write_frame(&frame::Frame::SettingsAck),
            wit::Frame::PushPromise(push) => connection.write_frame(&frame::Frame::PushPromise {
                stream: push.stream,
                promised_stream: push.promised_stream,
                block: &push.block,
                pad_length: push.pad_length,
            }),
            wit::Frame::Ping(ping) => connection
                .write_frame(&frame::Frame::Ping { opaque_data: ping.opaque_data.to_be_bytes(), ack: ping.ack }),
            wit::Frame::Goaway(goaway) => connection.write_frame(&frame::Frame::Goaway {
                last_stream_id: goaway.last_stream_id,
                error_code: goaway.error_code,
                debug_data: &goaway.debug_data,
            }),
            wit::Frame::WindowUpdate(update) => connection
                .write_frame(&frame::Frame::WindowUpdate { stream: update.stream, increment: update.increment }),
            wit::Frame::PriorityUpdate(update) => connection.write_frame(&frame::Frame::PriorityUpdate {
                prioritized_stream: update.prioritized_stream,
                field_value: &update.field_value,
            }),
            wit::Frame::Extension(extension) => connection.write_frame(&frame::Frame::Extension {
                frame_type: extension.frame_type,
                flags: extension.flags,
                stream: extension.stream,
                payload: &extension.payload,
            }),
        };
        result.map_err(error_to_wit)
    }

    fn raw_write_headers(
        &self,
        stream: u32,
        fields: wit::HeaderList,
        options: wit::HeadersOptions,
    ) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let fields = fields_from_wit(&fields)?;
        let options = HeadersOptions {
            end_stream: options.end_stream,
            priority: options.priority.map(priority_from_wit),
            pad_length: options.pad_length,
        };
        connection.raw().write_headers(stream, &fields, options).map_err(error_to_wit)
    }

    fn raw_write_push_promise(
        &self,
        stream: u32,
        promised_stream: u32,
        fields: wit::HeaderList,
        pad_length: Option<u8>,
    ) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let fields = fields_from_wit(&fields)?;
        connection.raw().write_push_promise(stream, promised_stream, &fields, pad_length).map_err(error_to_wit)
    }

    fn respond(
        &self,
        stream: u32,
        fields: wit::HeaderList,
        hints: wit::StreamHints,
        end_stream: bool,
    ) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let fields = fields_from_wit(&fields)?;
        let hints = StreamHints { content_length: hints.content_length };
        connection.respond(stream, &fields, hints, end_stream).map_err(error_to_wit)
    }

    fn push_promise(&self, stream: u32, promised: u32, fields: wit::HeaderList) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let fields = fields_from_wit(&fields)?;
        connection.push_promise(stream, promised, &fields).map_err(error_to_wit)
    }

    fn open_stream(
        &self,
        stream: u32,
        fields: wit::HeaderList,
        hints: wit::StreamHints,
        end_stream: bool,
    ) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let fields = fields_from_wit(&fields)?;
        let hints = StreamHints { content_length: hints.content_length };
        connection.open_stream(stream, &fields, hints, end_stream).map_err(error_to_wit)
    }

    fn send(&self, stream: u32, data: Vec<u8>) -> Result<u32, wit::Error> {
        let accepted = self.conn().send(stream, &data).map_err(error_to_wit)?;
        Ok(len_to_wit(accepted))
    }

    fn send_and_drain(&self, stream: u32, data: Vec<u8>) -> Result<wit::Sent, wit::Error> {
        let mut wire = Vec::new();
        let accepted = self.conn().send_and_drain(stream, &data, &mut wire).map_err(error_to_wit)?;
        Ok(wit::Sent { accepted: len_to_wit(accepted), wire })
    }

    fn frame_in_place(&self, stream: u32, len: u32) -> Result<wit::InPlace, wit::Error> {
        let (mut ahead, mut headers) = (Vec::new(), Vec::new());
        let framed =
            self.conn().frame_in_place(stream, len as usize, &mut ahead, &mut headers).map_err(error_to_wit)?;
        Ok(wit::InPlace { framed: len_to_wit(framed), ahead, headers })
    }

    fn send_batch(&self, items: Vec<wit::BatchItem>, data: Vec<u8>) -> wit::BatchOutcome {
        let mut connection = self.conn();
        // Everything the outcome needs is reserved before any item is sent.
        let (mut library_items, mut accepted, mut taken) = (Vec::new(), Vec::new(), Vec::new());
        let reserved = library_items.try_reserve_exact(items.len()).is_ok()
            && accepted.try_reserve_exact(items.len()).is_ok()
            && taken.try_reserve_exact(items.len()).is_ok();
        if !reserved {
            let requested = items.len() * (size_of::<conn::BatchItem>() + size_of::<usize>() + size_of::<u32>());
            return wit::BatchOutcome { accepted: taken, error: Some(oom_error(requested)) };
        }
        library_items.extend(items.iter().map(|item| conn::BatchItem { stream: item.stream, len: item.len as usize }));
        let outcome = connection.send_batch(&library_items, &data, &mut accepted);
        taken.extend(accepted.into_iter().map(len_to_wit));
        wit::BatchOutcome { accepted: taken, error: outcome.err().map(error_to_wit) }
    }

    fn finish(&self, stream: u32, trailers: Option<wit::HeaderList>) -> Result<(), wit::Error> {
        let mut connection = self.conn();
        let trailers = trailers.as_ref().map(fields_from_wit).transpose()?;
        connection.finish(stream, trailers.as_deref()).map_err(error_to_wit)
    }

    fn reset(&self, stream: u32, error_code: u32) -> Result<(), wit::Error> {
        self.conn().reset(stream, error_code).map_err(error_to_wit)
    }

    fn drain(&self, max_bytes: u32) -> Result<Vec<u8>, wit::Error> {
        let mut connection = self.conn();
        let mut out = Vec::new();
        let drained = match connection.drain(max_bytes as usize, &mut out) {
            // Memory is full: hand out as much as fits in the reserve.
            Err(conn::Error::Pool(PoolError::OutOfMemory { requested })) => {
                out = memory::output(max_bytes as usize).ok_or_else(|| oom_error(requested))?;
                let limit = out.capacity().min(max_bytes as usize);
                connection.drain(limit, &mut out)
            }
            result => result,
        };
        drained.map_err(error_to_wit)?;
        Ok(out)
    }

    fn stats(&self) -> wit::Stats {
        stats_to_wit(&self.conn().stats())
    }

    fn stream_state(&self, stream: u32) -> wit::StreamState {
        use conn::StreamState as S;
        match self.conn().stream_state(stream) {
            S::Idle => wit::StreamState::Idle,
            S::ReservedLocal => wit::StreamState::ReservedLocal,
            S::ReservedRemote => wit::StreamState::ReservedRemote,
            S::Open => wit::StreamState::Open,
            S::HalfClosedLocal => wit::StreamState::HalfClosedLocal,
            S::HalfClosedRemote => wit::StreamState::HalfClosedRemote,
            S::Closed => wit::StreamState::Closed,
        }
    }
}

fn pool_config_from_wit(pool: wit::PoolConfig) -> pool::PoolConfig {
    pool::PoolConfig {
        min_class: pool.min_class as usize,
        max_class: pool.max_class as usize,
        idle_per_class: pool.idle_per_class as usize,
        idle_total_bytes: pool.idle_total_bytes as usize,
        budget_bytes: pool.budget_bytes as usize,
    }
}

fn pool_config_to_wit(pool: &pool::PoolConfig) -> wit::PoolConfig {
    wit::PoolConfig {
        min_class: len_to_wit(pool.min_class),
        max_class: len_to_wit(pool.max_class),
        idle_per_class: len_to_wit(pool.idle_per_class),
        idle_total_bytes: len_to_wit(pool.idle_total_bytes),
        budget_bytes: len_to_wit(pool.budget_bytes),
    }
}

fn config_from_wit(config: wit::Config) -> conn::Config {
    conn::Config {
        role: match config.role {
            wit::Role::Client => conn::Role::Client,
            wit::Role::Server => conn::Role::Server,
        },
        pool_share: config.pool_share.map(|share| share as usize),
        stream_high_watermark: config.stream_high_watermark as usize,
        conn_high_watermark: config.conn_high_watermark as usize,
        max_header_table_size: config.max_header_table_size as usize,
        output_high_watermark: config.output_high_watermark as usize,
    }
}

fn config_to_wit(config: &conn::Config) -> wit::Config {
    wit::Config {
        role: match config.role {
            conn::Role::Client => wit::Role::Client,
            conn::Role::Server => wit::Role::Server,
        },
        pool_share: config.pool_share.map(len_to_wit),
        stream_high_watermark: len_to_wit(config.stream_high_watermark),
        conn_high_watermark: len_to_wit(config.conn_high_watermark),
        max_header_table_size: len_to_wit(config.max_header_table_size),
        output_high_watermark: len_to_wit(config.output_high_watermark),
    }
}

/// A guest `usize` as a WIT `u32` (lossless: the guest is 32-bit).
fn len_to_wit(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn priority_from_wit(priority: wit::Priority) -> frame::Priority {
    frame::Priority {
        stream_dependency: priority.stream_dependency,
        weight: priority.weight,
        exclusive: priority.exclusive,
    }
}

fn settings_from_wit(settings: &[wit::Setting]) -> Result<Vec<(u16, u32)>, wit::Error> {
    let mut pairs = Vec::new();
    pairs.try_reserve_exact(settings.len()).map_err(|_| oom_error(settings.len() * size_of::<(u16, u32)>()))?;
    pairs.extend(settings.iter().map(|setting| (setting.id, setting.value)));
    Ok(pairs)
}

fn fields_from_wit(list: &wit::HeaderList) -> Result<Vec<hpack::HeaderField<'_>>, wit::Error> {
    let mut borrowed = Vec::new();
    borrowed
        .try_reserve_exact(list.fields.len())
        .map_err(|_| oom_error(list.fields.len() * size_of::<hpack::HeaderField<'_>>()))?;
    let lengths = list.fields.iter().map(|field| (field.name_len as usize, field.value_len as usize, field.sensitive));
    hpack::split_fields(&list.bytes, lengths, &mut borrowed).map_err(|error| error_to_wit(error.into()))?;
    Ok(borrowed)
}

fn pool_stats_to_wit(pool: &pool::PoolStats) -> Result<wit::PoolStats, wit::Error> {
    Ok(wit::PoolStats {
        classes: classes_to_wit(&pool.classes)?,
        leased_bytes: len_to_wit(pool.leased_bytes),
        idle_bytes: len_to_wit(pool.idle_bytes),
        peak_leased_bytes: len_to_wit(pool.peak_leased_bytes),
        peak_idle_bytes: len_to_wit(pool.peak_idle_bytes),
        peak_total_bytes: len_to_wit(pool.peak_total_bytes),
        connections: len_to_wit(pool.connections),
    })
}

fn stats_to_wit(stats: &conn::Stats) -> wit::Stats {
    wit::Stats {
        leased_bytes: len_to_wit(stats.leased_bytes),
        peak_leased_bytes: len_to_wit(stats.peak_leased_bytes),
        live_bytes: len_to_wit(stats.live_bytes),
        peak_live_bytes: len_to_wit(stats.peak_live_bytes),
        pending_bytes: len_to_wit(stats.pending_bytes),
        queued_bytes: len_to_wit(stats.queued_bytes),
        open_streams: len_to_wit(stats.open_streams),
        frames: stats.frames,
        bytes_drained: stats.bytes_drained,
        pending_streams: len_to_wit(stats.pending_streams),
        trailer_bytes: len_to_wit(stats.trailer_bytes),
        conn_window: stats.conn_window,
    }
}

fn classes_to_wit(classes: &[pool::ClassStats]) -> Result<Vec<wit::ClassStats>, wit::Error> {
    let mut out = Vec::new();
    out.try_reserve_exact(classes.len()).map_err(|_| oom_error(classes.len() * size_of::<wit::ClassStats>()))?;
    out.extend(classes.iter().map(|class| wit::ClassStats {
        size: len_to_wit(class.size),
        leased_buffers: len_to_wit(class.leased_buffers),
        leased_bytes: len_to_wit(class.leased_bytes),
        idle_buffers: len_to_wit(class.idle_buffers),
        idle_bytes: len_to_wit(class.idle_bytes),
        hits: class.hits,
        misses: class.misses,
        trims: class.trims,
    }));
    Ok(out)
}

/// The allocator refused `requested` bytes: the typed error, built without
/// allocating (empty message) so that it cannot fail itself.
fn oom_error(requested: usize) -> wit::Error {
    wit::Error {
        detail: wit::ErrorDetail::Pool(wit::PoolError::OutOfMemory(wit::OutOfMemory {
            requested: len_to_wit(requested),
        })),
        message: String::new(),
    }
}

/// The library error as the WIT `error`; if its strings cannot be allocated,
/// the `out-of-memory` error for them instead.
fn error_to_wit(error: conn::Error) -> wit::Error {
    let message = match try_to_string(&error) {
        Ok(message) => message,
        Err(requested) => return oom_error(requested),
    };
    match detail_to_wit(&error) {
        Ok(detail) => wit::Error { detail, message },
        Err(requested) => oom_error(requested),
    }
}

fn detail_to_wit(error: &conn::Error) -> Result<wit::ErrorDetail, usize> {
    use wit::ErrorDetail as D;
    Ok(match error {
        conn::Error::Frame(error) => D::Frame(frame_error_to_wit(error)?),
        conn::Error::Hpack(error) => D::Hpack(hpack_error_to_wit(error)?),
        conn::Error::Pool(PoolError::BudgetExceeded { requested, held, budget }) => {
            D::Pool(wit::PoolError::BudgetExceeded(wit::BudgetExceeded {
                requested: len_to_wit(*requested),
                held: len_to_wit(*held),
                budget: len_to_wit(*budget),
            }))
        }
        conn::Error::Pool(PoolError::ShareExceeded { requested, leased, share }) => {
            D::Pool(wit::PoolError::ShareExceeded(wit::ShareExceeded {
                requested: len_to_wit(*requested),
                leased: len_to_wit(*leased),
                share: len_to_wit(*share),
            }))
        }
        conn::Error::Pool(PoolError::OutOfMemory { requested }) => {
            D::Pool(wit::PoolError::OutOfMemory(wit::OutOfMemory { requested: len_to_wit(*requested) }))
        }
        conn::Error::Pool(PoolError::TooLarge { requested, max_class }) => {
            D::Pool(wit::PoolError::TooLarge(wit::TooLarge {
                requested: len_to_wit(*requested),
                max_class: len_to_wit(*max_class),
            }))
        }
        conn::Error::StreamNotOpen { stream } => D::StreamNotOpen(wit::StreamNotOpen { stream: *stream }),
        conn::Error::StreamIdInvalid { stream, reason } => {
            D::StreamIdInvalid(wit::StreamIdInvalid { stream: *stream, reason: try_to_string(reason)? })
        }
        conn::Error::WindowOverflow { stream } => D::WindowOverflow(wit::WindowOverflow { stream: *stream }),
        conn::Error::BatchLength { lengths, data } => {
            D::BatchLength(wit::BatchLength { lengths: *lengths, data: len_to_wit(*data) })
        }
        conn::Error::WouldBlock { stream, pending } => {
            D::WouldBlock(wit::WouldBlock { stream: *stream, pending: len_to_wit(*pending) })
        }
        conn::Error::Refused { stream, rule } => D::Refused(wit::Refusal { stream: *stream, rule: rule_to_wit(rule) }),
    })
}

fn rule_to_wit(rule: &conn::Rule) -> wit::Rule {
    use conn::Rule as R;
    match rule {
        R::State { .. } => wit::Rule::State,
        R::ConcurrencyLimit { .. } => wit::Rule::ConcurrencyLimit,
        R::Push { .. } => wit::Rule::Push,
        R::HeaderListSize { .. } => wit::Rule::HeaderListSize,
        R::ExtendedConnect => wit::Rule::ExtendedConnect,
        R::GoingAway { .. } => wit::Rule::GoingAway,
        R::GoawayIncrease { .. } => wit::Rule::GoawayIncrease,
        R::Message { .. } => wit::Rule::Message,
        R::ContentLength { .. } => wit::Rule::ContentLength,
        R::Preface { .. } => wit::Rule::Preface,
        R::ReceiveWindow { .. } => wit::Rule::ReceiveWindow,
        R::ManagedStream { .. } => wit::Rule::ManagedStream,
    }
}

fn frame_error_to_wit(error: &FrameError) -> Result<wit::FrameError, usize> {
    use wit::FrameError as E;
    Ok(match *error {
        FrameError::StreamIdRequired { frame } => {
            E::StreamIdRequired(wit::StreamIdRequired { frame: frame_type_to_wit(frame) })
        }
        FrameError::ReservedBit { field, value } => {
            E::ReservedBit(wit::ReservedBit { field: try_to_string(&field)?, value })
        }
        FrameError::SelfDependency { stream } => E::SelfDependency(wit::SelfDependency { stream }),
        FrameError::WindowIncrement { increment } => E::WindowIncrement(wit::WindowIncrement { increment }),
        FrameError::SettingValue { id, value } => E::SettingValue(wit::SettingValue { id, value }),
        FrameError::CoreFrameType { frame_type } => E::CoreFrameType(wit::CoreFrameType { frame_type }),
        FrameError::PayloadTooLarge { frame, len, max } => E::PayloadTooLarge(wit::PayloadTooLarge {
            frame: frame_type_to_wit(frame),
            len: len_to_wit(len),
            max: len_to_wit(max),
        }),
        FrameError::ExtensionPayloadTooLarge { frame_type, len, max } => {
            E::ExtensionPayloadTooLarge(wit::ExtensionPayloadTooLarge {
                frame_type,
                len: len_to_wit(len),
                max: len_to_wit(max),
            })
        }
        FrameError::MaxFrameSize { value } => E::MaxFrameSize(wit::MaxFrameSize { value }),
        FrameError::BufferTooSmall { needed, available } => {
            E::BufferTooSmall(wit::BufferTooSmall { needed: len_to_wit(needed), available: len_to_wit(available) })
        }
    })
}

fn hpack_error_to_wit(error: &HpackError) -> Result<wit::HpackError, usize> {
    use wit::HpackError as E;
    let field = |name: &String, reason: &&str| -> Result<wit::InvalidField, usize> {
        Ok(wit::InvalidField { name: try_to_string(name)?, reason: try_to_string(reason)? })
    };
    Ok(match error {
        HpackError::InvalidName { name, reason } => E::InvalidName(field(name, reason)?),
        HpackError::InvalidValue { name, reason } => E::InvalidValue(field(name, reason)?),
        HpackError::ConnectionSpecific { name } => {
            E::ConnectionSpecific(wit::NamedField { name: try_to_string(name)? })
        }
        HpackError::PseudoHeader { name, reason } => E::PseudoHeader(field(name, reason)?),
        HpackError::BufferTooSmall { needed, available } => {
            E::BufferTooSmall(wit::BufferTooSmall { needed: len_to_wit(*needed), available: len_to_wit(*available) })
        }
        HpackError::FieldLengths { lengths, bytes } => {
            E::FieldLengths(wit::FieldLengthsMismatch { lengths: *lengths, bytes: len_to_wit(*bytes) })
        }
    })
}

fn frame_type_to_wit(frame: FrameType) -> wit::FrameType {
    match frame {
        FrameType::Data => wit::FrameType::Data,
        FrameType::Headers => wit::FrameType::Headers,
        FrameType::Priority => wit::FrameType::Priority,
        FrameType::RstStream => wit::FrameType::RstStream,
        FrameType::Settings => wit::FrameType::Settings,
        FrameType::PushPromise => wit::FrameType::PushPromise,
        FrameType::Ping => wit::FrameType::Ping,
        FrameType::Goaway => wit::FrameType::Goaway,
        FrameType::WindowUpdate => wit::FrameType::WindowUpdate,
        FrameType::Continuation => wit::FrameType::Continuation,
        FrameType::PriorityUpdate => wit::FrameType::PriorityUpdate,
    }
}

/// Formats `value` into a string allocated with `try_reserve`; on failure
/// returns how many bytes were needed.
fn try_to_string(value: &impl Display) -> Result<String, usize> {
    /// Counts the bytes a `Display` writes.
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Formatting into a counter cannot fail.
    let _ = write!(counter, "{value}");
    let mut text = String::new();
    text.try_reserve_exact(counter.0).map_err(|_| counter.0)?;
    // The capacity is exact, so this write does not allocate.
    let _ = write!(text, "{value}");
    Ok(text)
}

/// The `baselines` interface (benchmark build only): one Go model for the
/// whole instance, which connections created while it is set lease from.
#[cfg(feature = "baselines")]
mod baselines {
    use std::cell::RefCell;

    use super::exports::h2fw::writer::baselines as wit;
    use super::{Component, classes_to_wit, error_to_wit, len_to_wit};
    use crate::baseline::{GoPools, Model};

    thread_local! {
        static MODEL: RefCell<Option<GoPools>> = const { RefCell::new(None) };
    }

    /// The instance's Go model, if one is in use.
    pub(super) fn model() -> Option<GoPools> {
        MODEL.with_borrow(Clone::clone)
    }

    impl wit::Guest for Component {
        fn use_model(model: Option<wit::Model>) {
            let model = model.map(|model| match model {
                wit::Model::Go7 => Model::Go7,
                wit::Model::Single => Model::Single,
            });
            MODEL.with_borrow_mut(|current| *current = model.map(GoPools::new));
        }

        fn model_stats() -> Result<Option<wit::ScratchStats>, wit::Error> {
            let Some(pools) = model() else { return Ok(None) };
            let stats = pools.try_stats().map_err(|error| error_to_wit(error.into()))?;
            Ok(Some(wit::ScratchStats {
                pools: classes_to_wit(&stats.pools)?,
                leased_bytes: len_to_wit(stats.leased_bytes),
                idle_bytes: len_to_wit(stats.idle_bytes),
                peak_total_bytes: len_to_wit(stats.peak_total_bytes),
                gc_cycles: stats.gc_cycles,
            }))
        }
    }
}

/// The component's allocator: the system's, with a reserve that only the
/// canonical ABI (call arguments) and `drain`'s output may use once memory
/// is full, so that a host that caps linear memory gets typed errors and
/// can drain its way back, instead of a trap. The reserve is taken with the
/// first connection and kept for the instance's life; it empties whenever
/// the allocations in it are freed (each call frees its arguments, and
/// `drain`'s output goes once the host has read it).
mod memory {
    use std::alloc::{GlobalAlloc, Layout, System, handle_alloc_error};
    use std::cell::Cell;
    use std::ptr;

    /// Size of the reserve, bytes.
    pub const LEN: usize = crate::COMPONENT_ARGUMENT_RESERVE;

    /// Where the reserve is, what of it is in use, and a block set aside for
    /// the next allocation of one layout (see [`hand_over`]).
    struct State {
        base: Cell<*mut u8>,
        used: Cell<usize>,
        live: Cell<usize>,
        handed: Cell<Option<(*mut u8, Layout)>>,
        /// The host is lowering, or the glue lifting, a call's arguments:
        /// allocations refused by the system may go in the reserve.
        lifting: Cell<bool>,
    }

    // SAFETY: the component runs on one thread; nothing here is shared across threads.
    unsafe impl Sync for State {}

    static STATE: State = State {
        base: Cell::new(ptr::null_mut()),
        used: Cell::new(0),
        live: Cell::new(0),
        handed: Cell::new(None),
        lifting: Cell::new(false),
    };

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator;

    /// Takes the reserve, if not yet taken and memory allows.
    pub fn take() {
        if STATE.base.get().is_null() {
            // SAFETY: a non-zero size and a power-of-two alignment.
            STATE.base.set(unsafe { System.alloc(Layout::from_size_align_unchecked(LEN, 16)) });
        }
    }

    /// The call's arguments are lifted: later allocations are the call's
    /// own work, kept out of the reserve so it empties when the call ends.
    pub fn arguments_lifted() {
        STATE.lifting.set(false);
    }

    /// Sets a block aside for the next allocation of `layout` (one the caller
    /// cannot make fallibly itself, as a resource's box); `false` if the
    /// allocator refuses it.
    pub fn hand_over(layout: Layout) -> bool {
        if STATE.handed.get().is_some() {
            return true;
        }
        // SAFETY: callers pass layouts of non-zero size.
        let block = unsafe { System.alloc(layout) };
        if block.is_null() {
            return false;
        }
        STATE.handed.set(Some((block, layout)));
        true
    }

    /// A buffer of up to `max` bytes in the reserve, for output when memory is full.
    pub fn output(max: usize) -> Option<Vec<u8>> {
        let len = max.clamp(1, LEN);
        let block = reserve_alloc(Layout::from_size_align(len, 1).ok()?);
        // SAFETY: `block` holds `len` bytes for the global allocator, which
        // frees it with the reserve's other blocks.
        (!block.is_null()).then(|| unsafe { Vec::from_raw_parts(block, 0, len) })
    }

    fn owns(block: *mut u8) -> bool {
        let base = STATE.base.get();
        !base.is_null() && (base as usize..base as usize + LEN).contains(&(block as usize))
    }

    /// Bump allocation in the reserve; null when it has no room.
    fn reserve_alloc(layout: Layout) -> *mut u8 {
        let base = STATE.base.get();
        if base.is_null() {
            return ptr::null_mut();
        }
        let start = (base as usize + STATE.used.get()).next_multiple_of(layout.align()) - base as usize;
        if start + layout.size() > LEN {
            return ptr::null_mut();
        }
        STATE.used.set(start + layout.size());
        STATE.live.set(STATE.live.get() + 1);
        base.wrapping_add(start)
    }

    fn reserve_free() {
        STATE.live.set(STATE.live.get() - 1);
        if STATE.live.get() == 0 {
            STATE.used.set(0);
        }
    }

    struct Allocator;

    // SAFETY: blocks come from `System` or from the reserve (itself one
    // `System` block), never both; each is freed where it came from.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if let Some((block, handed)) = STATE.handed.get()
                && handed == layout
            {
                STATE.handed.set(None);
                return block;
            }
            // SAFETY: the caller's contract.
            let block = unsafe { System.alloc(layout) };
            if block.is_null() && STATE.lifting.get() { reserve_alloc(layout) } else { block }
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            if owns(block) {
                reserve_free();
            } else {
                // SAFETY: the caller's contract; the block is the system's.
                unsafe { System.dealloc(block, layout) }
            }
        }

        unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if !owns(block) {
                // SAFETY: the caller's contract; the block is the system's.
                return unsafe { System.realloc(block, layout, new_size) };
            }
            if new_size <= layout.size() {
                // Shrinking in the reserve (a `Vec` made a boxed slice) keeps the block.
                return block;
            }
            // SAFETY: the caller's contract: `new_size` is valid for `layout`'s alignment.
            let moved = unsafe { System.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
            if !moved.is_null() {
                // SAFETY: both blocks hold at least the bytes copied, and are distinct.
                unsafe { ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size)) };
                reserve_free();
            }
            moved
        }
    }

    /// The canonical ABI's allocator (where the host lowers call arguments),
    /// replacing wit-bindgen's default: when the system allocator refuses,
    /// the arguments, and the copies the glue lifts them into, go in the
    /// reserve. If that has no room either it traps: the canonical ABI has
    /// no way to report an error.
    ///
    /// # Safety
    /// The canonical ABI's `realloc` contract: `old_ptr`/`old_len`/`align`
    /// describe an allocation made here (or `old_len` is 0), `align` is a
    /// power of two.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
        if new_len == 0 {
            // A dangling, aligned pointer for a zero-sized allocation.
            return align as *mut u8;
        }
        STATE.lifting.set(true);
        // SAFETY: the caller's contract; `new_len` is not zero.
        let layout = unsafe { Layout::from_size_align_unchecked(new_len, align) };
        let block = if old_len == 0 {
            // SAFETY: as above.
            unsafe { ALLOCATOR.alloc(layout) }
        } else {
            // SAFETY: as above.
            unsafe { ALLOCATOR.realloc(old_ptr, Layout::from_size_align_unchecked(old_len, align), new_len) }
        };
        if block.is_null() {
            handle_alloc_error(layout);
        }
        block
    }
}
