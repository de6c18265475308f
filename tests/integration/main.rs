//! memtree's integration tests, one binary: the CLI on captured fixtures, on live process trees,
//! unprivileged, and on commands it runs.

mod command;
mod dedup;
mod erosion;
mod errors;
mod exact;
mod fixtures;
mod golden;
mod hostile;
mod live;
mod metrics;
mod privilege;
mod python;
mod record;
mod scale;
mod schema;
mod shell;
mod support;
mod top;
mod workloads;
