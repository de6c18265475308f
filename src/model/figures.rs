//! Model layer: the memory figures of one process or one mapping, derived from the raw smaps
//! fields. Pure, no I/O.
//!
//! Definitions follow the kernel's (<https://docs.kernel.org/filesystems/proc.html>, "smaps").
//! A figure whose inputs the kernel did not print is `None`, never 0. The figures are declared
//! here once: their JSON names (`rss_bytes`, …; docs/json.md) are the serde names below, used
//! by the report, the recordings and the tests alike.

use serde::{Deserialize, Serialize};

use super::snapshot::SmapsFields;

/// The memory figures of one process (or of one mapping), in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// `Rss`: every resident page mapped, shared or not (what `top` RES and `ps` RSS show).
    #[serde(rename = "rss_bytes")]
    pub rss: Option<u64>,
    /// `Pss`: each resident page divided by the number of processes mapping it.
    #[serde(rename = "pss_bytes")]
    pub pss: Option<u64>,
    /// `Private_Clean + Private_Dirty`: pages no other process maps; freed when it exits.
    #[serde(rename = "uss_bytes")]
    pub uss: Option<u64>,
    /// `Shared_Clean + Shared_Dirty`: pages at least one other process maps too.
    #[serde(rename = "shared_bytes")]
    pub shared: Option<u64>,
    #[serde(rename = "private_clean_bytes")]
    pub private_clean: Option<u64>,
    #[serde(rename = "private_dirty_bytes")]
    pub private_dirty: Option<u64>,
    #[serde(rename = "shared_clean_bytes")]
    pub shared_clean: Option<u64>,
    #[serde(rename = "shared_dirty_bytes")]
    pub shared_dirty: Option<u64>,
    /// `Swap`: swapped-out anonymous pages.
    #[serde(rename = "swap_bytes")]
    pub swap: Option<u64>,
    /// `SwapPss`: swap divided among the processes sharing each swap entry.
    #[serde(rename = "swap_pss_bytes")]
    pub swap_pss: Option<u64>,
    /// The kernel's split of `Pss` (smaps_rollup only, on newer kernels).
    #[serde(rename = "pss_anon_bytes")]
    pub pss_anon: Option<u64>,
    #[serde(rename = "pss_file_bytes")]
    pub pss_file: Option<u64>,
    #[serde(rename = "pss_shmem_bytes")]
    pub pss_shmem: Option<u64>,
    /// `Pss_Dirty` (newer kernels only).
    #[serde(rename = "pss_dirty_bytes")]
    pub pss_dirty: Option<u64>,
    /// `AnonHugePages + ShmemPmdMapped + FilePmdMapped`: resident bytes mapped as transparent
    /// huge pages (whichever of the three the kernel prints; absent if none).
    #[serde(rename = "thp_bytes")]
    pub thp: Option<u64>,
    /// `KSM`: bytes of pages the kernel merged with identical ones (newer kernels only).
    #[serde(rename = "ksm_bytes")]
    pub ksm: Option<u64>,
}

impl Figures {
    pub fn from_fields(f: &SmapsFields) -> Self {
        Figures {
            rss: f.rss,
            pss: f.pss,
            uss: add(f.private_clean, f.private_dirty),
            shared: add(f.shared_clean, f.shared_dirty),
            private_clean: f.private_clean,
            private_dirty: f.private_dirty,
            shared_clean: f.shared_clean,
            shared_dirty: f.shared_dirty,
            swap: f.swap,
            swap_pss: f.swap_pss,
            pss_anon: f.pss_anon,
            pss_file: f.pss_file,
            pss_shmem: f.pss_shmem,
            pss_dirty: f.pss_dirty,
            thp: [f.anon_huge_pages, f.shmem_pmd_mapped, f.file_pmd_mapped]
                .into_iter()
                .flatten()
                .reduce(u64::saturating_add),
            ksm: f.ksm,
        }
    }
}

/// Both or nothing: a sum with a missing term (or one that overflows) is missing.
pub fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a?.checked_add(b?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uss_and_shared_are_sums_and_missing_stays_missing() {
        let fields = SmapsFields {
            rss: Some(100),
            pss: Some(60),
            private_clean: Some(10),
            private_dirty: Some(30),
            shared_clean: Some(50),
            shared_dirty: Some(10),
            ..SmapsFields::default()
        };
        let f = Figures::from_fields(&fields);
        assert_eq!(f.uss, Some(40));
        assert_eq!(f.shared, Some(60));
        assert_eq!(f.pss_anon, None);
        let partial = SmapsFields { private_clean: Some(10), ..SmapsFields::default() };
        assert_eq!(Figures::from_fields(&partial).uss, None);
        // An older kernel without Pss_Anon: absent, not 0, whatever else is there.
        let old = crate::model::testing::process(1, 0).field(|f| f.pss_anon = None).build();
        let figures = Figures::from_fields(old.rollup.as_ref().unwrap());
        assert_eq!((figures.pss_anon, figures.rss), (None, Some(0)));
    }
}
