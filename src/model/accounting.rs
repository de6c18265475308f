//! Model layer: a snapshot accounted — processes grouped into trees, per-process figures,
//! tree totals, and mappings grouped by name across a tree (like librank). Pure: built from a
//! [`Snapshot`] by [`account`], no I/O. Every face (report, dashboard) reads an [`Accounting`].

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use super::dedup::{self, DedupTotals, Duplication};
use super::erosion::{self, Erosion, ParentFrames};
use super::exact::{self, ExactProcess, ExactTotals, Workspace};
use super::figures::Figures;
use super::snapshot::{
    ContentRaw, MappingRaw, PagesRaw, PfnTable, ProcessSample, Snapshot, Unreadable,
};

/// How the processes of a snapshot are grouped into trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    /// One tree per given root, in that order; a root inside another root's tree joins it.
    Roots(Vec<u32>),
    /// The whole machine: init alone, and one tree per child of init (and of pid 0: kthreadd).
    Machine,
    /// One group per process name (the kernel's `comm`, as process-exporter groups), whatever
    /// their parents; each listed by pid under its lowest one (`serve --group-by name`).
    Names,
}

/// How `footprint` was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FootprintMethod {
    /// Σ pss + Σ swap_pss: a fair share, including fractions of pages shared with processes
    /// outside the tree. An estimate.
    PssEstimate,
    /// Distinct physical frames mapped by the tree plus distinct swap entries (`--exact`).
    Pagemap,
}

impl FootprintMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FootprintMethod::PssEstimate => "pss_estimate",
            FootprintMethod::Pagemap => "pagemap",
        }
    }
}

/// A process's own highest figures over a run (`report -- CMD`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Peak {
    pub rss: u64,
    pub pss: u64,
    pub uss: u64,
}

/// One mapping of one process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MappingRow {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub name: String,
    pub figures: Figures,
    /// Space-separated, as in [`MappingRaw::vm_flags`].
    pub vm_flags: String,
}

impl From<&MappingRaw> for MappingRow {
    fn from(raw: &MappingRaw) -> Self {
        MappingRow {
            start: raw.start,
            end: raw.end,
            perms: raw.perms.clone(),
            offset: raw.offset,
            name: raw.name().to_string(),
            figures: Figures::from_fields(&raw.fields),
            vm_flags: raw.vm_flags.clone(),
        }
    }
}

/// One process of a tree, with its place in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRow {
    pub pid: u32,
    pub ppid: u32,
    /// 0 for the tree's root.
    pub depth: usize,
    pub name: String,
    pub uid: Option<u32>,
    pub cmdline: Option<Vec<String>>,
    pub figures: Result<Figures, Unreadable>,
    /// With `--exact`: rss, pss, uss recomputed from the process's physical pages.
    pub exact: Option<Result<ExactProcess, Unreadable>>,
    /// With `--dedup`: the content this process holds that an earlier process of the tree (or
    /// itself) already held.
    pub dedup: Option<Result<Duplication, Unreadable>>,
    /// With pages read (`--exact`): what this forked worker shares with its parent and what it
    /// copied since the fork; a reason for a process whose parent is not in the tree.
    pub erosion: Option<Result<Erosion, Unreadable>>,
    pub peak: Option<Peak>,
    pub mappings: Option<Result<Vec<MappingRow>, Unreadable>>,
}

/// A process's RSS split by who else maps its pages: the four segments of the dashboard's bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssSplit {
    /// Pages only this process maps, less the duplicated content among them.
    pub private: u64,
    /// Pages shared with other processes. With physical pages (`located`), only the ones every
    /// other mapper of which is in the tree; without, every shared page.
    pub shared_in_tree: u64,
    /// Pages also mapped outside the tree (0 unless `located`).
    pub shared_outside: u64,
    /// Private pages whose content another page of the tree holds too (`--dedup`).
    pub duplicated: u64,
    /// Whether shared pages are told apart by where their other mappers are (exact figures).
    pub located: bool,
}

impl ProcessRow {
    /// A copy without the per-mapping rows (they are not cloned).
    fn clone_without_mappings(&self) -> ProcessRow {
        ProcessRow {
            pid: self.pid,
            ppid: self.ppid,
            depth: self.depth,
            name: self.name.clone(),
            uid: self.uid,
            cmdline: self.cmdline.clone(),
            figures: self.figures.clone(),
            exact: self.exact.clone(),
            dedup: self.dedup.clone(),
            erosion: self.erosion.clone(),
            peak: self.peak,
            mappings: None,
        }
    }

    /// The process's RSS split into [`RssSplit`]'s segments, if its figures were read.
    pub fn rss_split(&self) -> Option<RssSplit> {
        let f = self.figures.as_ref().ok()?;
        let rss = f.rss?;
        let duplicated =
            self.dedup.as_ref().and_then(|d| d.as_ref().ok()).map_or(0, |d| d.duplicated);
        Some(match self.exact.as_ref().and_then(|e| e.as_ref().ok()) {
            Some(e) => RssSplit {
                private: e.uss.saturating_sub(duplicated),
                shared_in_tree: e.shared_in_tree,
                shared_outside: e.shared_outside,
                duplicated: duplicated.min(e.uss),
                located: true,
            },
            None => RssSplit {
                private: f.uss.unwrap_or(0),
                shared_in_tree: f.shared.unwrap_or(rss),
                shared_outside: 0,
                duplicated: 0,
                located: false,
            },
        })
    }
}

/// A mapping name summed over the processes of a tree that map it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameGroup {
    pub name: String,
    /// Processes mapping it at least once.
    pub processes: usize,
    /// Mappings with that name, over all those processes.
    pub mappings: usize,
    pub rss_sum: u64,
    pub pss_sum: u64,
    pub uss_sum: u64,
    pub swap_sum: u64,
}

/// Sums over the processes of a tree (or of several). Sums cover readable processes only;
/// `unreadable` says how many were left out and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub processes: usize,
    /// Processes whose memory could not be read, by reason kind (kernel threads not included).
    #[serde(with = "reason_kinds")]
    pub unreadable: BTreeMap<&'static str, usize>,
    /// Kernel threads: no address space, nothing to count.
    pub kernel_threads: usize,
    /// `None` when no process of the group could be read.
    pub rss_sum: Option<u64>,
    pub pss_sum: Option<u64>,
    pub uss_sum: Option<u64>,
    pub shared_sum: Option<u64>,
    pub swap_sum: Option<u64>,
    pub swap_pss_sum: Option<u64>,
    /// Σ thp, Σ ksm (each process's huge-page and KSM-merged bytes, counted in every process
    /// mapping them, as RSS is).
    pub thp_sum: Option<u64>,
    pub ksm_sum: Option<u64>,
    pub footprint: Option<u64>,
    pub footprint_method: FootprintMethod,
    /// `rss_sum / footprint`.
    pub overcount: Option<f64>,
    /// With `--exact`: the figures from physical pages, or why there are none.
    pub exact: Option<Result<ExactTotals, Unreadable>>,
    /// With `--dedup`: duplicated and zero-filled content, or why there is none.
    pub dedup: Option<Result<DedupTotals, Unreadable>>,
    /// A sum exceeded 2⁶⁴ bytes (only an impossible capture can do that): it is absent.
    pub overflowed: bool,
}

impl Totals {
    pub fn of<'a>(figures: impl IntoIterator<Item = &'a Result<Figures, Unreadable>>) -> Self {
        let mut totals = Totals {
            processes: 0,
            unreadable: BTreeMap::new(),
            kernel_threads: 0,
            rss_sum: None,
            pss_sum: None,
            uss_sum: None,
            shared_sum: None,
            swap_sum: None,
            swap_pss_sum: None,
            thp_sum: None,
            ksm_sum: None,
            footprint: None,
            footprint_method: FootprintMethod::PssEstimate,
            overcount: None,
            exact: None,
            dedup: None,
            overflowed: false,
        };
        let mut sums = [Sum::default(); 8];
        let mut readable = 0;
        for entry in figures {
            totals.processes += 1;
            match entry {
                Ok(f) => {
                    readable += 1;
                    let values = [f.rss, f.pss, f.uss, f.shared, f.swap, f.swap_pss, f.thp, f.ksm];
                    for (sum, value) in sums.iter_mut().zip(values) {
                        sum.add(value);
                    }
                }
                Err(Unreadable::NoAddressSpace) => totals.kernel_threads += 1,
                Err(reason) => *totals.unreadable.entry(reason.kind()).or_default() += 1,
            }
        }
        totals.overflowed = sums.iter().any(|s| s.overflowed);
        let [rss, pss, uss, shared, swap, swap_pss, thp, ksm] = sums.map(|s| s.total(readable));
        (totals.rss_sum, totals.pss_sum, totals.uss_sum, totals.shared_sum) =
            (rss, pss, uss, shared);
        (totals.swap_sum, totals.swap_pss_sum, totals.thp_sum, totals.ksm_sum) =
            (swap, swap_pss, thp, ksm);
        totals.footprint = match (totals.pss_sum, totals.swap_pss_sum) {
            (Some(pss), Some(swap_pss)) => pss.checked_add(swap_pss),
            (Some(pss), None) => Some(pss),
            _ => None,
        };
        totals.set_overcount();
        totals
    }

    fn set_overcount(&mut self) {
        self.overcount = match (self.rss_sum, self.footprint) {
            (Some(rss), Some(footprint)) if footprint > 0 => Some(rss as f64 / footprint as f64),
            _ => None,
        };
    }

    /// Takes the exact figures: the footprint becomes the count of distinct frames.
    pub fn set_exact(&mut self, exact: Result<ExactTotals, Unreadable>) {
        if let Ok(e) = &exact {
            self.footprint = Some(e.footprint);
            self.footprint_method = FootprintMethod::Pagemap;
            self.set_overcount();
        }
        self.exact = Some(exact);
    }

    /// Takes the exact figures of `earlier` (when `exact`: they still describe these totals)
    /// and its duplicated content ([`Accounting::carry_exact_from`]).
    fn carry_from(&mut self, earlier: &Totals, exact: bool) {
        if exact && let Some(e) = earlier.exact.clone() {
            self.set_exact(e);
        }
        self.dedup = earlier.dedup.clone();
    }

    /// The exact figures when they were computed.
    pub fn exact_ok(&self) -> Option<&ExactTotals> {
        self.exact.as_ref()?.as_ref().ok()
    }

    /// The duplication figures when they were computed.
    pub fn dedup_ok(&self) -> Option<&DedupTotals> {
        self.dedup.as_ref()?.as_ref().ok()
    }

    /// Processes left out of the sums (kernel threads excluded: they have no memory).
    pub fn unreadable_count(&self) -> usize {
        self.unreadable.values().sum()
    }

    /// Processes whose figures the sums include.
    pub fn readable(&self) -> usize {
        self.processes - self.unreadable_count() - self.kernel_threads
    }
}

/// A sum over the readable processes, in checked arithmetic: it exists only if every one of
/// them has the figure (a sum over some of them is not a sum of the tree) and it did not
/// overflow.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    total: u64,
    present: usize,
    overflowed: bool,
}

impl Sum {
    fn add(&mut self, value: Option<u64>) {
        if let Some(v) = value {
            self.present += 1;
            match self.total.checked_add(v) {
                Some(total) => self.total = total,
                None => self.overflowed = true,
            }
        }
    }

    fn total(self, readable: usize) -> Option<u64> {
        (readable > 0 && self.present == readable && !self.overflowed).then_some(self.total)
    }
}

/// [`Totals::unreadable`] through serde: the kinds as strings, read back as the kinds memtree
/// knows ([`Unreadable::kind`]); one it does not know (a recording from a newer memtree) as
/// "failed".
mod reason_kinds {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    const KINDS: [&str; 5] =
        ["vanished", "permission denied", "no address space", "failed", "not applicable"];

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<&'static str, usize>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<&'static str, usize>, D::Error> {
        let read: BTreeMap<String, usize> = BTreeMap::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (kind, n) in read {
            let known = KINDS.iter().find(|k| **k == kind).copied().unwrap_or("failed");
            *out.entry(known).or_default() += n;
        }
        Ok(out)
    }
}

/// One process tree of the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tree {
    pub root_pid: u32,
    pub name: String,
    /// Depth-first, parents before children, siblings by pid.
    pub processes: Vec<ProcessRow>,
    pub totals: Totals,
    /// With `--mappings`: names by Σ rss, largest first.
    pub mappings_by_name: Option<Vec<NameGroup>>,
}

/// Everything the report and the dashboard show about one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accounting {
    pub taken_at_unix: f64,
    pub privileged: bool,
    pub trees: Vec<Tree>,
    /// Over every tree.
    pub totals: Totals,
    pub mappings_by_name: Option<Vec<NameGroup>>,
    /// What is inconsistent in what was read (a ppid cycle in a capture), in words.
    pub notes: Vec<String>,
    /// The "trees" are groups of processes by name ([`Grouping::Names`]), not trees.
    pub by_name: bool,
    /// When the costly passes whose figures this holds read them (exact figures, duplicated
    /// content, erosion): `taken_at_unix` when they ran for this accounting, earlier when
    /// they were carried from an earlier one ([`Accounting::carry_exact_from`]), `None` when
    /// it holds none of them.
    pub exact_taken_at_unix: Option<f64>,
}

impl Accounting {
    pub fn processes(&self) -> impl Iterator<Item = &ProcessRow> {
        self.trees.iter().flat_map(|t| t.processes.iter())
    }

    /// The tree a process belongs to.
    pub fn tree_of(&self, pid: u32) -> Option<&Tree> {
        self.trees.iter().find(|t| t.processes.iter().any(|p| p.pid == pid))
    }

    /// A copy holding what [`Accounting::carry_exact_from`] needs, without the per-mapping rows
    /// and names (the bulk of a tree with tens of thousands of mappings).
    pub fn without_mappings(&self) -> Accounting {
        let strip = |rows: &[ProcessRow]| -> Vec<ProcessRow> {
            rows.iter().map(ProcessRow::clone_without_mappings).collect()
        };
        Accounting {
            taken_at_unix: self.taken_at_unix,
            privileged: self.privileged,
            trees: self
                .trees
                .iter()
                .map(|t| Tree {
                    root_pid: t.root_pid,
                    name: t.name.clone(),
                    processes: strip(&t.processes),
                    totals: t.totals.clone(),
                    mappings_by_name: None,
                })
                .collect(),
            totals: self.totals.clone(),
            mappings_by_name: None,
            notes: self.notes.clone(),
            by_name: self.by_name,
            exact_taken_at_unix: self.exact_taken_at_unix,
        }
    }

    /// Puts the exact and duplication figures of an earlier accounting of the same target on
    /// this one, which did not compute its own (the costly passes run less often than the
    /// cheap ones): per process by pid, per tree by root. Exact figures are carried only where
    /// what they describe has not moved since, by the rollups ([`still`]): a tree that grew by
    /// 100 MB since its exact pass is shown with its PSS estimate, not with the footprint it had
    /// before (which a recording would keep as the figure of that moment). Duplicated content
    /// and erosion are carried as they were, with the age the faces show. With `keep_moved`,
    /// exact figures are carried whatever moved (the exporter's series keep their method).
    /// Their time is carried with them.
    pub fn carry_exact_from(&mut self, earlier: &Accounting, keep_moved: bool) {
        self.exact_taken_at_unix = earlier.exact_taken_at_unix;
        let still = |moved: u64, base: u64| keep_moved || still(moved, base);
        let rows: HashMap<u32, &ProcessRow> = earlier.processes().map(|p| (p.pid, p)).collect();
        // A tree is its root's; a group of processes by name is that name's (looked up, not
        // searched: a whole machine is thousands of trees).
        let (mut by_root, mut by_name) = (HashMap::new(), HashMap::new());
        for t in &earlier.trees {
            if self.by_name {
                by_name.entry(t.name.as_str()).or_insert(t);
            } else {
                by_root.entry(t.root_pid).or_insert(t);
            }
        }
        let moved = |row: &ProcessRow| match rows.get(&row.pid) {
            Some(old) => moved_between(old, row),
            None => rss_uss(row).0,
        };
        let (mut all_moved, mut kept) = (0u64, 0usize);
        for tree in &mut self.trees {
            let mut tree_moved = 0u64;
            for row in &mut tree.processes {
                let m = moved(row);
                tree_moved += m;
                if let Some(old) = rows.get(&row.pid) {
                    kept += 1;
                    if still(m, rss_uss(old).0) {
                        row.exact = old.exact.clone();
                    }
                    row.dedup = old.dedup.clone();
                    row.erosion = old.erosion.clone();
                }
            }
            all_moved += tree_moved;
            let old = if self.by_name {
                by_name.get(tree.name.as_str())
            } else {
                by_root.get(&tree.root_pid)
            };
            if let Some(old) = old {
                // The processes of the tree that went away moved by all they had (a tree whose
                // members are the same, in the same order, lost none: most, every round).
                let same = old.processes.len() == tree.processes.len()
                    && old.processes.iter().zip(&tree.processes).all(|(a, b)| a.pid == b.pid);
                if !same {
                    let members: HashSet<u32> = tree.processes.iter().map(|p| p.pid).collect();
                    tree_moved += old
                        .processes
                        .iter()
                        .filter(|p| !members.contains(&p.pid))
                        .map(|p| rss_uss(p).0)
                        .sum::<u64>();
                }
                tree.totals
                    .carry_from(&old.totals, still(tree_moved, old.totals.footprint.unwrap_or(0)));
            }
        }
        // The processes that went away (none, when every earlier one was found again).
        if kept < rows.len() {
            let now: HashSet<u32> = self.processes().map(|p| p.pid).collect();
            all_moved += earlier
                .processes()
                .filter(|p| !now.contains(&p.pid))
                .map(|p| rss_uss(p).0)
                .sum::<u64>();
        }
        let carry = still(all_moved, earlier.totals.footprint.unwrap_or(0));
        self.totals.carry_from(&earlier.totals, carry);
    }

    /// Sets each process's own peak (from a run's history).
    pub fn set_peaks(&mut self, peaks: &HashMap<u32, Peak>) {
        for tree in &mut self.trees {
            for row in &mut tree.processes {
                row.peak = peaks.get(&row.pid).copied();
            }
        }
    }
}

/// A process's RSS and USS by its rollup (0 where unread).
fn rss_uss(row: &ProcessRow) -> (u64, u64) {
    row.figures.as_ref().ok().map_or((0, 0), |f| (f.rss.unwrap_or(0), f.uss.unwrap_or(0)))
}

/// How far a process moved between two accountings, by its rollups: |ΔRSS| + |ΔUSS| (a
/// copy-on-write moves USS and not RSS; a growth moves both).
fn moved_between(then: &ProcessRow, now: &ProcessRow) -> u64 {
    let ((rss0, uss0), (rss1, uss1)) = (rss_uss(then), rss_uss(now));
    rss0.abs_diff(rss1) + uss0.abs_diff(uss1)
}

/// Whether exact figures of something of `base` bytes still describe it after it moved by
/// `moved` bytes: within 2 % of it, or 1 MiB (allocator churn, a page table or two).
fn still(moved: u64, base: u64) -> bool {
    moved <= (base / 50).max(1 << 20)
}

/// Accounts a snapshot: per-process figures, trees, totals, mapping names.
pub fn account(snapshot: &Snapshot, grouping: &Grouping) -> Accounting {
    let by_pid: HashMap<u32, &ProcessSample> =
        snapshot.processes.iter().map(|p| (p.pid, p)).collect();
    let (groups, notes) = match grouping {
        Grouping::Names => (name_groups(snapshot, &by_pid), Vec::new()),
        _ => tree_groups(snapshot, grouping, &by_pid),
    };
    let mut ws = Workspace::default();
    // Asked of the snapshot once, not once per tree (a whole machine is thousands of trees).
    let contents = snapshot.processes.iter().any(|p| p.content.is_some());
    let pages = snapshot.processes.iter().any(|p| p.pages.is_some());
    // Each entry's frame, looked up once for every tree, the machine and the erosion.
    let frames: Frames = match &snapshot.pfn_table {
        Some(Ok(table)) => snapshot
            .processes
            .par_iter()
            .filter_map(|p| {
                Some((p.pid, exact::frames_of(p.pages.as_ref()?.as_ref().ok()?, table)))
            })
            .collect(),
        _ => HashMap::new(),
    };
    let mut trees: Vec<Tree> = groups
        .into_iter()
        .map(|(root, mut processes)| {
            let mut totals = Totals::of(processes.iter().map(|p| &p.figures));
            if let Some(table) = &snapshot.pfn_table {
                let page_size = snapshot.page_size;
                let exact = account_exact(
                    &mut processes,
                    &by_pid,
                    &frames,
                    table,
                    page_size,
                    &mut ws,
                    true,
                );
                totals.set_exact(exact);
            }
            if contents {
                totals.dedup = Some(account_dedup(&mut processes, &by_pid));
            }
            if pages {
                account_erosion(&mut processes, &by_pid, &frames, snapshot);
            }
            let mappings_by_name = group_by_name(&processes);
            Tree {
                root_pid: root,
                name: by_pid[&root].name.clone(),
                processes,
                totals,
                mappings_by_name,
            }
        })
        .collect();

    if matches!(grouping, Grouping::Machine | Grouping::Names) {
        trees.sort_by_key(|t| std::cmp::Reverse(t.totals.footprint));
    }
    let mut totals = Totals::of(trees.iter().flat_map(|t| t.processes.iter().map(|p| &p.figures)));
    if let Some(table) = &snapshot.pfn_table {
        let exact = if trees.len() == 1 {
            trees[0].totals.exact.clone().expect("set above")
        } else {
            // Every tree together, without pairs (see `exact::exact`).
            let mut all: Vec<ProcessRow> = trees.iter().flat_map(|t| t.processes.clone()).collect();
            account_exact(&mut all, &by_pid, &frames, table, snapshot.page_size, &mut ws, false)
        };
        totals.set_exact(exact);
    }
    if contents {
        totals.dedup = Some(if trees.len() == 1 {
            trees[0].totals.dedup.clone().expect("set above")
        } else {
            let mut all: Vec<ProcessRow> = trees.iter().flat_map(|t| t.processes.clone()).collect();
            account_dedup(&mut all, &by_pid)
        });
    }
    rayon::spawn(move || drop(frames));
    let all_rows: Vec<&ProcessRow> = trees.iter().flat_map(|t| &t.processes).collect();
    let mappings_by_name = group_by_name_refs(&all_rows);
    let costly = snapshot.pfn_table.is_some() || contents || pages;
    Accounting {
        exact_taken_at_unix: costly.then_some(snapshot.taken_at_unix),
        taken_at_unix: snapshot.taken_at_unix,
        privileged: snapshot.privileged,
        trees,
        totals,
        mappings_by_name,
        notes,
        by_name: *grouping == Grouping::Names,
    }
}

/// The processes of each tree (depth-first, parents before children, siblings by pid), by
/// root; and what is inconsistent in the parents read.
fn tree_groups(
    snapshot: &Snapshot,
    grouping: &Grouping,
    by_pid: &HashMap<u32, &ProcessSample>,
) -> (Vec<(u32, Vec<ProcessRow>)>, Vec<String>) {
    let roots: Vec<u32> = match grouping {
        Grouping::Roots(roots) => {
            let mut seen = HashSet::new();
            let given: Vec<u32> = roots
                .iter()
                .copied()
                .filter(|r| by_pid.contains_key(r) && seen.insert(*r))
                .collect();
            // A root inside another root's tree is part of that tree.
            let all: HashSet<u32> = given.iter().copied().collect();
            given
                .into_iter()
                .filter(|&r| {
                    let parent = by_pid[&r].ppid;
                    parent == r || nearest_root(parent, by_pid, &all).is_none()
                })
                .collect()
        }
        Grouping::Machine | Grouping::Names => {
            let mut roots: Vec<u32> = snapshot
                .processes
                .iter()
                .filter(|p| p.ppid <= 1 || !by_pid.contains_key(&p.ppid))
                .map(|p| p.pid)
                .collect();
            roots.sort_unstable();
            roots
        }
    };
    let mut roots = roots;
    let mut root_set: HashSet<u32> = roots.iter().copied().collect();

    // Each process joins the tree of its nearest ancestor that is a root.
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut unassigned = Vec::new();
    for p in &snapshot.processes {
        match nearest_root(p.pid, by_pid, &root_set) {
            Some(root) => members.entry(root).or_default().push(p.pid),
            None => unassigned.push(p.pid),
        }
    }
    // On the whole machine every process is in a tree. One whose parents lead round in a
    // circle (only a hand-made capture can say so) roots a tree, the circle's lowest pid, and
    // the report says so.
    let mut notes = Vec::new();
    while *grouping == Grouping::Machine && !unassigned.is_empty() {
        let root = *unassigned.iter().min().expect("not empty");
        notes.push(format!(
            "Process {root} and its parents name each other as parents (a capture whose stat \
             files disagree): they are shown as a tree of their own."
        ));
        roots.push(root);
        root_set.insert(root);
        let mut still = Vec::new();
        for pid in unassigned {
            match nearest_root(pid, by_pid, &root_set) {
                Some(root) => members.entry(root).or_default().push(pid),
                None => still.push(pid),
            }
        }
        unassigned = still;
    }
    let top_roots: Vec<u32> = roots.into_iter().filter(|r| members.contains_key(r)).collect();

    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in &snapshot.processes {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    for list in children.values_mut() {
        list.sort_unstable();
    }

    let groups = top_roots
        .iter()
        .map(|&root| {
            let in_tree: HashSet<u32> = members[&root].iter().copied().collect();
            let mut processes = Vec::with_capacity(in_tree.len());
            let mut stack = vec![(root, 0usize)];
            while let Some((pid, depth)) = stack.pop() {
                processes.push(process_row(by_pid[&pid], depth));
                if let Some(kids) = children.get(&pid) {
                    for &kid in kids.iter().rev() {
                        // A pid that is a root of its own tree is not repeated here.
                        if in_tree.contains(&kid) && kid != root && !root_set.contains(&kid) {
                            stack.push((kid, depth + 1));
                        }
                    }
                }
            }
            (root, processes)
        })
        .collect();
    (groups, notes)
}

/// The processes of each name (process-exporter's groups: the kernel's `comm`), by pid, under
/// the lowest pid of the name.
fn name_groups(
    snapshot: &Snapshot,
    by_pid: &HashMap<u32, &ProcessSample>,
) -> Vec<(u32, Vec<ProcessRow>)> {
    let mut by_name: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for p in &snapshot.processes {
        by_name.entry(p.name.as_str()).or_default().push(p.pid);
    }
    by_name
        .into_values()
        .map(|mut pids| {
            pids.sort_unstable();
            let rows = pids.iter().map(|pid| process_row(by_pid[pid], 0)).collect();
            (pids[0], rows)
        })
        .collect()
}

/// Each process's entries' frames ([`exact::frames_of`]), by pid.
type Frames = HashMap<u32, Vec<u32>>;

/// The exact figures of the processes in `rows`, each row given its own.
fn account_exact(
    rows: &mut [ProcessRow],
    by_pid: &HashMap<u32, &ProcessSample>,
    frames: &Frames,
    table: &Result<PfnTable, Unreadable>,
    page_size: u64,
    ws: &mut Workspace,
    want_pairs: bool,
) -> Result<ExactTotals, Unreadable> {
    let table = match table {
        Ok(table) => table,
        Err(reason) => {
            for row in rows.iter_mut() {
                row.exact = Some(Err(reason.clone()));
            }
            return Err(reason.clone());
        }
    };
    let mut readable = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        if let Some(Ok(pages)) = by_pid.get(&row.pid).and_then(|p| p.pages.as_ref())
            && let Some(frames) = frames.get(&row.pid)
        {
            readable.push((index, row.pid, pages, frames.as_slice()));
        }
    }
    let input: Vec<(u32, &PagesRaw, &[u32])> =
        readable.iter().map(|&(_, pid, pages, frames)| (pid, pages, frames)).collect();
    let (totals, per) = exact::exact_framed(&input, table, page_size, ws, want_pairs);
    for row in rows.iter_mut() {
        let sample = by_pid.get(&row.pid).and_then(|p| p.pages.as_ref());
        row.exact = Some(match sample {
            Some(Err(reason)) => Err(reason.clone()),
            _ => Err(Unreadable::Vanished("exited before its pages were read".into())),
        });
    }
    for ((index, _, _, _), figures) in readable.iter().zip(per) {
        rows[*index].exact = Some(Ok(figures));
    }
    // No process's pages could be read (pid 1 refused even to root, a zombie): the tree has
    // no exact figures, not a footprint of 0.
    if readable.is_empty() && !rows.is_empty() {
        let reason = rows
            .iter()
            .find_map(|r| match &r.exact {
                Some(Err(reason)) if r.figures != Err(Unreadable::NoAddressSpace) => {
                    Some(reason.clone())
                }
                _ => None,
            })
            .unwrap_or(Unreadable::NoAddressSpace);
        return Err(reason);
    }
    Ok(totals)
}

/// Duplicated content over `rows` (in order: the first holder of a content is its original).
fn account_dedup(
    rows: &mut [ProcessRow],
    by_pid: &HashMap<u32, &ProcessSample>,
) -> Result<DedupTotals, Unreadable> {
    let mut input = Vec::new();
    let mut names: Vec<Vec<String>> = Vec::new();
    let mut indexes = Vec::new();
    let mut refused = None;
    for (index, row) in rows.iter_mut().enumerate() {
        let sample = by_pid.get(&row.pid);
        match sample.and_then(|p| p.content.as_ref()) {
            Some(Ok(content)) => {
                let pages = sample.and_then(|p| p.pages.as_ref()).and_then(|p| p.as_ref().ok());
                names.push(match (&content.exclusive_only, pages) {
                    (Some(names), _) => names.clone(),
                    (None, Some(p)) => p.mappings.iter().map(|m| m.name().to_string()).collect(),
                    (None, None) => Vec::new(),
                });
                input.push(content);
                indexes.push(index);
            }
            Some(Err(reason)) => {
                refused.get_or_insert_with(|| reason.clone());
                row.dedup = Some(Err(reason.clone()));
            }
            None => {
                row.dedup = Some(Err(Unreadable::Vanished("exited before it was read".into())));
            }
        }
    }
    if input.is_empty()
        && let Some(reason) = refused
    {
        return Err(reason);
    }
    let pairs: Vec<(&[String], &ContentRaw)> = names.iter().map(Vec::as_slice).zip(input).collect();
    let (totals, per) = dedup::account(&pairs);
    for (index, d) in indexes.into_iter().zip(per) {
        rows[index].dedup = Some(Ok(d));
    }
    Ok(totals)
}

/// Each forked worker's erosion against its parent (a process whose parent is in `rows`), in
/// parallel by parent: each parent's frames are marked once for all its workers.
fn account_erosion(
    rows: &mut [ProcessRow],
    by_pid: &HashMap<u32, &ProcessSample>,
    frames_by_pid: &Frames,
    snapshot: &Snapshot,
) {
    let in_rows: HashSet<u32> = rows.iter().map(|r| r.pid).collect();
    let mut by_parent: HashMap<u32, Vec<usize>> = HashMap::new();
    for (index, row) in rows.iter_mut().enumerate() {
        if row.ppid != row.pid && in_rows.contains(&row.ppid) {
            by_parent.entry(row.ppid).or_default().push(index);
        } else {
            row.erosion = Some(Err(Unreadable::NotApplicable(
                "the root of its tree: its parent is not in it".into(),
            )));
        }
    }
    let table = snapshot.pfn_table.as_ref().and_then(|t| t.as_ref().ok());
    // The pages, and their frames where there are some.
    let pages_of = |pid: u32| -> Result<(&PagesRaw, Option<&[u32]>), Unreadable> {
        let sample = by_pid.get(&pid).ok_or_else(|| Unreadable::Vanished("not read".into()))?;
        let frames = frames_by_pid.get(&pid).map(Vec::as_slice);
        match (&sample.pages, &sample.unframed) {
            (Some(Ok(pages)), _) if frames.is_some() => Ok((pages, frames)),
            (_, Some(Ok(pages))) => Ok((pages, None)),
            (_, Some(Err(reason))) | (Some(Err(reason)), None) => Err(reason.clone()),
            (Some(Ok(_)), None) => match &snapshot.pfn_table {
                Some(Err(reason)) => Err(reason.clone()),
                _ => Err(Unreadable::Failed("pages without their frame counts".into())),
            },
            (None, None) => Err(Unreadable::Vanished("exited before its pages were read".into())),
        }
    };
    let page_size = snapshot.page_size;
    let groups: Vec<(u32, Vec<usize>)> = by_parent.into_iter().collect();
    let done: Vec<(usize, Result<Erosion, Unreadable>)> = groups
        .par_iter()
        .map_init(ParentFrames::default, |frames, (parent, workers)| {
            let parent_pages = pages_of(*parent);
            if let (Ok((_, Some(parent_frames))), Some(table)) = (&parent_pages, table) {
                frames.fill_framed(parent_frames, table);
            }
            let frames = &*frames;
            // One parent's workers in parallel too: a prefork server is one parent of them all.
            workers
                .par_iter()
                .map(|&index| {
                    let pid = rows[index].pid;
                    let erosion = match (pages_of(pid), &parent_pages) {
                        (Err(reason), _) => Err(reason),
                        (_, Err(reason)) => Err(reason.about(&format!("its parent {parent}"))),
                        (Ok((worker, Some(w))), Ok((of_parent, Some(p)))) => {
                            Ok(erosion::exact_framed(
                                *parent,
                                (worker, w),
                                (of_parent, p),
                                frames,
                                table.expect("framed pages have a table"),
                                page_size,
                            ))
                        }
                        (Ok((worker, _)), Ok((of_parent, _))) => {
                            Ok(erosion::estimate(*parent, worker, of_parent, page_size))
                        }
                    };
                    (index, erosion)
                })
                .collect::<Vec<_>>()
        })
        .flatten()
        .collect();
    for (index, erosion) in done {
        rows[index].erosion = Some(erosion);
    }
}

fn nearest_root(
    pid: u32,
    by_pid: &HashMap<u32, &ProcessSample>,
    roots: &HashSet<u32>,
) -> Option<u32> {
    let mut current = pid;
    // Bounded: a ppid cycle cannot happen in the kernel, but a hand-made capture could hold one.
    for _ in 0..=by_pid.len() {
        if roots.contains(&current) {
            return Some(current);
        }
        current = by_pid.get(&current)?.ppid;
    }
    None
}

fn process_row(sample: &ProcessSample, depth: usize) -> ProcessRow {
    ProcessRow {
        pid: sample.pid,
        ppid: sample.ppid,
        depth,
        name: sample.name.clone(),
        uid: sample.uid,
        cmdline: sample.cmdline.clone(),
        figures: sample.rollup.as_ref().map(Figures::from_fields).map_err(Clone::clone),
        exact: None,
        dedup: None,
        erosion: None,
        peak: None,
        mappings: sample.mappings.as_ref().map(|m| {
            m.as_ref().map(|maps| maps.iter().map(MappingRow::from).collect()).map_err(Clone::clone)
        }),
    }
}

fn group_by_name(rows: &[ProcessRow]) -> Option<Vec<NameGroup>> {
    group_by_name_refs(&rows.iter().collect::<Vec<_>>())
}

/// `None` unless some process carries mappings (`--mappings` was asked for).
fn group_by_name_refs(rows: &[&ProcessRow]) -> Option<Vec<NameGroup>> {
    if rows.iter().all(|r| r.mappings.is_none()) {
        return None;
    }
    let mut groups: HashMap<&str, (NameGroup, Option<u32>)> = HashMap::new();
    for row in rows {
        let Some(Ok(mappings)) = &row.mappings else { continue };
        for m in mappings {
            let (group, last_pid) = groups.entry(&m.name).or_insert_with(|| {
                let group = NameGroup {
                    name: m.name.clone(),
                    processes: 0,
                    mappings: 0,
                    rss_sum: 0,
                    pss_sum: 0,
                    uss_sum: 0,
                    swap_sum: 0,
                };
                (group, None)
            });
            if *last_pid != Some(row.pid) {
                group.processes += 1;
                *last_pid = Some(row.pid);
            }
            group.mappings += 1;
            group.rss_sum += m.figures.rss.unwrap_or(0);
            group.pss_sum += m.figures.pss.unwrap_or(0);
            group.uss_sum += m.figures.uss.unwrap_or(0);
            group.swap_sum += m.figures.swap.unwrap_or(0);
        }
    }
    let mut list: Vec<NameGroup> = groups.into_values().map(|(g, _)| g).collect();
    list.sort_by(|a, b| b.rss_sum.cmp(&a.rss_sum).then_with(|| a.name.cmp(&b.name)));
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{self, mapping, process, snapshot};

    fn sample(pid: u32, ppid: u32, rss_kib: u64, pss_kib: u64, private_kib: u64) -> ProcessSample {
        process(pid, ppid).figures(rss_kib * 1024, pss_kib * 1024, private_kib * 1024).build()
    }

    #[test]
    fn tree_order_depth_and_totals() {
        // 10 ─┬─ 11 ── 13
        //     └─ 12
        let snap = snapshot(vec![
            sample(13, 11, 100, 40, 10),
            sample(10, 1, 100, 40, 10),
            sample(12, 10, 100, 40, 10),
            sample(11, 10, 100, 40, 10),
            sample(99, 1, 500, 500, 500),
        ]);
        let acc = account(&snap, &Grouping::Roots(vec![10]));
        assert_eq!(acc.trees.len(), 1);
        let order: Vec<(u32, usize)> =
            acc.trees[0].processes.iter().map(|p| (p.pid, p.depth)).collect();
        assert_eq!(order, [(10, 0), (11, 1), (13, 2), (12, 1)]);
        let t = &acc.trees[0].totals;
        assert_eq!(t.processes, 4);
        assert_eq!(t.rss_sum, Some(400 * 1024));
        assert_eq!(t.pss_sum, Some(160 * 1024));
        assert_eq!(t.footprint, Some(160 * 1024));
        assert_eq!(t.overcount, Some(2.5));
    }

    #[test]
    fn nested_root_joins_the_outer_tree_and_machine_groups_by_init_children() {
        let snap = snapshot(vec![
            sample(1, 0, 10, 10, 10),
            sample(10, 1, 100, 40, 10),
            sample(11, 10, 100, 40, 10),
            sample(20, 1, 300, 300, 300),
        ]);
        let acc = account(&snap, &Grouping::Roots(vec![10, 11]));
        assert_eq!(acc.trees.len(), 1);
        assert_eq!(acc.trees[0].processes.len(), 2);

        let machine = account(&snap, &Grouping::Machine);
        let roots: Vec<u32> = machine.trees.iter().map(|t| t.root_pid).collect();
        // Largest footprint first; init is a tree of its own.
        assert_eq!(roots, [20, 10, 1]);
        assert_eq!(machine.totals.processes, 4);
        assert_eq!(machine.totals.rss_sum, Some(510 * 1024));
    }

    #[test]
    fn unreadable_processes_are_counted_not_summed() {
        let denied = process(11, 10).unreadable(Unreadable::PermissionDenied("x".into())).build();
        let kthread = process(12, 10).unreadable(Unreadable::NoAddressSpace).build();
        let snap = snapshot(vec![sample(10, 1, 100, 40, 10), denied, kthread]);
        let acc = account(&snap, &Grouping::Roots(vec![10]));
        let t = &acc.totals;
        assert_eq!(t.processes, 3);
        assert_eq!(t.unreadable_count(), 1);
        assert_eq!(t.unreadable.get("permission denied"), Some(&1));
        assert_eq!(t.kernel_threads, 1);
        assert_eq!(t.readable(), 1);
        assert_eq!(t.rss_sum, Some(100 * 1024));

        let only_denied = process(10, 1).unreadable(Unreadable::Vanished("gone".into())).build();
        let acc = account(&snapshot(vec![only_denied]), &Grouping::Roots(vec![10]));
        assert_eq!(acc.totals.rss_sum, None);
        assert_eq!(acc.totals.footprint, None);
        assert_eq!(acc.totals.overcount, None);
    }

    #[test]
    fn mappings_group_by_name_across_processes() {
        let a =
            process(10, 1).mappings(vec![mapping("/lib/libc", 8192), mapping("/lib/libc", 4096)]);
        let b = process(11, 10).mappings(vec![mapping("/lib/libc", 8192), mapping("", 40960)]);
        let (a, b) = (a.build(), b.build());
        let acc = account(&snapshot(vec![a, b]), &Grouping::Roots(vec![10]));
        let groups = acc.trees[0].mappings_by_name.as_ref().unwrap();
        assert_eq!(groups[0].name, "[anon]");
        assert_eq!(groups[1].name, "/lib/libc");
        assert_eq!(groups[1].processes, 2);
        assert_eq!(groups[1].mappings, 3);
        assert_eq!(groups[1].rss_sum, 20480);
        assert_eq!(groups[1].pss_sum, 10240);
    }

    #[test]
    fn sums_are_checked_and_cover_every_readable_process_or_none() {
        let huge = 1u64 << 63;
        let snap = snapshot(vec![
            process(10, 1).figures(huge, 1, 1).build(),
            process(11, 10).figures(huge, 1, 1).build(),
        ]);
        let acc = account(&snap, &Grouping::Roots(vec![10]));
        assert_eq!(acc.totals.rss_sum, None, "2^64 overflows: absent, not wrapped");
        assert!(acc.totals.overflowed);
        assert_eq!(acc.totals.pss_sum, Some(2));
        // A figure only some processes have (an older kernel's KSM) has no sum.
        let snap = snapshot(vec![
            process(10, 1).field(|f| f.ksm = Some(4096)).build(),
            process(11, 10).build(),
        ]);
        let acc = account(&snap, &Grouping::Roots(vec![10]));
        assert_eq!(acc.totals.ksm_sum, None);
        assert!(!acc.totals.overflowed);
    }

    #[test]
    fn rss_split_without_pages_is_private_and_one_shared_lump() {
        let row = process_row(&process(10, 1).figures(100, 40, 30).build(), 0);
        let split = row.rss_split().unwrap();
        assert_eq!((split.private, split.shared_in_tree, split.shared_outside), (30, 70, 0));
        assert!(!split.located);
        let denied = process(11, 1).unreadable(Unreadable::PermissionDenied("x".into())).build();
        assert_eq!(process_row(&denied, 0).rss_split(), None);
    }

    #[test]
    fn the_costly_figures_have_the_time_of_the_snapshot_they_were_read_in() {
        let exact = Snapshot { taken_at_unix: 5.0, ..testing::workloads_snapshot() };
        let acc = account(&exact, &Grouping::Roots(vec![100, 200, 300]));
        assert!(acc.totals.exact_ok().is_some());
        assert_eq!(acc.exact_taken_at_unix, Some(5.0));
        let plain = Snapshot { taken_at_unix: 5.0, ..snapshot(vec![sample(10, 1, 100, 40, 10)]) };
        assert_eq!(account(&plain, &Grouping::Roots(vec![10])).exact_taken_at_unix, None);
    }

    #[test]
    fn exact_figures_carry_over_to_a_round_without_them() {
        let snap = snapshot(vec![sample(10, 1, 100, 40, 10), sample(11, 10, 100, 40, 10)]);
        let mut earlier = account(&snap, &Grouping::Roots(vec![10]));
        let exact = ExactTotals { footprint: 50 * 1024, exclusive: 7, ..ExactTotals::default() };
        earlier.trees[0].totals.set_exact(Ok(exact.clone()));
        earlier.totals.set_exact(Ok(exact));
        earlier.exact_taken_at_unix = Some(1000.0);
        let mut now = account(&snap, &Grouping::Roots(vec![10]));
        assert_eq!(now.exact_taken_at_unix, None, "a round without the costly passes");
        now.carry_exact_from(&earlier, false);
        assert_eq!(now.exact_taken_at_unix, Some(1000.0), "the carried figures' own time");
        assert_eq!(now.totals.footprint, Some(50 * 1024), "the exact footprint, not the PSS one");
        assert_eq!(now.totals.overcount, Some(4.0));
        assert_eq!(now.trees[0].totals.exact_ok().map(|e| e.exclusive), Some(7));
    }

    #[test]
    fn exact_figures_of_a_tree_that_moved_since_are_not_carried() {
        let mib = 1024; // in KiB
        let snap = snapshot(vec![sample(10, 1, 100 * mib, 60 * mib, 10), sample(11, 10, 10, 4, 1)]);
        let mut earlier = account(&snap, &Grouping::Roots(vec![10]));
        let exact = ExactTotals { footprint: 64 << 20, ..ExactTotals::default() };
        earlier.trees[0].totals.set_exact(Ok(exact.clone()));
        earlier.totals.set_exact(Ok(exact));
        // The root grew by 100 MiB since: its tree's exact footprint is of another moment.
        let grown =
            snapshot(vec![sample(10, 1, 200 * mib, 160 * mib, 10), sample(11, 10, 10, 4, 1)]);
        let mut now = account(&grown, &Grouping::Roots(vec![10]));
        now.carry_exact_from(&earlier, false);
        assert_eq!(now.totals.exact, None);
        assert_eq!(now.totals.footprint_method, FootprintMethod::PssEstimate);
        assert_eq!(now.trees[0].totals.footprint, Some((160 * mib + 4) * 1024), "PSS, of now");
        // A worker that copied 30 MiB on write: its RSS is the same, its USS is not.
        let copied =
            snapshot(vec![sample(10, 1, 100 * mib, 60 * mib, 10), sample(11, 10, 10, 4, 30 * mib)]);
        let mut now = account(&copied, &Grouping::Roots(vec![10]));
        now.carry_exact_from(&earlier, false);
        assert_eq!(now.totals.exact, None, "a copy-on-write moved it");
        // Churn of a few hundred KiB: still the exact footprint.
        let churn =
            snapshot(vec![sample(10, 1, 100 * mib + 300, 60 * mib, 10), sample(11, 10, 10, 4, 1)]);
        let mut now = account(&churn, &Grouping::Roots(vec![10]));
        now.carry_exact_from(&earlier, false);
        assert_eq!(now.totals.footprint, Some(64 << 20));
        assert_eq!(now.trees[0].totals.footprint, Some(64 << 20));
        // The exporter keeps the exact figures whatever moved.
        let mut now = account(&grown, &Grouping::Roots(vec![10]));
        now.carry_exact_from(&earlier, true);
        assert_eq!(now.totals.footprint, Some(64 << 20));
    }
}
