//! Model layer: pure accounting over raw samples. Nothing here reads /proc or any file, draws
//! or formats: it may use only the standard library and pure crates (serde, rayon, twox-hash).
//! Every layer above may use it; it uses none of them.
//!
//! - [`snapshot`]: the raw samples the sampler hands over (the only types it produces);
//! - [`figures`]: per-process and per-mapping figures (RSS, PSS, USS…) from smaps fields;
//! - [`accounting`]: processes grouped into trees, tree totals, mappings by name;
//! - [`exact`] and [`dedup`]: the algorithms over physical pages and over page contents;
//! - [`erosion`]: what a forked worker still shares with its parent, and what it copied;
//! - [`peak`]: the sample at a run's peak footprint.

pub mod accounting;
pub mod dedup;
pub mod erosion;
pub mod exact;
pub mod figures;
pub mod peak;
#[cfg(test)]
mod properties;
pub mod python;
pub mod snapshot;
#[cfg(test)]
pub(crate) mod testing;

pub use accounting::{Accounting, Grouping, Totals, Tree, account};
pub use figures::Figures;
pub use snapshot::{MappingRaw, ProcessSample, SmapsFields, Snapshot, Unreadable};
