//! Runner layer: starts what memtree inspects and supervises it. `command` runs a user's
//! command for `report -- CMD`; the built-in workloads come here too.

pub mod command;
pub mod memory;
pub mod signals;
pub mod spawn;
pub mod workload;
