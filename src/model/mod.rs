//! Model layer: pure accounting over raw samples. Nothing here reads /proc or any file.

pub mod accounting;
pub mod dedup;
pub mod exact;
pub mod peak;
pub mod snapshot;
pub mod tree;

pub use accounting::Figures;
pub use snapshot::{MappingRaw, ProcessSample, SmapsFields, Snapshot, Unreadable};
pub use tree::{Accounting, Grouping, Totals, Tree, account};
