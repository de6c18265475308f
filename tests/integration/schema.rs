//! The JSON schema `memtree.report/v1`, as the tests expect it: every field named, unknown
//! fields refused, so any change to the output shows up here (and must reach docs/json.md).

// Every field is here to pin the schema (deny_unknown_fields), not every one is asserted on.
#![allow(dead_code)]

use std::collections::BTreeMap;

use memtree::model::Figures;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: String,
    pub taken_at_unix: f64,
    pub exact_taken_at_unix: Option<f64>,
    pub privileged: bool,
    pub source: String,
    pub target: serde_json::Value,
    pub moment: String,
    pub command: Option<Command>,
    pub recording: Option<Recording>,
    pub processes: Vec<Process>,
    pub trees: Vec<Tree>,
    pub totals: Totals,
    pub mappings_by_name: Option<Vec<NameGroup>>,
    pub explanation: Vec<String>,
}

/// Which sample of a recording a `report --from` is of.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub at: String,
    pub sample: usize,
    pub samples: usize,
    pub seconds: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_seconds: f64,
    pub samples: usize,
    pub peak_footprint_bytes: Option<u64>,
}

/// A process: unknown fields are not refused here (serde cannot with a flattened struct), but
/// the golden JSON (`golden.rs`) pins the whole object.
#[derive(Debug, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub tree: u32,
    pub depth: usize,
    pub name: String,
    pub uid: Option<u32>,
    pub cmdline: Option<Vec<String>>,
    pub python_role: Option<String>,
    pub python_start_method: Option<String>,
    /// The figures as memtree declares them (`rss_bytes`, …): `p.rss`, `p.pss`, ….
    #[serde(flatten)]
    pub figures: Figures,
    pub unreadable: Option<String>,
    pub peak_rss_bytes: Option<Option<u64>>,
    pub peak_pss_bytes: Option<Option<u64>>,
    pub peak_uss_bytes: Option<Option<u64>>,
    pub exact_rss_bytes: Option<Option<u64>>,
    pub exact_pss_bytes: Option<Option<u64>>,
    pub exact_uss_bytes: Option<Option<u64>>,
    pub exact_unreadable: Option<Option<String>>,
    pub duplicated_bytes: Option<Option<u64>>,
    pub zero_filled_bytes: Option<Option<u64>>,
    pub dedup_unreadable: Option<Option<String>>,
    pub shared_with_parent_bytes: Option<Option<u64>>,
    pub copied_from_parent_bytes: Option<Option<u64>>,
    pub diverged_shared_bytes: Option<Option<u64>>,
    pub erosion_estimated: Option<Option<bool>>,
    pub copied_by_mapping: Option<Option<Vec<GroupMapping>>>,
    pub erosion_unavailable: Option<Option<String>>,
    pub mappings: Option<Option<Vec<Mapping>>>,
    pub mappings_unreadable: Option<String>,
}

impl std::ops::Deref for Process {
    type Target = Figures;
    fn deref(&self) -> &Figures {
        &self.figures
    }
}

#[derive(Debug, Deserialize)]
pub struct Mapping {
    pub start: String,
    pub end: String,
    pub perms: String,
    pub offset: u64,
    pub name: String,
    /// The figures as memtree declares them (`rss_bytes`, …): `p.rss`, `p.pss`, ….
    #[serde(flatten)]
    pub figures: Figures,
    pub vm_flags: Vec<String>,
}

impl std::ops::Deref for Mapping {
    type Target = Figures;
    fn deref(&self) -> &Figures {
        &self.figures
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub root_pid: u32,
    pub name: String,
    pub totals: Totals,
    pub mappings_by_name: Option<Vec<NameGroup>>,
    pub pairs: Option<Vec<Pair>>,
    pub sharing_groups: Option<Vec<SharingGroup>>,
    pub sharing_groups_rest: Option<GroupsRest>,
    pub mappings_sharing: Option<Vec<NameSharing>>,
    pub mappings_content: Option<Vec<NameContent>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub processes: usize,
    pub readable_processes: usize,
    pub unreadable_processes: usize,
    pub unreadable_reasons: BTreeMap<String, usize>,
    pub kernel_threads: usize,
    pub rss_sum_bytes: Option<u64>,
    pub pss_sum_bytes: Option<u64>,
    pub uss_sum_bytes: Option<u64>,
    pub shared_sum_bytes: Option<u64>,
    pub swap_sum_bytes: Option<u64>,
    pub swap_pss_sum_bytes: Option<u64>,
    pub thp_sum_bytes: Option<u64>,
    pub ksm_sum_bytes: Option<u64>,
    pub footprint_bytes: Option<u64>,
    pub footprint_method: String,
    pub overcount: Option<f64>,
    pub exclusive_bytes: Option<u64>,
    pub zero_page_mapped_bytes: Option<u64>,
    pub thp_bytes: Option<u64>,
    pub ksm_bytes: Option<u64>,
    pub sharing_histogram: Option<Vec<Bucket>>,
    pub exact_unavailable: Option<String>,
    pub duplicated_bytes: Option<u64>,
    pub zero_filled_bytes: Option<u64>,
    pub content_scanned_bytes: Option<u64>,
    pub dedup_method: Option<String>,
    pub dedup_unavailable: Option<String>,
    pub sums_overflowed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameContent {
    pub name: String,
    pub duplicated_bytes: u64,
    pub zero_filled_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub mappers: usize,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingGroup {
    pub processes: usize,
    pub bytes: u64,
    pub shared_outside_bytes: u64,
    pub members: Vec<Member>,
    pub mappings: Vec<GroupMapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsRest {
    pub groups: usize,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub pid: u32,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub shared_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSharing {
    pub name: String,
    pub processes: usize,
    pub private_bytes: u64,
    pub shared_in_tree_bytes: u64,
    pub shared_outside_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameGroup {
    pub name: String,
    pub processes: usize,
    pub mappings: usize,
    pub rss_sum_bytes: u64,
    pub pss_sum_bytes: u64,
    pub uss_sum_bytes: u64,
    pub swap_sum_bytes: u64,
}

impl Report {
    pub fn process(&self, pid: u32) -> &Process {
        self.processes.iter().find(|p| p.pid == pid).unwrap_or_else(|| panic!("no pid {pid}"))
    }

    /// uss ≤ pss ≤ rss for every readable process, and the totals are the sums.
    pub fn check_invariants(&self) {
        // Costly figures are read with the sample or carried from an earlier one, never later.
        if let Some(at) = self.exact_taken_at_unix {
            assert!(at <= self.taken_at_unix, "exact at {at}, sample at {}", self.taken_at_unix);
        }
        for p in &self.processes {
            if let (Some(rss), Some(pss), Some(uss)) = (p.rss, p.pss, p.uss) {
                assert!(uss <= pss && pss <= rss, "pid {}: uss {uss} pss {pss} rss {rss}", p.pid);
                assert_eq!(p.shared.unwrap() + uss, rss, "pid {}: shared + private = rss", p.pid);
                assert!(p.unreadable.is_none());
            } else {
                assert!(p.unreadable.is_some(), "pid {} has no figures and no reason", p.pid);
                assert_eq!(p.rss, None);
                assert_eq!(p.pss, None);
            }
        }
        let readable: Vec<&Process> =
            self.processes.iter().filter(|p| p.unreadable.is_none()).collect();
        let sum = |f: fn(&Process) -> Option<u64>| -> Option<u64> {
            if readable.is_empty() {
                None
            } else {
                Some(readable.iter().map(|p| f(p).unwrap()).sum())
            }
        };
        assert_eq!(self.totals.processes, self.processes.len());
        assert_eq!(self.totals.readable_processes, readable.len());
        assert_eq!(self.totals.rss_sum_bytes, sum(|p| p.rss));
        assert_eq!(self.totals.pss_sum_bytes, sum(|p| p.pss));
        assert_eq!(self.totals.uss_sum_bytes, sum(|p| p.uss));
        assert_eq!(self.totals.shared_sum_bytes, sum(|p| p.shared));
        if let (Some(pss), Some(swap_pss), "pss_estimate") = (
            self.totals.pss_sum_bytes,
            self.totals.swap_pss_sum_bytes,
            self.totals.footprint_method.as_str(),
        ) {
            assert_eq!(self.totals.footprint_bytes, Some(pss + swap_pss));
            let overcount = self.totals.rss_sum_bytes.unwrap() as f64 / (pss + swap_pss) as f64;
            assert!((self.totals.overcount.unwrap() - overcount).abs() < 0.001);
        }
        if self.totals.footprint_method == "pagemap" {
            assert!(self.totals.exclusive_bytes.unwrap() <= self.totals.footprint_bytes.unwrap());
        } else {
            assert_eq!(self.totals.footprint_method, "pss_estimate");
        }
    }
}
