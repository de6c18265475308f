//! memtree: how much memory a Linux process tree really uses, and which of it is truly
//! duplicated rather than shared.
//!
//! ```text
//! cli ──> runner  (runs a command or a workload, supervises, cleans up)
//!     ──> sampler (the only /proc reader: tree walk, smaps_rollup, smaps) ──> model::Snapshot
//!     ──> model   (pure: per-process figures, trees, totals, peaks)       ──> model::Accounting
//!     ──> report  (table / json / markdown to any writer)
//! ```
//!
//! The report never reads /proc; the sampler never formats. A figure that could not be read is
//! absent with its reason ([`model::Unreadable`]), never 0.

pub mod cli;
pub mod model;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod tui;
pub mod units;
