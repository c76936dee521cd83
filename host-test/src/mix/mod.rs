//! Stream mixes (issue 4): named workloads a proxy's HTTP/2 connection
//! carries, played through a [`Writer`](crate::writer::Writer) against a
//! peer that reads every drained byte, with a trace of live bytes, pool
//! bytes and linear memory along the way.
//!
//! - [`scenario`]: the mixes (`grpc-idle`, `grpc-chatty`, `upload-burst`,
//!   `seed`, `adversarial`) and their sizes;
//! - [`driver`]: one run — the writer calls, retries on exhaustion, the
//!   memory samples, and the end-to-end check of every stream's body;
//! - [`peer`]: the receiving side — frame parsing, RFC 9113 checks,
//!   per-stream reassembly, window updates and stalls;
//! - [`rng`]: the seeded generator that makes every mix repeatable;
//! - [`plot`]: linear memory over a run, per policy, as SVG;
//! - [`cli`]: `h2fw stream-mix`.

pub mod cli;
pub mod driver;
pub mod fleet;
pub mod peer;
pub mod plot;
pub mod rng;
pub mod scenario;

use h2fw::baseline::GoPools;
use h2fw::conn::Config;
use h2fw::pool::{Pool, PoolConfig};

pub use driver::{Failure, Mark, PeerSettings, Run, Sample, Trace};
pub use scenario::{Scenario, Sizes};

use crate::runtime::{ComponentInstance, ComponentWriter, SharedMemoryCap};
use crate::writer::{MemoryStats, Policy, Writer};

/// Writer calls between two memory samples.
pub const SAMPLE_EVERY: u64 = 512;

/// Every policy, in table order.
pub const POLICIES: [Policy; 3] = Policy::ALL;

/// The pool a mix runs `policy` with: the library's defaults, except that
/// under the baselines the tiered part (output queues) gets no budget short
/// of the wasm32 address space — Go's pools have none, and what they model
/// is how far memory goes when nothing stops it.
pub fn pool_config(policy: Policy) -> PoolConfig {
    let mut pool = PoolConfig::default();
    if policy != Policy::Tiered {
        pool.budget_bytes = u32::MAX as usize;
    }
    pool
}

/// Where a mix's connections live: the native library, or the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// The native library: one pool (and Go model) for every connection.
    Native,
    /// One component instance holds every connection, with one pool.
    Shared,
    /// One component instance per connection, each with its own pool.
    PerConnection,
}

impl Hosting {
    /// Lowercase name (`native`, `shared`, `per-connection`).
    pub fn name(self) -> &'static str {
        match self {
            Hosting::Native => "native",
            Hosting::Shared => "shared",
            Hosting::PerConnection => "per-connection",
        }
    }
}

/// Makes the writers of one run: every connection of `policy` under
/// `hosting`, with the library's default connection limits.
pub struct Writers {
    policy: Policy,
    hosting: Hosting,
    pool: Pool,
    scratch: Option<GoPools>,
    instance: Option<crate::runtime::SharedInstance>,
    cap: SharedMemoryCap,
}

impl Writers {
    /// Writers for `policy` under `hosting`. Instances of per-connection
    /// hosting share one cap on their total linear memory, the 4 GiB one
    /// shared instance has, so that both hostings meet the same limit.
    pub fn new(policy: Policy, hosting: Hosting) -> anyhow::Result<Self> {
        let cap = SharedMemoryCap::new(4 << 30);
        let instance = match hosting {
            Hosting::Shared => Some(std::rc::Rc::new(std::cell::RefCell::new(ComponentInstance::for_policy(
                policy,
                &pool_config(policy),
                None,
            )?))),
            Hosting::Native | Hosting::PerConnection => None,
        };
        Ok(Writers {
            policy,
            hosting,
            pool: Pool::new(pool_config(policy)),
            scratch: policy.model().map(GoPools::new),
            instance,
            cap,
        })
    }

    /// The next connection.
    pub fn connect(&mut self) -> anyhow::Result<Box<dyn Writer>> {
        let config = Config::default();
        Ok(match (&self.instance, self.hosting) {
            (Some(instance), _) => Box::new(ComponentWriter::connect(instance, &config)?),
            (None, Hosting::Native) => Box::new(self.policy.native(config, &self.pool, self.scratch.as_ref())),
            (None, _) => {
                let instance =
                    ComponentInstance::for_policy(self.policy, &pool_config(self.policy), Some(self.cap.clone()))?;
                Box::new(ComponentWriter::connect(&std::rc::Rc::new(std::cell::RefCell::new(instance)), &config)?)
            }
        })
    }

    /// Linear memory of every instance of the run together (`None` when native).
    pub fn linear_memory(&self) -> Option<MemoryStats> {
        match (&self.instance, self.hosting) {
            (Some(instance), _) => Some(instance.borrow().memory()),
            (None, Hosting::Native) => None,
            (None, _) => Some(self.cap.memory()),
        }
    }
}

/// Plays `scenario` at `sizes` on `writer` (a fresh connection), then checks
/// every stream's delivery; the trace says how far it got and why it stopped.
pub fn play(scenario: Scenario, sizes: &Sizes, writer: &mut dyn Writer) -> Trace {
    let mut run = Run::new(writer, scenario.peer_settings(), SAMPLE_EVERY);
    let result = run.connect().and_then(|()| scenario.play(&mut run, sizes)).and_then(|()| run.verify());
    run.finish_run(result)
}
