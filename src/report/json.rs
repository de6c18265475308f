//! Report layer: the JSON format, schema `memtree.report/v1`. Every figure is an integer number
//! of bytes under a `_bytes` name, or `null` when it could not be read; docs/json.md documents
//! every field.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::{Meta, Target};
use crate::model::accounting::{MappingRow, NameGroup, ProcessRow};
use crate::model::{Accounting, Figures, Totals};
use crate::runner::spec::Spec;

pub const SCHEMA: &str = "memtree.report/v1";

#[derive(Serialize)]
struct ReportJson<'a> {
    schema: &'static str,
    taken_at_unix: f64,
    exact_taken_at_unix: Option<f64>,
    privileged: bool,
    source: &'a str,
    target: TargetJson<'a>,
    moment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<CommandJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording: Option<RecordingJson>,
    processes: Vec<ProcessJson<'a>>,
    trees: Vec<TreeJson<'a>>,
    totals: TotalsJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings_by_name: Option<Vec<NameJson<'a>>>,
    explanation: Vec<String>,
}

/// Which sample of a recording the report is of (`report --from`).
#[derive(Serialize)]
struct RecordingJson {
    at: &'static str,
    sample: usize,
    samples: usize,
    seconds: f64,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum TargetJson<'a> {
    Pids { pids: &'a [u32] },
    All,
    Command { argv: &'a [String] },
    Workload { workloads: Vec<WorkloadJson> },
}

#[derive(Serialize)]
struct WorkloadJson {
    variant: &'static str,
    size_bytes: u64,
    workers: usize,
    touch: String,
}

impl From<&Spec> for WorkloadJson {
    fn from(spec: &Spec) -> Self {
        WorkloadJson {
            variant: spec.variant.as_str(),
            size_bytes: spec.size_bytes,
            workers: spec.workers,
            touch: spec.touch.to_string(),
        }
    }
}

#[derive(Serialize)]
struct CommandJson {
    exit_code: Option<i32>,
    signal: Option<i32>,
    duration_seconds: f64,
    samples: usize,
    peak_footprint_bytes: Option<u64>,
}

#[derive(Serialize)]
struct ProcessJson<'a> {
    pid: u32,
    ppid: u32,
    tree: u32,
    depth: usize,
    name: &'a str,
    uid: Option<u32>,
    cmdline: Option<&'a [String]>,
    /// Python multiprocessing, from the command lines: `worker`, `fork_server`,
    /// `resource_tracker`, or null for any other process.
    python_role: Option<&'static str>,
    /// How a worker was started: `fork`, `forkserver`, `spawn`; null otherwise.
    python_start_method: Option<&'static str>,
    /// The figures under their JSON names (`rss_bytes`, …), all `null` when unreadable.
    #[serde(flatten)]
    figures: Figures,
    unreadable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_pss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_uss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_rss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_pss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_uss_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_unreadable: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicated_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zero_filled_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedup_unreadable: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_with_parent_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    copied_from_parent_bytes: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diverged_shared_bytes: Option<Option<u64>>,
    /// Whether the erosion figures are the estimate without frames (no root).
    #[serde(skip_serializing_if = "Option::is_none")]
    erosion_estimated: Option<Option<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    copied_by_mapping: Option<Option<Vec<GroupMappingJson<'a>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    erosion_unavailable: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings: Option<Option<Vec<MappingJson<'a>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings_unreadable: Option<String>,
}

#[derive(Serialize)]
struct MappingJson<'a> {
    start: String,
    end: String,
    perms: &'a str,
    offset: u64,
    name: &'a str,
    #[serde(flatten)]
    figures: Figures,
    vm_flags: Words<'a>,
}

/// Space-separated words written as a JSON array of strings.
struct Words<'a>(&'a str);

impl Serialize for Words<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.split_ascii_whitespace())
    }
}

#[derive(Serialize)]
struct TreeJson<'a> {
    root_pid: u32,
    name: &'a str,
    totals: TotalsJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings_by_name: Option<Vec<NameJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing_groups: Option<Vec<GroupJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing_groups_rest: Option<GroupsRestJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs: Option<Vec<PairJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings_sharing: Option<Vec<NameSharingJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mappings_content: Option<Vec<NameContentJson<'a>>>,
}

/// The totals object, shared with `memtree.compare/v1`.
#[derive(Serialize)]
pub(crate) struct TotalsJson {
    processes: usize,
    readable_processes: usize,
    unreadable_processes: usize,
    unreadable_reasons: BTreeMap<&'static str, usize>,
    kernel_threads: usize,
    rss_sum_bytes: Option<u64>,
    pss_sum_bytes: Option<u64>,
    uss_sum_bytes: Option<u64>,
    shared_sum_bytes: Option<u64>,
    swap_sum_bytes: Option<u64>,
    swap_pss_sum_bytes: Option<u64>,
    thp_sum_bytes: Option<u64>,
    ksm_sum_bytes: Option<u64>,
    footprint_bytes: Option<u64>,
    footprint_method: &'static str,
    overcount: Option<f64>,
    exclusive_bytes: Option<u64>,
    zero_page_mapped_bytes: Option<u64>,
    thp_bytes: Option<u64>,
    ksm_bytes: Option<u64>,
    sharing_histogram: Option<Vec<BucketJson>>,
    exact_unavailable: Option<String>,
    duplicated_bytes: Option<u64>,
    zero_filled_bytes: Option<u64>,
    content_scanned_bytes: Option<u64>,
    dedup_method: Option<&'static str>,
    dedup_unavailable: Option<String>,
    sums_overflowed: bool,
}

#[derive(Serialize)]
struct NameContentJson<'a> {
    name: &'a str,
    duplicated_bytes: u64,
    zero_filled_bytes: u64,
}

#[derive(Serialize)]
pub(crate) struct BucketJson {
    mappers: usize,
    bytes: u64,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    processes: usize,
    bytes: u64,
    shared_outside_bytes: u64,
    members: Vec<MemberJson<'a>>,
    mappings: Vec<GroupMappingJson<'a>>,
}

/// The groups past the largest [`GROUPS_LISTED`]: how many, and their bytes.
#[derive(Serialize)]
struct GroupsRestJson {
    groups: usize,
    bytes: u64,
}

/// Sharing groups listed per tree, largest first: the output stays linear in the processes
/// (a tree of 1,000 processes whose members each fault in a slightly different part of libc
/// has hundreds of groups of ~1,000 members).
const GROUPS_LISTED: usize = 10;

#[derive(Serialize)]
struct MemberJson<'a> {
    pid: u32,
    name: &'a str,
}

#[derive(Serialize)]
struct GroupMappingJson<'a> {
    name: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct PairJson {
    a: u32,
    b: u32,
    shared_bytes: u64,
}

#[derive(Serialize)]
struct NameSharingJson<'a> {
    name: &'a str,
    processes: usize,
    private_bytes: u64,
    shared_in_tree_bytes: u64,
    shared_outside_bytes: u64,
}

impl From<&Totals> for TotalsJson {
    fn from(t: &Totals) -> Self {
        TotalsJson {
            processes: t.processes,
            readable_processes: t.readable(),
            unreadable_processes: t.unreadable_count(),
            unreadable_reasons: t.unreadable.clone(),
            kernel_threads: t.kernel_threads,
            rss_sum_bytes: t.rss_sum,
            pss_sum_bytes: t.pss_sum,
            uss_sum_bytes: t.uss_sum,
            shared_sum_bytes: t.shared_sum,
            swap_sum_bytes: t.swap_sum,
            swap_pss_sum_bytes: t.swap_pss_sum,
            thp_sum_bytes: t.thp_sum,
            ksm_sum_bytes: t.ksm_sum,
            footprint_bytes: t.footprint,
            footprint_method: t.footprint_method.as_str(),
            // Three decimals: a ratio, not a measurement to 15 digits.
            overcount: t.overcount.map(|o| (o * 1000.0).round() / 1000.0),
            exclusive_bytes: t.exact_ok().map(|e| e.exclusive),
            zero_page_mapped_bytes: t.exact_ok().map(|e| e.zero_page_mapped),
            thp_bytes: t.exact_ok().map(|e| e.thp),
            ksm_bytes: t.exact_ok().and_then(|e| e.ksm),
            sharing_histogram: t.exact_ok().map(|e| {
                e.histogram.iter().map(|&(mappers, bytes)| BucketJson { mappers, bytes }).collect()
            }),
            exact_unavailable: match &t.exact {
                Some(Err(reason)) => Some(reason.to_string()),
                _ => None,
            },
            duplicated_bytes: t.dedup_ok().map(|d| d.total.duplicated),
            zero_filled_bytes: t.dedup_ok().map(|d| d.total.zero_filled),
            content_scanned_bytes: t.dedup_ok().map(|d| d.scanned),
            dedup_method: t.dedup_ok().map(|d| d.method.as_str()),
            dedup_unavailable: match &t.dedup {
                Some(Err(reason)) => Some(reason.to_string()),
                _ => None,
            },
            sums_overflowed: t.overflowed,
        }
    }
}

#[derive(Serialize)]
struct NameJson<'a> {
    name: &'a str,
    processes: usize,
    mappings: usize,
    rss_sum_bytes: u64,
    pss_sum_bytes: u64,
    uss_sum_bytes: u64,
    swap_sum_bytes: u64,
}

impl<'a> From<&'a NameGroup> for NameJson<'a> {
    fn from(g: &'a NameGroup) -> Self {
        NameJson {
            name: &g.name,
            processes: g.processes,
            mappings: g.mappings,
            rss_sum_bytes: g.rss_sum,
            pss_sum_bytes: g.pss_sum,
            uss_sum_bytes: g.uss_sum,
            swap_sum_bytes: g.swap_sum,
        }
    }
}

fn names(groups: &Option<Vec<NameGroup>>) -> Option<Vec<NameJson<'_>>> {
    groups.as_ref().map(|g| g.iter().map(NameJson::from).collect())
}

fn mapping(m: &MappingRow) -> MappingJson<'_> {
    MappingJson {
        start: format!("{:#x}", m.start),
        end: format!("{:#x}", m.end),
        perms: &m.perms,
        offset: m.offset,
        name: &m.name,
        figures: m.figures,
        vm_flags: Words(&m.vm_flags),
    }
}

fn process<'a>(
    row: &'a ProcessRow,
    tree: u32,
    peak: bool,
    role: Option<crate::model::python::PythonRole>,
) -> ProcessJson<'a> {
    let (mappings, mappings_unreadable) = match &row.mappings {
        None => (None, None),
        Some(Ok(list)) => (Some(Some(list.iter().map(mapping).collect())), None),
        Some(Err(reason)) => (Some(None), Some(reason.to_string())),
    };
    let erosion = row.erosion.as_ref().map(|e| e.as_ref().ok());
    ProcessJson {
        pid: row.pid,
        ppid: row.ppid,
        tree,
        depth: row.depth,
        name: &row.name,
        uid: row.uid,
        cmdline: row.cmdline.as_deref(),
        python_role: role.map(|r| r.as_str()),
        python_start_method: role.and_then(|r| r.start_method()).map(|m| m.as_str()),
        figures: row.figures.as_ref().ok().copied().unwrap_or_default(),
        unreadable: row.figures.as_ref().err().map(ToString::to_string),
        peak_rss_bytes: peak.then(|| row.peak.map(|p| p.rss)),
        peak_pss_bytes: peak.then(|| row.peak.map(|p| p.pss)),
        peak_uss_bytes: peak.then(|| row.peak.map(|p| p.uss)),
        exact_rss_bytes: row.exact.as_ref().map(|e| e.as_ref().ok().map(|e| e.rss)),
        exact_pss_bytes: row.exact.as_ref().map(|e| e.as_ref().ok().map(|e| e.pss)),
        exact_uss_bytes: row.exact.as_ref().map(|e| e.as_ref().ok().map(|e| e.uss)),
        exact_unreadable: row.exact.as_ref().map(|e| e.as_ref().err().map(ToString::to_string)),
        duplicated_bytes: row.dedup.as_ref().map(|d| d.as_ref().ok().map(|d| d.duplicated)),
        zero_filled_bytes: row.dedup.as_ref().map(|d| d.as_ref().ok().map(|d| d.zero_filled)),
        dedup_unreadable: row.dedup.as_ref().map(|d| d.as_ref().err().map(ToString::to_string)),
        shared_with_parent_bytes: erosion.map(|e| e.map(|e| e.shared_with_parent)),
        copied_from_parent_bytes: erosion.map(|e| e.map(|e| e.copied_from_parent)),
        diverged_shared_bytes: erosion.map(|e| e.map(|e| e.diverged_shared)),
        erosion_estimated: erosion.map(|e| e.map(|e| e.estimated)),
        copied_by_mapping: erosion.map(|e| {
            e.map(|e| {
                e.by_mapping
                    .iter()
                    .map(|(name, bytes)| GroupMappingJson { name, bytes: *bytes })
                    .collect()
            })
        }),
        erosion_unavailable: row
            .erosion
            .as_ref()
            .map(|e| e.as_ref().err().map(ToString::to_string)),
        mappings,
        mappings_unreadable,
    }
}

pub fn write_json(out: &mut dyn Write, accounting: &Accounting, meta: &Meta) -> io::Result<()> {
    let peak = meta.run.is_some();
    let report = ReportJson {
        schema: SCHEMA,
        taken_at_unix: accounting.taken_at_unix,
        exact_taken_at_unix: accounting.exact_taken_at_unix,
        privileged: accounting.privileged,
        source: &meta.source,
        target: match &meta.target {
            Target::Pids(pids) => TargetJson::Pids { pids },
            Target::All => TargetJson::All,
            Target::Command(argv) => TargetJson::Command { argv },
            Target::Workload(specs) => {
                TargetJson::Workload { workloads: specs.iter().map(WorkloadJson::from).collect() }
            }
        },
        moment: match &meta.recorded {
            _ if peak => "peak",
            Some(_) => "recorded",
            None => "now",
        },
        recording: meta.recorded.as_ref().map(|r| RecordingJson {
            at: r.at,
            sample: r.sample,
            samples: r.samples,
            seconds: r.seconds,
        }),
        command: meta.run.as_ref().map(|run| CommandJson {
            exit_code: run.exit_code,
            signal: run.signal,
            duration_seconds: run.duration_seconds,
            samples: run.samples,
            peak_footprint_bytes: run.peak_footprint,
        }),
        processes: accounting
            .trees
            .iter()
            .flat_map(|t| {
                let roles = crate::model::python::roles(t);
                t.processes
                    .iter()
                    .map(move |p| process(p, t.root_pid, peak, roles.get(&p.pid).copied()))
            })
            .collect(),
        trees: accounting
            .trees
            .iter()
            .map(|t| TreeJson {
                root_pid: t.root_pid,
                name: &t.name,
                totals: TotalsJson::from(&t.totals),
                mappings_by_name: names(&t.mappings_by_name),
                sharing_groups: t.totals.exact_ok().map(|e| {
                    let names: std::collections::HashMap<u32, &str> =
                        t.processes.iter().map(|p| (p.pid, p.name.as_str())).collect();
                    e.groups
                        .iter()
                        .take(GROUPS_LISTED)
                        .map(|g| GroupJson {
                            processes: g.members.len(),
                            bytes: g.bytes,
                            shared_outside_bytes: g.shared_outside,
                            members: g
                                .members
                                .iter()
                                .map(|&pid| MemberJson {
                                    pid,
                                    name: names.get(&pid).copied().unwrap_or(""),
                                })
                                .collect(),
                            mappings: g
                                .mappings
                                .iter()
                                .map(|(name, bytes)| GroupMappingJson { name, bytes: *bytes })
                                .collect(),
                        })
                        .collect()
                }),
                sharing_groups_rest: t.totals.exact_ok().map(|e| GroupsRestJson {
                    groups: e.groups.len().saturating_sub(GROUPS_LISTED),
                    bytes: e.groups.iter().skip(GROUPS_LISTED).map(|g| g.bytes).sum(),
                }),
                pairs: t.totals.exact_ok().map(|e| {
                    e.pairs
                        .iter()
                        .map(|p| PairJson { a: p.a, b: p.b, shared_bytes: p.bytes })
                        .collect()
                }),
                mappings_sharing: t.totals.exact_ok().map(|e| {
                    e.by_name
                        .iter()
                        .map(|n| NameSharingJson {
                            name: &n.name,
                            processes: n.processes,
                            private_bytes: n.private,
                            shared_in_tree_bytes: n.shared_in_tree,
                            shared_outside_bytes: n.shared_outside,
                        })
                        .collect()
                }),
                mappings_content: t.totals.dedup_ok().map(|d| {
                    d.by_name
                        .iter()
                        .map(|(name, dup)| NameContentJson {
                            name,
                            duplicated_bytes: dup.duplicated,
                            zero_filled_bytes: dup.zero_filled,
                        })
                        .collect()
                }),
            })
            .collect(),
        totals: TotalsJson::from(&accounting.totals),
        mappings_by_name: names(&accounting.mappings_by_name),
        explanation: meta.sentences(accounting),
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}
