//! Runner layer: starts what memtree inspects and supervises it — a user's command for
//! `report -- CMD` ([`command`]), the built-in workloads ([`workload`] runs one in this
//! process, [`spawn`] starts one as a child; [`spec`] describes one; [`python`] holds the Python
//! ones for `compare --python`), and the signal handling
//! that makes every way out clean ([`signals`]). It may use the sampler and the model, never a
//! face (report, tui) or the cli.

pub mod command;
pub mod memory;
pub mod python;
pub mod signals;
pub mod spawn;
pub mod spec;
pub mod workload;
