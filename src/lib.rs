//! memtree: how much memory a Linux process tree really uses, and which of it is truly
//! duplicated rather than shared.
//!
//! ```text
//! cli     (the command line; target.rs resolves every command's target)
//!  └> faces   report (table / json / markdown / openmetrics / compare), tui (the dashboard),
//!             serve (the Prometheus exporter)
//!      └> runner  (runs a command or a workload, supervises, cleans up)
//!          └> sampler (the only /proc reader; session.rs is the shared sampler) ──> Snapshot
//!              └> model   (pure: figures, trees, totals, exact, dedup, peaks) ──> Accounting
//! ```
//!
//! A layer uses only the layers below it (docs/architecture.md). The faces never read /proc;
//! the sampler never formats. A figure that could not be read is absent with its reason
//! ([`model::Unreadable`]), never 0.

pub mod cli;
pub mod model;
pub mod record;
pub mod report;
pub mod resident;
pub mod runner;
pub mod sampler;
pub mod serve;
pub mod tui;
pub mod units;
