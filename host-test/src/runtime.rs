//! The h2fw component under wasmtime: one engine and compiled component per
//! build and process, one store per instance, and a `ResourceLimiter` that
//! watches (and can cap) each instance's linear memory.
//!
//! A [`ComponentInstance`] holds one pool and any number of connections,
//! each a [`ComponentWriter`]: the shape of a proxy that keeps all its
//! connections in one instance. [`ComponentWriter::new`] gives a connection
//! an instance of its own, the other shape.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, anyhow};
use h2fw::COMPONENT_ARGUMENT_RESERVE;
use h2fw::baseline::{Model, ScratchStats};
use h2fw::conn::{BatchItem, Config, HeadersOptions, Role, Stats, StreamHints};
use h2fw::frame::{Frame, Priority};
use h2fw::hpack::HeaderField;
use h2fw::pool::{ClassStats, PoolConfig, PoolStats};
use wasmtime::component::{Component, Instance, InstancePre, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::writer::{ErrorKind, MemoryStats, Policy, WriteError, Writer};

/// Host bindings of `wit/` (the benchmark world, a superset of `writer`).
mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "writer-baselines" });
}

use bindings::exports::h2fw::writer::baselines as bwit;
use bindings::exports::h2fw::writer::conn as wit;

/// The production component built by `build.rs`, embedded so the binary stands alone.
const COMPONENT: &[u8] = include_bytes!(env!("H2FW_COMPONENT"));
/// The same library built with the `baselines` feature (Go's pools as models).
const BASELINES_COMPONENT: &[u8] = include_bytes!(env!("H2FW_BASELINES_COMPONENT"));

/// Which build of the component to instantiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// What embedders ship: `world writer`.
    Production,
    /// `world writer-baselines`: also exports the Go models.
    Baselines,
}

impl Build {
    /// The build that runs `policy`.
    pub fn for_policy(policy: Policy) -> Build {
        if policy == Policy::Tiered { Build::Production } else { Build::Baselines }
    }
}

/// A compiled, pre-linked build and where its exports are.
struct Loaded {
    pre: InstancePre<HostState>,
    conn: wit::GuestIndices,
    baselines: Option<bwit::GuestIndices>,
}

/// The engine and both builds, compiled once per process.
struct Runtime {
    engine: Engine,
    production: Loaded,
    baselines: Loaded,
}

fn runtime() -> anyhow::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| compile().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow!("cannot load the h2fw component: {error}"))
}

fn compile() -> anyhow::Result<Runtime> {
    // The world is synchronous: without the component-model-async task
    // machinery each export call costs about a third (see BENCHMARKS.md).
    let mut engine_config = wasmtime::Config::new();
    engine_config.concurrency_support(false);
    let engine = Engine::new(&engine_config).map_err(anyhow::Error::from).context("configuring wasmtime")?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("linking WASI")?;
    let load = |bytes: &[u8], with_baselines: bool| -> anyhow::Result<Loaded> {
        let component = Component::new(&engine, bytes).map_err(anyhow::Error::from).context("compiling")?;
        let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from).context("linking")?;
        let conn = wit::GuestIndices::new(&pre).map_err(anyhow::Error::from)?;
        let baselines =
            with_baselines.then(|| bwit::GuestIndices::new(&pre)).transpose().map_err(anyhow::Error::from)?;
        Ok(Loaded { pre, conn, baselines })
    };
    let production = load(COMPONENT, false).context("the production component")?;
    let baselines = load(BASELINES_COMPONENT, true).context("the baselines component")?;
    Ok(Runtime { engine, production, baselines })
}

/// What a store holds for one instance: WASI state and the memory limiter.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Linear memory that several instances count together, under one cap: the
/// host's budget for a fleet of instances (one per connection).
#[derive(Debug, Clone, Default)]
pub struct SharedMemoryCap {
    /// The cap, bytes, over every instance that holds this.
    pub cap: usize,
    totals: Arc<Totals>,
}

/// What a [`SharedMemoryCap`] counts.
#[derive(Debug, Default)]
struct Totals {
    current: AtomicUsize,
    peak: AtomicUsize,
    growths: AtomicUsize,
    refused: AtomicUsize,
}

impl SharedMemoryCap {
    /// A cap of `cap` bytes over every instance created with it.
    pub fn new(cap: usize) -> Self {
        SharedMemoryCap { cap, totals: Arc::default() }
    }

    /// Linear memory of all those instances together.
    pub fn memory(&self) -> MemoryStats {
        let t = &self.totals;
        MemoryStats {
            current: t.current.load(Ordering::Relaxed),
            peak: t.peak.load(Ordering::Relaxed),
            growths: t.growths.load(Ordering::Relaxed) as u64,
            refused: t.refused.load(Ordering::Relaxed) as u64,
        }
    }

    /// Counts a growth of `by` bytes, unless it would pass the cap.
    fn grow(&self, by: usize) -> bool {
        let t = &self.totals;
        t.growths.fetch_add(1, Ordering::Relaxed);
        if t.current.load(Ordering::Relaxed) + by > self.cap {
            t.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let now = t.current.fetch_add(by, Ordering::Relaxed) + by;
        t.peak.fetch_max(now, Ordering::Relaxed);
        true
    }
}

/// Tracks every linear-memory growth of one instance and refuses growth
/// beyond `cap` (or beyond a cap shared with other instances): the guest's
/// `memory.grow` then fails, and its `try_reserve` reports the typed
/// out-of-memory error.
#[derive(Debug, Default)]
struct MemoryLimiter {
    cap: Option<usize>,
    shared: Option<SharedMemoryCap>,
    stats: MemoryStats,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.stats.growths += 1;
        // Sizes are per memory; the instance total moves by the difference.
        let total = self.stats.current.saturating_sub(current) + desired;
        let growth = total.saturating_sub(self.stats.current);
        let refused =
            self.cap.is_some_and(|cap| total > cap) || self.shared.as_ref().is_some_and(|shared| !shared.grow(growth));
        if refused {
            self.stats.refused += 1;
            return Ok(false);
        }
        self.stats.current = total;
        self.stats.peak = self.stats.peak.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.totals.current.fetch_sub(self.stats.current, Ordering::Relaxed);
        }
    }
}

/// One instance of the component: its store, its exports, and one pool that
/// every connection made with [`ComponentWriter::connect`] leases from.
pub struct ComponentInstance {
    store: Store<HostState>,
    conn: wit::Guest,
    baselines: Option<bwit::Guest>,
    pool: ResourceAny,
}

/// A [`ComponentInstance`] that several writers use.
pub type SharedInstance = Rc<RefCell<ComponentInstance>>;

impl ComponentInstance {
    /// Instantiates `build` with a pool of `pool` limits. `memory_cap` bounds
    /// the instance's linear memory in bytes (it must leave room for the
    /// initial memory, or instantiation fails).
    pub fn new(build: Build, pool: &PoolConfig, memory_cap: Option<usize>) -> anyhow::Result<Self> {
        Self::with_limits(build, pool, memory_cap, None)
    }

    /// [`ComponentInstance::new`], counting linear memory against `shared` too.
    pub fn with_limits(
        build: Build,
        pool: &PoolConfig,
        memory_cap: Option<usize>,
        shared: Option<SharedMemoryCap>,
    ) -> anyhow::Result<Self> {
        let runtime = runtime()?;
        let loaded = match build {
            Build::Production => &runtime.production,
            Build::Baselines => &runtime.baselines,
        };
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: memory_cap, shared, stats: MemoryStats::default() },
        };
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|state| &mut state.limiter);
        let instance: Instance =
            loaded.pre.instantiate(&mut store).map_err(anyhow::Error::from).context("instantiating the component")?;
        let conn = loaded.conn.load(&mut store, &instance).map_err(anyhow::Error::from)?;
        let baselines = loaded.baselines.as_ref().map(|indices| indices.load(&mut store, &instance)).transpose()?;
        let pool = conn
            .pool()
            .call_constructor(&mut store, pool_config_to_wit(pool))
            .map_err(anyhow::Error::from)
            .context("creating the pool")?;
        Ok(ComponentInstance { store, conn, baselines, pool })
    }

    /// An instance for `policy`: the production build for `tiered`, else the
    /// baselines build with that Go model in use.
    pub fn for_policy(policy: Policy, pool: &PoolConfig, shared: Option<SharedMemoryCap>) -> anyhow::Result<Self> {
        let mut instance = Self::with_limits(Build::for_policy(policy), pool, None, shared)?;
        if let Some(model) = policy.model() {
            instance.use_model(Some(model))?;
        }
        Ok(instance)
    }

    /// In a baselines instance, makes connections created from now on take
    /// Go scratch buffers from one instance-wide `model` (`None`: tiered).
    pub fn use_model(&mut self, model: Option<Model>) -> anyhow::Result<()> {
        let baselines = self.baselines.as_ref().context("the production component has no Go models")?;
        let model = model.map(|model| match model {
            Model::Go7 => bwit::Model::Go7,
            Model::Single => bwit::Model::Single,
        });
        baselines.call_use_model(&mut self.store, model).map_err(anyhow::Error::from)
    }

    /// Statistics of the instance's pool (all its connections together).
    pub fn pool_stats(&mut self) -> Result<PoolStats, WriteError> {
        let stats = self.conn.pool().call_stats(&mut self.store, self.pool).map_err(host_error)?;
        stats.map(pool_stats_from_wit).map_err(error_from_wit)
    }

    /// Statistics of the instance's Go model, if it runs one.
    pub fn model_stats(&mut self) -> Result<Option<ScratchStats>, WriteError> {
        let Some(baselines) = &self.baselines else { return Ok(None) };
        let stats = baselines.call_model_stats(&mut self.store).map_err(host_error)?.map_err(error_from_wit)?;
        Ok(stats.map(|stats| ScratchStats {
            pools: classes_from_wit(stats.pools),
            leased_bytes: stats.leased_bytes as usize,
            idle_bytes: stats.idle_bytes as usize,
            peak_total_bytes: stats.peak_total_bytes as usize,
            gc_cycles: stats.gc_cycles,
        }))
    }

    /// Changes the linear-memory cap from now on (`None`: no cap). Memory
    /// already grown is kept: wasm memory never shrinks.
    pub fn set_memory_cap(&mut self, cap: Option<usize>) {
        self.store.data_mut().limiter.cap = cap;
    }

    /// Linear memory of the instance so far.
    pub fn memory(&self) -> MemoryStats {
        self.store.data().limiter.stats
    }

    /// Bytes the instance may still grow by under its caps (`None`: no cap).
    fn room(&self) -> Option<usize> {
        let limiter = &self.store.data().limiter;
        let own = limiter.cap.map(|cap| cap.saturating_sub(limiter.stats.current));
        let shared = limiter.shared.as_ref().map(|shared| shared.cap.saturating_sub(shared.memory().current));
        own.into_iter().chain(shared).min()
    }
}

/// Room under a memory cap that arguments beyond the component's reserve
/// need on top of their own size: the allocator grows memory in 64 KiB
/// steps, once per list in the worst case.
const ARGUMENT_SLACK: usize = 3 * COMPONENT_ARGUMENT_RESERVE;

/// The h2fw component as a [`Writer`]: one `connection` resource in an
/// instance, which it may share with other writers.
pub struct ComponentWriter {
    instance: SharedInstance,
    connection: ResourceAny,
}

impl ComponentWriter {
    /// A connection with `config` in an instance of its own (production
    /// build) with a pool of `pool` limits; `memory_cap` as in
    /// [`ComponentInstance::new`].
    pub fn new(config: &Config, pool: &PoolConfig, memory_cap: Option<usize>) -> anyhow::Result<Self> {
        let instance = ComponentInstance::new(Build::Production, pool, memory_cap)?;
        Self::connect(&Rc::new(RefCell::new(instance)), config)
    }

    /// A connection with `config` in `instance`, leasing from its pool.
    pub fn connect(instance: &SharedInstance, config: &Config) -> anyhow::Result<Self> {
        let connection = {
            let instance = &mut *instance.borrow_mut();
            let (conn, store, pool) = (&instance.conn, &mut instance.store, instance.pool);
            conn.connection()
                .call_open(store, pool, config_to_wit(config))
                .map_err(anyhow::Error::from)
                .context("creating the connection")?
                .map_err(|error| anyhow::Error::new(error_from_wit(error)).context("creating the connection"))?
        };
        Ok(ComponentWriter { instance: instance.clone(), connection })
    }

    /// The component's default connection limits (`default-config`).
    pub fn default_config() -> anyhow::Result<Config> {
        let mut instance = ComponentInstance::new(Build::Production, &PoolConfig::default(), None)?;
        let config = instance.conn.call_default_config(&mut instance.store)?;
        Ok(config_from_wit(&config))
    }

    /// The component's default pool limits (`default-pool-config`).
    pub fn default_pool_config() -> anyhow::Result<PoolConfig> {
        let mut instance = ComponentInstance::new(Build::Production, &PoolConfig::default(), None)?;
        let config = instance.conn.call_default_pool_config(&mut instance.store)?;
        Ok(pool_config_from_wit(&config))
    }

    /// The instance this connection lives in.
    pub fn instance(&self) -> &SharedInstance {
        &self.instance
    }

    /// Changes the instance's linear-memory cap (see [`ComponentInstance::set_memory_cap`]).
    pub fn set_memory_cap(&mut self, cap: Option<usize>) {
        self.instance.borrow_mut().set_memory_cap(cap);
    }

    /// Linear memory of the instance so far.
    pub fn memory(&self) -> MemoryStats {
        self.instance.borrow().memory()
    }

    /// Refuses, before the call, arguments of `bytes` the component might
    /// not be able to take. Up to its reserve it always can; beyond, their
    /// lowering needs room under the memory cap, and when that room is
    /// missing the canonical ABI could only trap, which would lose every
    /// connection of the instance.
    fn check_room(&self, bytes: usize) -> Result<(), WriteError> {
        // Each list may lose up to 7 bytes to alignment in the reserve.
        if bytes + 64 <= COMPONENT_ARGUMENT_RESERVE {
            return Ok(());
        }
        match self.instance.borrow().room() {
            Some(room) if room < bytes + ARGUMENT_SLACK => Err(WriteError::Rejected {
                kind: ErrorKind::OutOfMemory,
                message: format!(
                    "{bytes} bytes of arguments need {} bytes of room under the memory cap, {room} left",
                    bytes + ARGUMENT_SLACK
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The connection's methods, with the store and resource handle.
    fn call<T>(
        &mut self,
        call: impl FnOnce(
            &wit::GuestConnection<'_>,
            &mut Store<HostState>,
            ResourceAny,
        ) -> wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, WriteError> {
        let instance = &mut *self.instance.borrow_mut();
        match call(&instance.conn.connection(), &mut instance.store, self.connection) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(error_from_wit(error)),
            Err(trap) => Err(host_error(trap)),
        }
    }
}

impl Drop for ComponentWriter {
    /// Drops the guest's connection, which gives its buffers back to the pool.
    fn drop(&mut self) {
        let instance = &mut *self.instance.borrow_mut();
        // A trapped instance cannot run the destructor; its memory goes with it.
        let _ = self.connection.resource_drop(&mut instance.store);
    }
}

/// A wasmtime failure (a trap): the instance is unusable.
fn host_error(error: wasmtime::Error) -> WriteError {
    WriteError::Host(error.into())
}

impl ComponentWriter {
    /// `raw-write-headers` with the header list in the form the WIT carries it:
    /// every name and value back to back in `bytes`, and per field its name
    /// length, value length and sensitivity. For hosts that hold header
    /// lists that way; lengths that do not add up to `bytes` are refused
    /// with a typed `hpack` error.
    pub fn write_headers_flat(
        &mut self,
        stream: u32,
        bytes: &[u8],
        lengths: &[(u32, u32, bool)],
        options: HeadersOptions,
    ) -> Result<(), WriteError> {
        let fields = lengths
            .iter()
            .map(|&(name_len, value_len, sensitive)| wit::FieldLengths { name_len, value_len, sensitive })
            .collect();
        self.write_headers_list(stream, wit::HeaderList { bytes: bytes.to_vec(), fields }, options)
    }

    fn write_headers_list(
        &mut self,
        stream: u32,
        fields: wit::HeaderList,
        options: HeadersOptions,
    ) -> Result<(), WriteError> {
        self.check_room(header_list_bytes(&fields))?;
        let options = wit::HeadersOptions {
            end_stream: options.end_stream,
            priority: options.priority.map(priority_to_wit),
            pad_length: options.pad_length,
        };
        self.call(|guest, store, connection| guest.call_raw_write_headers(store, connection, stream, &fields, options))
    }
}

impl Writer for ComponentWriter {
    fn apply_peer_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        self.check_room(settings.len() * size_of::<wit::Setting>())?;
        let settings = settings_to_wit(settings);
        self.call(|guest, store, connection| guest.call_apply_peer_settings(store, connection, &settings))
    }

    fn apply_window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_window_update(store, connection, stream, increment))
    }

    fn apply_peer_headers(&mut self, stream: u32, end_stream: bool) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_headers(store, connection, stream, end_stream))
    }

    fn apply_peer_end_stream(&mut self, stream: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_end_stream(store, connection, stream))
    }

    fn apply_peer_reset(&mut self, stream: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_reset(store, connection, stream))
    }

    fn apply_peer_goaway(&mut self, last_stream_id: u32) -> Result<Vec<u32>, WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_goaway(store, connection, last_stream_id))
    }

    fn apply_peer_data(&mut self, stream: u32, len: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_data(store, connection, stream, len))
    }

    fn apply_peer_push_promise(&mut self, stream: u32, promised: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_apply_peer_push_promise(store, connection, stream, promised))
    }

    fn write_preface(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        self.check_room(settings.len() * size_of::<wit::Setting>())?;
        let settings = settings_to_wit(settings);
        self.call(|guest, store, connection| guest.call_write_preface(store, connection, &settings))
    }

    fn write_settings(&mut self, settings: &[(u16, u32)]) -> Result<(), WriteError> {
        self.check_room(settings.len() * size_of::<wit::Setting>())?;
        let settings = settings_to_wit(settings);
        self.call(|guest, store, connection| guest.call_write_settings(store, connection, &settings))
    }

    fn ack_settings(&mut self) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_ack_settings(store, connection))
    }

    fn priority(&mut self, stream: u32, priority: Priority) -> Result<(), WriteError> {
        let priority = priority_to_wit(priority);
        self.call(|guest, store, connection| guest.call_priority(store, connection, stream, priority))
    }

    fn ping(&mut self, opaque_data: [u8; 8], ack: bool) -> Result<(), WriteError> {
        let opaque_data = u64::from_be_bytes(opaque_data);
        self.call(|guest, store, connection| guest.call_ping(store, connection, opaque_data, ack))
    }

    fn goaway(&mut self, last_stream_id: u32, error_code: u32, debug_data: &[u8]) -> Result<(), WriteError> {
        self.check_room(debug_data.len())?;
        self.call(|guest, store, connection| {
            guest.call_goaway(store, connection, last_stream_id, error_code, debug_data)
        })
    }

    fn window_update(&mut self, stream: u32, increment: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_window_update(store, connection, stream, increment))
    }

    fn raw_write_preface_magic(&mut self) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_raw_write_preface_magic(store, connection))
    }

    fn raw_write_frame(&mut self, frame: &Frame<'_>) -> Result<(), WriteError> {
        self.check_room(frame_argument_bytes(frame))?;
        let frame = frame_to_wit(frame);
        self.call(|guest, store, connection| guest.call_raw_write_frame(store, connection, &frame))
    }

    fn raw_write_headers(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        options: HeadersOptions,
    ) -> Result<(), WriteError> {
        self.write_headers_list(stream, fields_to_wit(fields), options)
    }

    fn raw_write_push_promise(
        &mut self,
        stream: u32,
        promised_stream: u32,
        fields: &[HeaderField<'_>],
        pad_length: Option<u8>,
    ) -> Result<(), WriteError> {
        let fields = fields_to_wit(fields);
        self.check_room(header_list_bytes(&fields))?;
        self.call(|guest, store, connection| {
            guest.call_raw_write_push_promise(store, connection, stream, promised_stream, &fields, pad_length)
        })
    }

    fn respond(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        let fields = fields_to_wit(fields);
        self.check_room(header_list_bytes(&fields))?;
        let hints = wit::StreamHints { content_length: hints.content_length };
        self.call(|guest, store, connection| guest.call_respond(store, connection, stream, &fields, hints, end_stream))
    }

    fn open_stream(
        &mut self,
        stream: u32,
        fields: &[HeaderField<'_>],
        hints: StreamHints,
        end_stream: bool,
    ) -> Result<(), WriteError> {
        let fields = fields_to_wit(fields);
        self.check_room(header_list_bytes(&fields))?;
        let hints = wit::StreamHints { content_length: hints.content_length };
        self.call(|guest, store, connection| {
            guest.call_open_stream(store, connection, stream, &fields, hints, end_stream)
        })
    }

    fn push_promise(&mut self, stream: u32, promised: u32, fields: &[HeaderField<'_>]) -> Result<(), WriteError> {
        let fields = fields_to_wit(fields);
        self.check_room(header_list_bytes(&fields))?;
        self.call(|guest, store, connection| guest.call_push_promise(store, connection, stream, promised, &fields))
    }

    fn send(&mut self, stream: u32, data: &[u8]) -> Result<usize, WriteError> {
        self.check_room(data.len())?;
        let accepted = self.call(|guest, store, connection| guest.call_send(store, connection, stream, data))?;
        Ok(accepted as usize)
    }

    fn send_and_drain(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        self.check_room(data.len())?;
        let sent = self.call(|guest, store, connection| guest.call_send_and_drain(store, connection, stream, data))?;
        out.extend_from_slice(&sent.wire);
        Ok(sent.accepted as usize)
    }

    fn frame_in_place(&mut self, stream: u32, data: &[u8], out: &mut Vec<u8>) -> Result<usize, WriteError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let in_place =
            self.call(|guest, store, connection| guest.call_frame_in_place(store, connection, stream, len))?;
        out.extend_from_slice(&in_place.ahead);
        crate::writer::interleave(&in_place.headers, data, in_place.framed as usize, out)
    }

    fn send_batch(&mut self, items: &[BatchItem], data: &[u8], accepted: &mut Vec<usize>) -> Result<(), WriteError> {
        let items: Vec<wit::BatchItem> = items
            .iter()
            .map(|item| wit::BatchItem { stream: item.stream, len: u32::try_from(item.len).unwrap_or(u32::MAX) })
            .collect();
        self.check_room(data.len() + items.len() * size_of::<wit::BatchItem>())?;
        let outcome =
            self.call(|guest, store, connection| guest.call_send_batch(store, connection, &items, data).map(Ok))?;
        accepted.extend(outcome.accepted.into_iter().map(|taken| taken as usize));
        outcome.error.map_or(Ok(()), |error| Err(error_from_wit(error)))
    }

    fn finish(&mut self, stream: u32, trailers: Option<&[HeaderField<'_>]>) -> Result<(), WriteError> {
        let trailers = trailers.map(fields_to_wit);
        self.check_room(trailers.as_ref().map_or(0, header_list_bytes))?;
        self.call(|guest, store, connection| guest.call_finish(store, connection, stream, trailers.as_ref()))
    }

    fn reset(&mut self, stream: u32, error_code: u32) -> Result<(), WriteError> {
        self.call(|guest, store, connection| guest.call_reset(store, connection, stream, error_code))
    }

    fn drain(&mut self, max_bytes: usize, out: &mut Vec<u8>) -> Result<usize, WriteError> {
        let max_bytes = u32::try_from(max_bytes).unwrap_or(u32::MAX);
        let bytes = self.call(|guest, store, connection| guest.call_drain(store, connection, max_bytes))?;
        out.extend_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn stats(&mut self) -> Result<Stats, WriteError> {
        let stats = self.call(|guest, store, connection| guest.call_stats(store, connection).map(Ok))?;
        Ok(stats_from_wit(stats))
    }

    fn pool_stats(&mut self) -> Result<PoolStats, WriteError> {
        self.instance.borrow_mut().pool_stats()
    }

    fn model_stats(&mut self) -> Result<Option<ScratchStats>, WriteError> {
        self.instance.borrow_mut().model_stats()
    }

    fn linear_memory(&self) -> Option<MemoryStats> {
        Some(self.memory())
    }
}

/// A host size as a guest `u32` (the guest is 32-bit: larger means "unbounded").
fn size_to_wit(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

fn pool_config_to_wit(pool: &PoolConfig) -> wit::PoolConfig {
    wit::PoolConfig {
        min_class: size_to_wit(pool.min_class),
        max_class: size_to_wit(pool.max_class),
        idle_per_class: size_to_wit(pool.idle_per_class),
        idle_total_bytes: size_to_wit(pool.idle_total_bytes),
        budget_bytes: size_to_wit(pool.budget_bytes),
    }
}

fn pool_config_from_wit(pool: &wit::PoolConfig) -> PoolConfig {
    PoolConfig {
        min_class: pool.min_class as usize,
        max_class: pool.max_class as usize,
        idle_per_class: pool.idle_per_class as usize,
        idle_total_bytes: pool.idle_total_bytes as usize,
        budget_bytes: pool.budget_bytes as usize,
    }
}

fn config_to_wit(config: &Config) -> wit::Config {
    wit::Config {
        role: match config.role {
            Role::Client => wit::Role::Client,
            Role::Server => wit::Role::Server,
        },
        pool_share: config.pool_share.map(size_to_wit),
        stream_high_watermark: size_to_wit(config.stream_high_watermark),
        conn_high_watermark: size_to_wit(config.conn_high_watermark),
        max_header_table_size: size_to_wit(config.max_header_table_size),
        output_high_watermark: size_to_wit(config.output_high_watermark),
    }
}

fn config_from_wit(config: &wit::Config) -> Config {
    Config {
        role: match config.role {
            wit::Role::Client => Role::Client,
            wit::Role::Server => Role::Server,
        },
        pool_share: config.pool_share.map(|share| share as usize),
        stream_high_watermark: config.stream_high_watermark as usize,
        conn_high_watermark: config.conn_high_watermark as usize,
        max_header_table_size: config.max_header_table_size as usize,
        output_high_watermark: config.output_high_watermark as usize,
    }
}

fn settings_to_wit(settings: &[(u16, u32)]) -> Vec<wit::Setting> {
    settings.iter().map(|&(id, value)| wit::Setting { id, value }).collect()
}

/// `fields` as the WIT's two-list `header-list`.
fn fields_to_wit(fields: &[HeaderField<'_>]) -> wit::HeaderList {
    let mut bytes = Vec::with_capacity(fields.iter().map(|field| field.name.len() + field.value.len()).sum());
    let lengths = fields
        .iter()
        .map(|field| {
            bytes.extend_from_slice(field.name);
            bytes.extend_from_slice(field.value);
            let len = |part: &[u8]| u32::try_from(part.len()).unwrap_or(u32::MAX);
            wit::FieldLengths { name_len: len(field.name), value_len: len(field.value), sensitive: field.sensitive }
        })
        .collect();
    wit::HeaderList { bytes, fields: lengths }
}

/// Bytes a `header-list` takes as call arguments.
fn header_list_bytes(list: &wit::HeaderList) -> usize {
    list.bytes.len() + list.fields.len() * size_of::<wit::FieldLengths>()
}

/// Bytes `frame` takes as call arguments: its lists.
fn frame_argument_bytes(frame: &Frame<'_>) -> usize {
    match *frame {
        Frame::Data { data: bytes, .. }
        | Frame::Headers { block: bytes, .. }
        | Frame::PushPromise { block: bytes, .. }
        | Frame::Goaway { debug_data: bytes, .. }
        | Frame::PriorityUpdate { field_value: bytes, .. }
        | Frame::Extension { payload: bytes, .. } => bytes.len(),
        Frame::Settings { settings } => settings.len() * size_of::<wit::Setting>(),
        Frame::Priority { .. }
        | Frame::RstStream { .. }
        | Frame::SettingsAck
        | Frame::Ping { .. }
        | Frame::WindowUpdate { .. } => 0,
    }
}

fn priority_to_wit(priority: Priority) -> wit::Priority {
    wit::Priority {
        stream_dependency: priority.stream_dependency,
        weight: priority.weight,
        exclusive: priority.exclusive,
    }
}

fn frame_to_wit(frame: &Frame<'_>) -> wit::Frame {
    match *frame {
        Frame::Data { stream, data, end_stream, pad_length } => {
            wit::Frame::Data(wit::DataFrame { stream, data: data.to_vec(), end_stream, pad_length })
        }
        Frame::Headers { stream, block, end_stream, priority, pad_length } => wit::Frame::Headers(wit::HeadersFrame {
            stream,
            block: block.to_vec(),
            end_stream,
            priority: priority.map(priority_to_wit),
            pad_length,
        }),
        Frame::Priority { stream, priority } => {
            wit::Frame::Priority(wit::PriorityFrame { stream, priority: priority_to_wit(priority) })
        }
        Frame::RstStream { stream, error_code } => wit::Frame::RstStream(wit::RstStreamFrame { stream, error_code }),
        Frame::Settings { settings } => wit::Frame::Settings(settings_to_wit(settings)),
        Frame::SettingsAck => wit::Frame::SettingsAck,
        Frame::PushPromise { stream, promised_stream, block, pad_length } => {
            wit::Frame::PushPromise(wit::PushPromiseFrame {
                stream,
                promised_stream,
                block: block.to_vec(),
                pad_length,
            })
        }
        Frame::Ping { opaque_data, ack } => {
            wit::Frame::Ping(wit::PingFrame { opaque_data: u64::from_be_bytes(opaque_data), ack })
        }
        Frame::Goaway { last_stream_id, error_code, debug_data } => {
            wit::Frame::Goaway(wit::GoawayFrame { last_stream_id, error_code, debug_data: debug_data.to_vec() })
        }
        Frame::WindowUpdate { stream, increment } => {
            wit::Frame::WindowUpdate(wit::WindowUpdateFrame { stream, increment })
        }
        Frame::PriorityUpdate { prioritized_stream, field_value } => {
            wit::Frame::PriorityUpdate(wit::PriorityUpdateFrame {
                prioritized_stream,
                field_value: field_value.to_vec(),
            })
        }
        Frame::Extension { frame_type, flags, stream, payload } => {
            wit::Frame::Extension(wit::ExtensionFrame { frame_type, flags, stream, payload: payload.to_vec() })
        }
    }
}

/// The component's typed error as the host's [`WriteError`].
fn error_from_wit(error: wit::Error) -> WriteError {
    use wit::ErrorDetail as D;
    let kind = match error.detail {
        D::Frame(_) => ErrorKind::Frame,
        D::Hpack(_) => ErrorKind::Hpack,
        D::Pool(wit::PoolError::BudgetExceeded(_)) => ErrorKind::Budget,
        D::Pool(wit::PoolError::ShareExceeded(_)) => ErrorKind::Share,
        D::Pool(wit::PoolError::OutOfMemory(_)) => ErrorKind::OutOfMemory,
        D::Pool(wit::PoolError::TooLarge(_)) => ErrorKind::TooLarge,
        D::StreamNotOpen(_) => ErrorKind::StreamNotOpen,
        D::StreamIdInvalid(_) => ErrorKind::StreamIdInvalid,
        D::WindowOverflow(_) => ErrorKind::WindowOverflow,
        D::WouldBlock(_) => ErrorKind::WouldBlock,
        D::BatchLength(_) => ErrorKind::BatchLength,
        D::Refused(_) => ErrorKind::Refused,
    };
    // The guest leaves the message empty only when it had no memory to format it.
    let message = if error.message.is_empty() { format!("{:?}", error.detail) } else { error.message };
    WriteError::Rejected { kind, message }
}

fn pool_stats_from_wit(pool: wit::PoolStats) -> PoolStats {
    PoolStats {
        classes: classes_from_wit(pool.classes),
        leased_bytes: pool.leased_bytes as usize,
        idle_bytes: pool.idle_bytes as usize,
        peak_leased_bytes: pool.peak_leased_bytes as usize,
        peak_idle_bytes: pool.peak_idle_bytes as usize,
        peak_total_bytes: pool.peak_total_bytes as usize,
        connections: pool.connections as usize,
    }
}

fn stats_from_wit(stats: wit::Stats) -> Stats {
    Stats {
        leased_bytes: stats.leased_bytes as usize,
        peak_leased_bytes: stats.peak_leased_bytes as usize,
        live_bytes: stats.live_bytes as usize,
        peak_live_bytes: stats.peak_live_bytes as usize,
        pending_bytes: stats.pending_bytes as usize,
        queued_bytes: stats.queued_bytes as usize,
        open_streams: stats.open_streams as usize,
        frames: stats.frames,
        bytes_drained: stats.bytes_drained,
        pending_streams: stats.pending_streams as usize,
        trailer_bytes: stats.trailer_bytes as usize,
        conn_window: stats.conn_window,
    }
}

fn classes_from_wit(classes: Vec<wit::ClassStats>) -> Vec<ClassStats> {
    classes
        .into_iter()
        .map(|class| ClassStats {
            // The guest's usize::MAX marks an unbounded class.
            size: if class.size == u32::MAX { usize::MAX } else { class.size as usize },
            leased_buffers: class.leased_buffers as usize,
            leased_bytes: class.leased_bytes as usize,
            idle_buffers: class.idle_buffers as usize,
            idle_bytes: class.idle_bytes as usize,
            hits: class.hits,
            misses: class.misses,
            trims: class.trims,
        })
        .collect()
}
