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
pub mod peer;
pub mod plot;
pub mod rng;
pub mod scenario;

use h2fw::conn::Config;
use h2fw::pool::Policy;

pub use driver::{Failure, Mark, PeerSettings, Run, Sample, Trace};
pub use scenario::{Scenario, Sizes};

use crate::writer::Writer;

/// Writer calls between two memory samples.
pub const SAMPLE_EVERY: u64 = 512;

/// Every policy, in table order.
pub const POLICIES: [Policy; 3] = [Policy::Tiered, Policy::Go7, Policy::Single];

/// The connection configuration a mix runs `policy` with: the library's
/// defaults, except that the baselines get no pool budget short of the
/// wasm32 address space — Go's pools have none, and what they model is how
/// far memory goes when nothing stops it.
pub fn config(policy: Policy) -> Config {
    let mut config = Config::new(policy);
    if policy != Policy::Tiered {
        config.pool.budget_bytes = u32::MAX as usize;
    }
    config
}

/// Plays `scenario` at `sizes` on `writer` (a fresh connection), then checks
/// every stream's delivery; the trace says how far it got and why it stopped.
pub fn play(scenario: Scenario, sizes: &Sizes, writer: &mut dyn Writer) -> Trace {
    let mut run = Run::new(writer, scenario.peer_settings(), SAMPLE_EVERY);
    let result = run.connect().and_then(|()| scenario.play(&mut run, sizes)).and_then(|()| run.verify());
    run.finish_run(result)
}
