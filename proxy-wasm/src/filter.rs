//! The proxy-wasm glue (wasm only): a root context per plugin, a stream
//! context per downstream connection, one [`Pool`] and one set of metrics
//! per VM.
//!
//! How bytes move (Envoy 1.40, ABI 0.2.1, which has no "write upstream"):
//! - Every `on_downstream_data` returns `Pause`, so Envoy keeps the
//!   client's bytes in its downstream buffer and its pointer to it. The
//!   filter takes that buffer whole (Envoy can only replace it whole),
//!   replaces it with the frames to send and hands it to tcp_proxy with
//!   `continue_stream(Downstream)`. Frames due at other times (ACKs,
//!   WINDOW_UPDATE, DATA unblocked by a window) are appended to the empty
//!   buffer the same way, from `on_upstream_data` or a tick.
//!   `continue_stream` takes effect when the callback returns, so the
//!   buffer must then hold frames only.
//! - Backpressure: when the tunnel holds `hold_bytes` of the client's
//!   bytes already, the buffer is left to Envoy, which stops reading the
//!   client once it passes its per-connection buffer limit, until frames
//!   must go out (a window opened); then the buffer is taken whole again.
//!   Held bytes stay bounded when that limit
//!   (`per_connection_buffer_limit_bytes` of the listener) is no larger
//!   than what a window update lets out; past twice `hold_bytes` the
//!   tunnel ends with a typed reason.
//! - Upstream bytes are parsed in `on_upstream_data`; the buffer toward the
//!   client is replaced with the DATA payloads.
//! - Nothing can be written before the client's first byte (the host
//!   refuses), so the preface and CONNECT go out with it.
//! - After the client's end of stream, every `continue_stream` makes
//!   tcp_proxy half-close the upstream connection, so the filter appends
//!   its frames and continues once, when everything (END_STREAM included)
//!   is out.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use h2fw::pool::Pool;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MetricType, PeerType};

use crate::ballast;
use crate::config::{self, VmSettings};
use crate::host;
use crate::tunnel::{EndReason, Tunnel, TunnelConfig};

proxy_wasm::main! {{
    ballast::refill();
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root { config: Rc::new(TunnelConfig::default()) }));
}}

/// What the VM shares: the pool, the metrics, the live tunnels.
struct Vm {
    pool: Pool,
    metrics: Metrics,
    /// Connections by context id (their tunnel waiting or running), for the tick.
    links: HashMap<u32, Rc<RefCell<Link>>>,
    /// Tunnels whose client connection is to be closed on the next tick.
    closing: Vec<u32>,
    /// Whether this VM has served a tunnel (see [`Vm::refresh`]).
    served: bool,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `f` on the VM state, if it is set up and not in use.
fn with_vm<T>(f: impl FnOnce(&mut Vm) -> T) -> Option<T> {
    VM.with(|vm| vm.try_borrow_mut().ok().and_then(|mut vm| vm.as_mut().map(f)))
}

/// Gauges and counters, as Envoy metrics (Envoy prefixes `wasmcustom.`).
struct Metrics {
    gauges: [Option<u32>; GAUGES.len()],
    /// What this VM added to each gauge so far.
    reported: [i64; GAUGES.len()],
    started: Option<u32>,
    opened: Option<u32>,
    window_updates_received: Option<u32>,
    window_updates_sent: Option<u32>,
    closed: HashMap<&'static str, Option<u32>>,
}

/// Gauge names, in the order [`Vm::refresh`] records them.
const GAUGES: [&str; 10] = [
    "h2fw.pool.leased_bytes",
    "h2fw.pool.idle_bytes",
    "h2fw.pool.peak_leased_bytes",
    "h2fw.pool.peak_total_bytes",
    "h2fw.pool.connections",
    "h2fw.vm.linear_memory_bytes",
    "h2fw.vm.heap_bytes",
    "h2fw.vm.peak_heap_bytes",
    "h2fw.tunnels.active",
    "h2fw.tunnels.held_bytes",
];

impl Metrics {
    fn define() -> Self {
        Self {
            gauges: GAUGES.map(|name| host::define_metric(MetricType::Gauge, name)),
            reported: [0; GAUGES.len()],
            started: host::define_metric(MetricType::Counter, "h2fw.tunnels.started"),
            opened: host::define_metric(MetricType::Counter, "h2fw.tunnels.opened"),
            window_updates_received: host::define_metric(MetricType::Counter, "h2fw.frames.window_update_received"),
            window_updates_sent: host::define_metric(MetricType::Counter, "h2fw.frames.window_update_sent"),
            closed: HashMap::new(),
        }
    }

    fn count_closed(&mut self, kind: &'static str) {
        let id = *self
            .closed
            .entry(kind)
            .or_insert_with(|| host::define_metric(MetricType::Counter, &format!("h2fw.tunnels.closed.{kind}")));
        if let Some(id) = id {
            host::increment_metric(id, 1);
        }
    }
}

impl Vm {
    /// Records every gauge.
    /// Envoy sums a gauge over the VMs that set it (the main thread's VM
    /// and each worker's), so each VM adds the change of its own value, and
    /// only once it has served a tunnel.
    fn refresh(&mut self) {
        if !self.served {
            return;
        }
        let Ok(stats) = self.pool.try_stats() else { return };
        let (mut running, mut held) = (0, 0);
        for bytes in self.links.values().filter_map(|l| l.try_borrow().ok()?.running_held_bytes()) {
            running += 1;
            held += bytes;
        }
        let values = [
            stats.leased_bytes,
            stats.idle_bytes,
            stats.peak_leased_bytes,
            stats.peak_total_bytes,
            stats.connections,
            ballast::linear_memory(),
            ballast::heap_bytes(),
            ballast::peak_heap_bytes(),
            running,
            held,
        ];
        for ((id, reported), value) in self.metrics.gauges.iter().zip(&mut self.metrics.reported).zip(values) {
            let value = value as i64;
            if let Some(id) = id
                && value != *reported
            {
                host::increment_metric(*id, value - *reported);
                *reported = value;
            }
        }
    }
}

fn counter(id: Option<u32>) {
    add(id, 1);
}

fn add(id: Option<u32>, n: u64) {
    if let (Some(id), Ok(n)) = (id, i64::try_from(n))
        && n > 0
    {
        host::increment_metric(id, n);
    }
}

/// A plugin (one listener's filter configuration).
struct Root {
    config: Rc<TunnelConfig>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let settings = match host::get_buffer(BufferType::VmConfiguration, 0, usize::MAX) {
            Ok(text) => config::parse_vm(&text),
            Err(_) => Ok(VmSettings::default()),
        };
        let settings = match settings {
            Ok(settings) => settings,
            Err(error) => {
                host::log(LogLevel::Error, &format!("h2fw: bad vm configuration: {error}"));
                return false;
            }
        };
        VM.with(|vm| {
            let mut vm = vm.borrow_mut();
            if vm.is_none() {
                host::log(LogLevel::Info, &format!("h2fw: VM pool {:?}", settings.pool));
                *vm = Some(Vm {
                    pool: Pool::new(settings.pool),
                    metrics: Metrics::define(),
                    links: HashMap::new(),
                    closing: Vec::new(),
                    served: false,
                });
            }
        });
        host::set_tick_period(settings.tick_ms).is_ok()
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let parsed = host::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map_err(|e| e.to_string())
            .and_then(|text| config::parse_plugin(&text).map_err(|e| e.to_string()));
        match parsed {
            Ok(config) => {
                host::log(LogLevel::Info, &format!("h2fw: tunnels to {} ({config:?})", config.authority));
                self.config = Rc::new(config);
                true
            }
            Err(error) => {
                host::log(LogLevel::Error, &format!("h2fw: bad plugin configuration: {error}"));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        ballast::refill();
        let closing = with_vm(|vm| {
            vm.refresh();
            std::mem::take(&mut vm.closing)
        });
        for id in closing.into_iter().flatten() {
            if host::set_effective_context(id).is_ok() {
                let _ = host::close_downstream();
            }
        }
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Stream { link: Rc::new(RefCell::new(Link::new(context_id, self.config.clone()))) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

/// Where a connection's tunnel is.
enum Phase {
    /// Connected, and neither side has sent a byte: no tunnel yet. Nothing
    /// can be written before the client's first byte, so a tunnel made
    /// earlier would only hold its queued handshake (a 16 KiB output
    /// chunk) for every silent client.
    Waiting,
    /// The tunnel runs (boxed: a waiting or finished connection keeps only
    /// the small variants).
    Running(Box<Tunnel>),
    /// The tunnel is over (or could not be made).
    Over,
}

/// One downstream connection's state, shared with the VM's tick.
struct Link {
    id: u32,
    config: Rc<TunnelConfig>,
    phase: Phase,
    /// The client's address, for the log.
    peer: String,
    /// Whether the host lets the filter write (after the client's first byte).
    writable: bool,
    /// Client bytes in Envoy's downstream buffer not yet taken.
    raw: usize,
    /// Frames of ours in that buffer (only after the client's end of stream).
    ours: usize,
    client_eos: bool,
    /// The client connection is closing (or closed): no close to ask for.
    client_gone: bool,
}

impl Link {
    fn new(id: u32, config: Rc<TunnelConfig>) -> Self {
        Self {
            id,
            config,
            phase: Phase::Waiting,
            peer: String::new(),
            writable: false,
            raw: 0,
            ours: 0,
            client_eos: false,
            client_gone: false,
        }
    }

    /// The client's held bytes, if the tunnel runs.
    fn running_held_bytes(&self) -> Option<usize> {
        match &self.phase {
            Phase::Running(tunnel) => Some(tunnel.held_bytes()),
            _ => None,
        }
    }

    /// Makes the tunnel at the first byte of either side.
    fn start(&mut self) {
        if !matches!(self.phase, Phase::Waiting) {
            return;
        }
        let Some(pool) = with_vm(|vm| vm.pool.clone()) else {
            host::log(LogLevel::Error, "h2fw: no VM state (vm start failed)");
            self.phase = Phase::Over;
            return;
        };
        match Tunnel::new(&self.config, &pool) {
            Ok(tunnel) => {
                self.phase = Phase::Running(Box::new(tunnel));
                with_vm(|vm| {
                    vm.served = true;
                    counter(vm.metrics.started);
                });
            }
            Err(reason) => self.end(reason),
        }
    }

    /// Ends the tunnel: logs why, counts it, queues the closing frames,
    /// writes what it can, frees the tunnel and asks for the client
    /// connection to be closed.
    fn end(&mut self, reason: EndReason) {
        let level = if reason.is_failure() { LogLevel::Warn } else { LogLevel::Info };
        host::log(level, &format!("h2fw tunnel {} (client {}) closed: {reason}", self.id, self.peer));
        if let Phase::Running(mut tunnel) = std::mem::replace(&mut self.phase, Phase::Over) {
            tunnel.end(&reason);
            if self.writable {
                let mut wire = Vec::new();
                if tunnel.flush(&mut wire).is_ok() && !wire.is_empty() {
                    // Whatever the client sent that is still in the buffer is dropped.
                    let replaced = self.raw + self.ours;
                    if host::set_buffer(BufferType::DownstreamData, 0, replaced, &wire).is_ok() {
                        let _ = host::continue_downstream();
                    }
                }
            }
        }
        self.raw = 0;
        self.ours = 0;
        let (id, close) = (self.id, !self.client_gone);
        with_vm(|vm| {
            vm.metrics.count_closed(reason.kind());
            vm.links.remove(&id);
            if close {
                vm.closing.push(id);
            }
            vm.refresh();
        });
    }

    /// Moves bytes: takes the client's buffer if the tunnel can take it
    /// whole, and writes every frame that can go. A failure ends the tunnel.
    fn pump(&mut self) {
        if let Err(reason) = self.try_pump() {
            self.end(reason);
        } else if ballast::take_pressure() {
            self.end(EndReason::VmMemory);
        }
    }

    fn try_pump(&mut self) -> Result<(), EndReason> {
        let Phase::Running(tunnel) = &mut self.phase else { return Ok(()) };
        if !self.writable {
            return Ok(());
        }
        let mut wire = Vec::new();
        let mut replaced = 0;
        if self.raw > 0 {
            if !tunnel.can_take(self.raw) && !tunnel.must_write() {
                // Envoy keeps the bytes (and stops reading past its limit)
                // until a window opens and frames must go out.
                return Ok(());
            }
            let bytes = host::get_buffer(BufferType::DownstreamData, self.ours, self.raw)?;
            tunnel.take_client(&bytes, &mut wire)?;
            replaced = self.ours + self.raw;
            self.raw = 0;
        }
        if self.client_eos {
            tunnel.client_finished();
        }
        tunnel.flush(&mut wire)?;
        if !self.client_eos {
            if replaced > 0 || !wire.is_empty() {
                host::set_buffer(BufferType::DownstreamData, 0, replaced, &wire)?;
            }
            if !wire.is_empty() {
                host::continue_downstream()?;
            }
            return Ok(());
        }
        // After the client's end of stream: keep our frames in the buffer
        // and continue once, when all of them are there.
        if replaced > 0 {
            let mut ours = host::get_buffer(BufferType::DownstreamData, 0, self.ours)?;
            ours.try_reserve(wire.len()).map_err(|_| EndReason::VmMemory)?;
            ours.extend_from_slice(&wire);
            host::set_buffer(BufferType::DownstreamData, 0, replaced, &ours)?;
            self.ours = ours.len();
        } else if !wire.is_empty() {
            host::set_buffer(BufferType::DownstreamData, self.ours, 0, &wire)?;
            self.ours += wire.len();
        }
        if tunnel.settled() && self.ours > 0 {
            host::continue_downstream()?;
            self.ours = 0;
        }
        Ok(())
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) {
        self.start();
        if let Phase::Over = self.phase {
            // Nothing more goes upstream.
            let _ = host::set_buffer(BufferType::DownstreamData, 0, size, &[]);
            return;
        }
        self.writable = true;
        self.raw = size.saturating_sub(self.ours);
        self.client_eos |= end_of_stream;
        self.pump();
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) {
        self.start();
        let Phase::Running(tunnel) = &mut self.phase else {
            let _ = host::set_buffer(BufferType::UpstreamData, 0, size, &[]);
            return;
        };
        let was_open = tunnel.is_open();
        let mut to_client = Vec::new();
        let result = host::get_buffer(BufferType::UpstreamData, 0, size)
            .and_then(|bytes| tunnel.on_upstream(&bytes, &mut to_client));
        let opened = !was_open && tunnel.is_open();
        let counts = tunnel.take_counts();
        with_vm(|vm| {
            add(vm.metrics.window_updates_received, counts.window_updates_received);
            add(vm.metrics.window_updates_sent, counts.window_updates_sent);
        });
        let written = host::set_buffer(BufferType::UpstreamData, 0, size, &to_client);
        if opened {
            host::log(LogLevel::Info, &format!("h2fw tunnel {} (client {}) open", self.id, self.peer));
            with_vm(|vm| counter(vm.metrics.opened));
        }
        match result.and(written) {
            Err(reason) => self.end(reason),
            Ok(()) if end_of_stream => self.end(EndReason::UpstreamClosed),
            Ok(()) => self.pump(),
        }
    }
}

/// The stream context Envoy drives for one downstream connection.
struct Stream {
    link: Rc<RefCell<Link>>,
}

impl Stream {
    fn with(&self, f: impl FnOnce(&mut Link)) {
        if let Ok(mut link) = self.link.try_borrow_mut() {
            f(&mut link);
        }
    }
}

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        if let Ok(link) = self.link.try_borrow() {
            let id = link.id;
            with_vm(|vm| {
                vm.links.remove(&id);
                vm.refresh();
            });
        }
        true
    }
}

impl StreamContext for Stream {
    fn on_new_connection(&mut self) -> Action {
        let link = self.link.clone();
        self.with(|l| {
            l.peer = host::property(&["source", "address"])
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_else(|| "?".into());
            let id = l.id;
            with_vm(|vm| vm.links.insert(id, link));
        });
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        self.with(|l| l.on_downstream_data(data_size, end_of_stream));
        Action::Pause
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {
        self.with(|l| {
            l.client_gone = true;
            match l.phase {
                Phase::Running(_) => l.end(EndReason::ClientClosed),
                // No tunnel was made: nothing to end.
                Phase::Waiting => l.phase = Phase::Over,
                Phase::Over => {}
            }
        });
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        self.with(|l| l.on_upstream_data(data_size, end_of_stream));
        Action::Continue
    }

    fn on_upstream_close(&mut self, _peer_type: PeerType) {
        self.with(|l| {
            if !matches!(l.phase, Phase::Over) {
                l.end(EndReason::UpstreamClosed);
            }
        });
    }
}
