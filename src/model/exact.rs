//! Model layer: exact accounting from physical pages. Pure: fed the pagemap entries of every
//! process of a tree and the kpagecount/kpageflags of the frames they map, it computes what the
//! tree really holds — distinct frames (footprint), frames only the tree maps (exclusive), how
//! many processes map each frame (histogram), the distinct groups of processes that map the
//! same frames (sharing groups) and the largest pairs among them, per mapping name what is
//! private, shared within the tree and shared outside it, and each process's PSS and USS
//! recomputed page by page.
//!
//! An entry is a base page or a PMD-mapped transparent huge page (one entry, one kpagecount,
//! counted for its whole size). Frames are found through a bitmap over every frame of the
//! machine (sized from its highest frame), not hashed; the per-frame tables are indexed by rank
//! in that bitmap: 1.5 bits per frame of RAM plus about 11 bytes per frame of the tree
//! (docs/exact.md).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::snapshot::{PageEntry, PagesRaw, PfnTable, page_flags};

/// A process's figures recomputed from its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ExactProcess {
    /// Present pages, the zero page excluded (as the kernel's Rss).
    pub rss: u64,
    /// Σ page / kpagecount.
    pub pss: u64,
    /// Pages whose kpagecount is 1.
    pub uss: u64,
    /// Pages mapped several times, every time by processes of the tree.
    pub shared_in_tree: u64,
    /// Pages also mapped by processes outside the tree.
    pub shared_outside: u64,
    /// Swapped-out pages.
    pub swap: u64,
}

/// Bytes two processes of a tree both map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub bytes: u64,
}

/// A set of two or more processes of the tree that map the same frames, and the bytes of the
/// frames mapped by exactly these processes of the tree (they may be mapped outside it too).
/// Every frame mapped by two or more processes of the tree is in exactly one group.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SharingGroup {
    /// The pids of the group, in the order of the tree (depth-first).
    pub members: Vec<u32>,
    pub bytes: u64,
    /// Of `bytes`, what some process outside the tree maps too (libc, say).
    pub shared_outside: u64,
    /// The mapping names the group's frames are mapped under (in its first member that maps
    /// each), largest first, at most [`GROUP_NAMES`].
    pub mappings: Vec<(String, u64)>,
}

/// Mapping names kept per sharing group.
pub const GROUP_NAMES: usize = 3;
/// Pairs kept: the largest, derived from the groups.
pub const TOP_PAIRS: usize = 10;
/// Above this many (process, process) combinations in all groups, pairs are computed among
/// the [`PAIR_CANDIDATES`] processes that share the most, not among all.
const PAIR_BUDGET: u64 = 250_000;
const PAIR_CANDIDATES: usize = 64;

/// A mapping name's distinct bytes in the tree, by sharing class. A frame mapped under several
/// names (or several times) is split evenly between its occurrences, so the classes add up to
/// the footprint over all names.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct NameSharing {
    pub name: String,
    pub processes: usize,
    /// Mapped once on the whole machine.
    pub private: u64,
    /// Mapped several times, every time by processes of the tree.
    pub shared_in_tree: u64,
    /// Mapped by processes outside the tree too.
    pub shared_outside: u64,
}

/// The tree's exact figures.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ExactTotals {
    /// Distinct physical frames mapped by any process of the tree, plus distinct swap entries.
    pub footprint: u64,
    /// The resident part of the footprint.
    pub resident: u64,
    /// Distinct swap entries.
    pub swap: u64,
    /// Distinct frames whose every mapping belongs to the tree: freed when the tree exits.
    pub exclusive: u64,
    /// Mappings of the shared zero page (not memory; not in the footprint).
    pub zero_page_mapped: u64,
    /// `(k, bytes)`: bytes of frames mapped by exactly k processes of the tree, k ascending.
    pub histogram: Vec<(usize, u64)>,
    /// The distinct sets of processes mapping the same frames, largest first.
    pub groups: Vec<SharingGroup>,
    /// The [`TOP_PAIRS`] pairs of processes sharing the most, largest first, derived from the
    /// groups (exact among all processes while the groups hold at most 250,000 pairs, among
    /// the 64 processes sharing the most beyond that).
    pub pairs: Vec<Pair>,
    /// Bytes in PMD-mapped transparent huge pages, distinct frames.
    pub thp: u64,
    /// Bytes in KSM-merged frames, distinct (from kpageflags: `None` when they were not read).
    pub ksm: Option<u64>,
    /// Per mapping name, largest first.
    pub by_name: Vec<NameSharing>,
}

impl ExactTotals {
    /// The processes `pid` shares frames with and the bytes of each, largest first (from the
    /// groups: every group that holds it adds its bytes to each other member).
    pub fn partners(&self, pid: u32) -> Vec<(u32, u64)> {
        let mut bytes: HashMap<u32, u64> = HashMap::new();
        for group in self.groups.iter().filter(|g| g.members.contains(&pid)) {
            for &other in group.members.iter().filter(|&&m| m != pid) {
                *bytes.entry(other).or_default() += group.bytes;
            }
        }
        let mut partners: Vec<(u32, u64)> = bytes.into_iter().collect();
        partners.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        partners
    }
}

/// Counters by dense frame index ([`PfnTable::index`]), reused across trees and reset after
/// each.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Mappings of the frame by the tree (saturating).
    occurrences: Vec<u16>,
    /// The set of the tree's processes mapping the frame, as an index into `sets`; 0 (the
    /// empty set) again once pass 3 has counted the frame.
    set: Vec<u32>,
}

impl Workspace {
    fn ensure(&mut self, len: usize) {
        if self.occurrences.len() < len {
            self.occurrences = crate::resident::filled(len, 0);
            self.set = crate::resident::filled(len, 0);
        }
    }
}

/// The distinct sets of processes that map a frame, interned: set 0 is empty, and every other
/// set is an earlier one plus its highest process (processes are added in ascending order).
/// Neighbouring frames are mapped by the same processes, so a frame moves to its next set
/// through a one-entry cache almost every time: a few nanoseconds a page, where sorting
/// (frame, process) pairs cost tens of milliseconds for a 2 GiB tree.
struct Sets {
    /// `(parent set, highest process, size)`.
    sets: Vec<(u32, u32, u32)>,
    next: HashMap<(u32, u32), u32>,
    /// The last step taken: `(from, process, to)`.
    last: (u32, u32, u32),
}

impl Sets {
    fn new() -> Self {
        Sets { sets: vec![(0, u32::MAX, 0)], next: HashMap::new(), last: (u32::MAX, 0, 0) }
    }

    /// The set `from` plus `process`, which is at least its highest member.
    fn add(&mut self, from: u32, process: u32) -> u32 {
        // The cache first: it needs no load that depends on `from`.
        if self.last.0 == from && self.last.1 == process {
            return self.last.2;
        }
        if self.sets[from as usize].1 == process {
            return from;
        }
        let size = self.sets[from as usize].2 + 1;
        let sets = &mut self.sets;
        let to = *self.next.entry((from, process)).or_insert_with(|| {
            sets.push((from, process, size));
            (sets.len() - 1) as u32
        });
        self.last = (from, process, to);
        to
    }

    fn size(&self, set: u32) -> u32 {
        self.sets[set as usize].2
    }

    /// The processes of `set`, descending.
    fn members(&self, mut set: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while set != 0 {
            let (parent, process, _) = self.sets[set as usize];
            out.push(process);
            set = parent;
        }
        out
    }
}

/// An entry that is not a counted frame (swapped, the zero page).
pub const NO_FRAME: u32 = u32::MAX;

/// Each entry's counted frame as its dense index in `table`, [`NO_FRAME`] where there is none:
/// looked up once per snapshot, for the exact figures of every tree and the erosion of every
/// worker. A kpagecount of 0 is not counted memory: the shared zero page (and any other frame
/// mapped without a page count, as by `VM_PFNMAP` drivers, or freed since the page walk), which
/// Rss does not count either.
///
/// A large process is looked up in pieces on the available cores: a tree of one large process
/// (or of one more than there are cores) keeps every core busy.
pub fn frames_of(pages: &PagesRaw, table: &PfnTable) -> Vec<u32> {
    let frame = |last: &mut Option<(u64, usize)>, e: &PageEntry| {
        let index = table.index_after(e.pfn()?, last)?;
        (table.mapcount[index] != 0).then_some(index as u32)
    };
    let mut out = crate::resident::with_capacity(pages.entries().len());
    pages
        .entries()
        .par_iter()
        .with_min_len(FRAMES_PIECE)
        .map_init(|| None, |last, e| frame(last, e).unwrap_or(NO_FRAME))
        .collect_into_vec(&mut out);
    out
}

/// Entries looked up together by [`frames_of`] (a piece on one core).
const FRAMES_PIECE: usize = 16 * 1024;

/// A tree with at least this many entries has its frames counted in parts, one per core.
const PARALLEL_ENTRIES: usize = 1 << 16;

/// What one part of pass 3 counted.
struct Counted<'a> {
    resident: u64,
    exclusive: u64,
    thp: u64,
    ksm: u64,
    /// Bytes by the number of the tree's processes mapping them.
    histogram: Vec<u64>,
    /// `(bytes, of which mapped outside the tree too)` by set.
    set_bytes: Vec<(u64, u64)>,
    set_names: HashMap<(u32, &'a str), u64>,
}

impl Counted<'_> {
    fn new(processes: usize, sets: usize) -> Self {
        Counted {
            resident: 0,
            exclusive: 0,
            thp: 0,
            ksm: 0,
            histogram: vec![0; processes + 1],
            set_bytes: vec![(0, 0); sets],
            set_names: HashMap::new(),
        }
    }
}

/// The workspace's counters cut at `bounds` (dense indices): one `(first index, occurrences,
/// sets)` per part.
fn split_parts<'w>(
    mut occurrences: &'w mut [u16],
    mut set: &'w mut [u32],
    bounds: &[usize],
) -> Vec<(usize, &'w mut [u16], &'w mut [u32])> {
    let mut parts = Vec::with_capacity(bounds.len());
    for pair in bounds.windows(2) {
        let (o, o_rest) = occurrences.split_at_mut(pair[1] - pair[0]);
        let (s, s_rest) = set.split_at_mut(pair[1] - pair[0]);
        parts.push((pair[0], o, s));
        (occurrences, set) = (o_rest, s_rest);
    }
    parts
}

/// One process's share of the per-name figures: name → `(private, in tree, outside)`, the
/// fractional bytes of frames mapped several times under the name split evenly.
type NameShares<'a> = HashMap<&'a str, (f64, f64, f64)>;

/// What pass 2 finds of one process: its figures, its share of each name, the swap entries it
/// maps and the bytes of the zero page it maps.
struct ProcessPass<'a> {
    me: ExactProcess,
    shares: NameShares<'a>,
    swapped: Vec<u64>,
    zero_page: u64,
}

/// Computes the exact figures of the tree made of `processes` (pid, pages), in tree order,
/// looking up each entry's frame itself (see [`exact_framed`]).
pub fn exact(
    processes: &[(u32, &PagesRaw)],
    table: &PfnTable,
    page_size: u64,
    ws: &mut Workspace,
    want_groups: bool,
) -> (ExactTotals, Vec<ExactProcess>) {
    let frames: Vec<Vec<u32>> =
        processes.par_iter().map(|(_, pages)| frames_of(pages, table)).collect();
    let framed: Vec<(u32, &PagesRaw, &[u32])> = processes
        .iter()
        .zip(&frames)
        .map(|((pid, pages), f)| (*pid, *pages, f.as_slice()))
        .collect();
    exact_framed(&framed, table, page_size, ws, want_groups)
}

/// Computes the exact figures of the tree made of `processes` (pid, pages, each entry's frame
/// by [`frames_of`]), in tree order. `want_groups` false skips the sharing groups and pairs
/// (for every tree of the machine together, where the groups of each tree are already known).
///
/// Pass 1 counts, per frame, the tree's mappings and its set of processes; pass 2 (in
/// parallel, read-only) gives each process its figures and its share per mapping name; pass 3
/// counts each distinct frame once, into its set's group, and resets the workspace.
pub fn exact_framed(
    processes: &[(u32, &PagesRaw, &[u32])],
    table: &PfnTable,
    page_size: u64,
    ws: &mut Workspace,
    want_groups: bool,
) -> (ExactTotals, Vec<ExactProcess>) {
    // Passes 1 and 3 count per frame, so a large tree's frames are split in parts by dense
    // index, one per core: each part reads every entry and counts the frames of its own range.
    let entries: usize = processes.iter().map(|(_, pages, _)| pages.entries().len()).sum();
    let parts =
        if entries >= PARALLEL_ENTRIES { rayon::current_num_threads().clamp(1, 8) } else { 1 };
    exact_in_parts(processes, table, page_size, ws, want_groups, parts)
}

/// [`exact_framed`] with passes 1 and 3 in `parts` parts.
fn exact_in_parts<'a>(
    processes: &[(u32, &'a PagesRaw, &[u32])],
    table: &PfnTable,
    page_size: u64,
    ws: &mut Workspace,
    want_groups: bool,
    parts: usize,
) -> (ExactTotals, Vec<ExactProcess>) {
    ws.ensure(table.len());
    let mut totals = ExactTotals::default();
    let mut swap_entries = HashSet::new();

    let parts = parts.max(1);
    let bounds: Vec<usize> = (0..=parts).map(|k| table.len() * k / parts).collect();
    let mut slices =
        split_parts(&mut ws.occurrences[..table.len()], &mut ws.set[..table.len()], &bounds);

    // Pass 1: count the tree's mappings of each frame and the set of processes mapping it.
    let part_sets: Vec<Sets> = slices
        .par_iter_mut()
        .map(|(low, occurrences, set)| {
            let (low, high) = (*low, *low + occurrences.len());
            let mut sets = Sets::new();
            for (index, &(_, _, frames)) in processes.iter().enumerate() {
                for &frame in frames {
                    let frame = frame as usize;
                    if frame < low || frame >= high {
                        continue; // another part's, or NO_FRAME
                    }
                    let at = frame - low;
                    occurrences[at] = occurrences[at].saturating_add(1);
                    set[at] = sets.add(set[at], index as u32);
                }
            }
            sets
        })
        .collect();
    // One interner for every part's sets: the first part's, the others' mapped into it.
    let mut parts_sets = part_sets.into_iter();
    let mut sets = parts_sets.next().unwrap_or_else(Sets::new);
    let remaps: Vec<Vec<u32>> = std::iter::once(Vec::new())
        .chain(parts_sets.map(|part| {
            let mut remap = vec![0u32; part.sets.len()];
            for (id, &(parent, process, _)) in part.sets.iter().enumerate().skip(1) {
                remap[id] = sets.add(remap[parent as usize], process);
            }
            remap
        }))
        .collect();

    // Pass 2: per process PSS/USS/shared and its share of each mapping name, and what has no
    // frame (swapped, the zero page).
    drop(slices);
    let occurrences = &ws.occurrences;
    let shares: Vec<ProcessPass> = processes
        .par_iter()
        .map(|&(_, pages, frames)| process_figures(pages, frames, table, occurrences, page_size))
        .collect();
    // Per name: the processes mapping it and the summed shares.
    let mut names: HashMap<&str, (usize, f64, f64, f64)> = HashMap::new();
    let mut per_process = Vec::with_capacity(shares.len());
    for pass in shares {
        per_process.push(pass.me);
        swap_entries.extend(pass.swapped);
        totals.zero_page_mapped += pass.zero_page;
        for (name, (private, in_tree, outside)) in pass.shares {
            let sum = names.entry(name).or_default();
            sum.0 += 1;
            sum.1 += private;
            sum.2 += in_tree;
            sum.3 += outside;
        }
    }

    // Pass 3: each distinct frame once (the first entry that finds its set), into its set's
    // bytes and, for sets of two or more, the bytes per (set, mapping name); then reset. Each
    // part counts its own frames; the parts' counts are added up.
    let set_count = sets.sets.len();
    let sets_ref = &sets;
    let mut slices =
        split_parts(&mut ws.occurrences[..table.len()], &mut ws.set[..table.len()], &bounds);
    let counted: Vec<Counted> = slices
        .par_iter_mut()
        .zip(&remaps)
        .map(|((low, occurrences, set), remap)| {
            let (low, high) = (*low, *low + occurrences.len());
            let mut c = Counted::new(processes.len(), set_count);
            for &(_, pages, frames) in processes {
                for (mapping, range) in pages.mappings.iter().zip(pages.ranges()) {
                    let range = range.start as usize..range.end as usize;
                    // Neighbouring frames are mostly in one set: (set, bytes) added up per run.
                    let mut run = (0u32, 0u64);
                    let flush = |c: &mut Counted<'a>, run: (u32, u64)| {
                        if run.0 != 0 && sets_ref.size(run.0) >= 2 {
                            *c.set_names.entry((run.0, mapping.name())).or_default() += run.1;
                        }
                    };
                    for (entry, &frame) in pages.entries()[range.clone()].iter().zip(&frames[range])
                    {
                        let frame = frame as usize;
                        if frame < low || frame >= high {
                            continue; // another part's, or NO_FRAME
                        }
                        let at = frame - low;
                        let local = set[at];
                        if local == 0 {
                            continue; // counted already
                        }
                        let set_id = if remap.is_empty() { local } else { remap[local as usize] };
                        let bytes = entry.bytes(page_size);
                        let exclusive = u32::from(occurrences[at]) >= table.mapcount[frame];
                        c.set_bytes[set_id as usize].0 += bytes;
                        if !exclusive {
                            c.set_bytes[set_id as usize].1 += bytes;
                        }
                        c.resident += bytes;
                        c.histogram[sets_ref.size(set_id) as usize] += bytes;
                        if exclusive {
                            c.exclusive += bytes;
                        }
                        if entry.order() > 0 {
                            c.thp += bytes;
                        }
                        if table.flags.get(frame).is_some_and(|f| f & page_flags::KSM != 0) {
                            c.ksm += bytes;
                        }
                        if run.0 != set_id {
                            flush(&mut c, run);
                            run = (set_id, 0);
                        }
                        run.1 += bytes;
                        set[at] = 0;
                        occurrences[at] = 0;
                    }
                    flush(&mut c, run);
                }
            }
            c
        })
        .collect();
    let mut histogram = vec![0u64; processes.len() + 1];
    let mut set_bytes = vec![(0u64, 0u64); set_count];
    let mut set_names: HashMap<(u32, &str), u64> = HashMap::new();
    let mut ksm = 0u64;
    for c in counted {
        totals.resident += c.resident;
        totals.exclusive += c.exclusive;
        totals.thp += c.thp;
        ksm += c.ksm;
        for (sum, part) in histogram.iter_mut().zip(c.histogram) {
            *sum += part;
        }
        for (sum, part) in set_bytes.iter_mut().zip(c.set_bytes) {
            sum.0 += part.0;
            sum.1 += part.1;
        }
        for (key, bytes) in c.set_names {
            *set_names.entry(key).or_default() += bytes;
        }
    }

    totals.swap = swap_entries.len() as u64 * page_size;
    totals.footprint = totals.resident + totals.swap;
    totals.ksm = (!table.flags.is_empty() || table.is_empty()).then_some(ksm);
    totals.histogram = histogram.into_iter().enumerate().filter(|&(_, bytes)| bytes > 0).collect();
    if want_groups {
        totals.groups = groups(&sets, &set_bytes, set_names, processes);
        totals.pairs = top_pairs(&totals.groups);
    }
    let mut by_name: Vec<NameSharing> = names
        .into_iter()
        .map(|(name, (processes, private, in_tree, outside))| NameSharing {
            name: name.to_string(),
            processes,
            private: private.round() as u64,
            shared_in_tree: in_tree.round() as u64,
            shared_outside: outside.round() as u64,
        })
        .filter(|n| n.private + n.shared_in_tree + n.shared_outside > 0)
        .collect();
    by_name.sort_by(|a, b| {
        let total = |n: &NameSharing| n.private + n.shared_in_tree + n.shared_outside;
        total(b).cmp(&total(a)).then_with(|| a.name.cmp(&b.name))
    });
    totals.by_name = by_name;
    (totals, per_process)
}

/// Pass 2 for one process: its PSS, USS and shared figures, and its share of each name.
fn process_figures<'a>(
    pages: &'a PagesRaw,
    frames: &[u32],
    table: &PfnTable,
    occurrences: &[u16],
    page_size: u64,
) -> ProcessPass<'a> {
    let mut me = ExactProcess::default();
    // What has no frame to count (swapped, the zero page), every entry's.
    let (mut swapped, mut zero_page) = (Vec::new(), 0u64);
    for (entry, _) in pages.entries().iter().zip(frames).filter(|(_, f)| **f == NO_FRAME) {
        if let Some(swap) = entry.swap_entry() {
            swapped.push(swap);
            me.swap += entry.bytes(page_size);
        } else if entry.pfn().is_some() {
            zero_page += entry.bytes(page_size);
        }
    }
    let mut shares: HashMap<&str, (f64, f64, f64)> = HashMap::new();
    // PSS in 1/4096ths of a byte, as the kernel keeps it.
    let mut pss_fixed: u64 = 0;
    // Neighbouring pages usually have the same counts: the divisions are done once per change.
    let mut last_counts = (0u32, 0u32);
    let (mut pss_step, mut share) = (0u64, 0f64);
    for (mapping, range) in pages.mappings.iter().zip(pages.ranges()) {
        let range = range.start as usize..range.end as usize;
        // Added up here and into the name's slot once: a running sum kept in the map's slot
        // waits on its own store every page.
        let (mut private, mut in_tree, mut outside) = (0f64, 0f64, 0f64);
        for (entry, &frame) in pages.entries()[range.clone()].iter().zip(&frames[range]) {
            if frame == NO_FRAME {
                continue;
            }
            let frame = frame as usize;
            let mapcount = table.mapcount[frame];
            let occurrences = u32::from(occurrences[frame].max(1));
            if last_counts != (mapcount, occurrences) {
                last_counts = (mapcount, occurrences);
                pss_step = (page_size << 12) / u64::from(mapcount);
                share = page_size as f64 / f64::from(occurrences);
            }
            // A huge page counts its base pages at once (one kpagecount for all of them).
            let pages_in = 1u64 << entry.order();
            let bytes = page_size * pages_in;
            me.rss += bytes;
            pss_fixed += pss_step * pages_in;
            let part = share * pages_in as f64;
            if mapcount == 1 {
                me.uss += bytes;
                private += part;
            } else if occurrences >= mapcount {
                me.shared_in_tree += bytes;
                in_tree += part;
            } else {
                me.shared_outside += bytes;
                outside += part;
            }
        }
        let slot = shares.entry(mapping.name()).or_default();
        slot.0 += private;
        slot.1 += in_tree;
        slot.2 += outside;
    }
    me.pss = pss_fixed >> 12;
    ProcessPass { me, shares, swapped, zero_page }
}

/// The sets of two or more processes that hold frames, as groups with pids, bytes and names,
/// largest first.
fn groups(
    sets: &Sets,
    set_bytes: &[(u64, u64)],
    set_names: HashMap<(u32, &str), u64>,
    processes: &[(u32, &PagesRaw, &[u32])],
) -> Vec<SharingGroup> {
    let mut names: HashMap<u32, Vec<(String, u64)>> = HashMap::new();
    for ((set, name), bytes) in set_names {
        names.entry(set).or_default().push((name.to_string(), bytes));
    }
    let mut groups: Vec<SharingGroup> = set_bytes
        .iter()
        .enumerate()
        .filter(|&(set, &(bytes, _))| bytes > 0 && sets.size(set as u32) >= 2)
        .map(|(set, &(bytes, shared_outside))| {
            let mut members: Vec<u32> = sets.members(set as u32);
            members.reverse();
            let mut mappings = names.remove(&(set as u32)).unwrap_or_default();
            mappings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            mappings.truncate(GROUP_NAMES);
            SharingGroup {
                members: members.into_iter().map(|i| processes[i as usize].0).collect(),
                bytes,
                shared_outside,
                mappings,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.members.len().cmp(&a.members.len()))
            .then(a.members.cmp(&b.members))
    });
    groups
}

/// The largest pairs, from the groups: each group adds its bytes to every pair of its members.
/// Beyond [`PAIR_BUDGET`] combinations (a tree of 1,000 processes mapping one libc is 500,000),
/// only pairs among the [`PAIR_CANDIDATES`] processes sharing the most are counted.
fn top_pairs(groups: &[SharingGroup]) -> Vec<Pair> {
    let combinations: u64 = groups
        .iter()
        .map(|g| {
            let n = g.members.len() as u64;
            n * (n - 1) / 2
        })
        .sum();
    let candidates: Option<HashSet<u32>> = (combinations > PAIR_BUDGET).then(|| {
        let mut shared: HashMap<u32, u64> = HashMap::new();
        for g in groups {
            for &m in &g.members {
                *shared.entry(m).or_default() += g.bytes;
            }
        }
        let mut by_bytes: Vec<(u32, u64)> = shared.into_iter().collect();
        by_bytes.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        by_bytes.into_iter().take(PAIR_CANDIDATES).map(|(pid, _)| pid).collect()
    });
    let mut bytes: HashMap<(u32, u32), u64> = HashMap::new();
    for g in groups {
        let members: Vec<u32> = match &candidates {
            Some(keep) => g.members.iter().copied().filter(|m| keep.contains(m)).collect(),
            None => g.members.clone(),
        };
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                *bytes.entry((a.min(b), a.max(b))).or_default() += g.bytes;
            }
        }
    }
    let mut list: Vec<Pair> =
        bytes.into_iter().map(|((a, b), bytes)| Pair { a, b, bytes }).collect();
    list.sort_by(|x, y| y.bytes.cmp(&x.bytes).then((x.a, x.b).cmp(&(y.a, y.b))));
    list.truncate(TOP_PAIRS);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::MappingSpan;
    use crate::model::snapshot::pagemap_bits::{PRESENT, SWAPPED};
    use crate::model::testing::pages;

    const PAGE: u64 = 4096;

    /// Frames `counts` with their kpagecount, and `zero` frames read as 0 (the zero page).
    fn table(counts: &[(u64, u32)], zero: &[u64]) -> PfnTable {
        let mut present = vec![0u64; 1];
        for &pfn in counts.iter().map(|(pfn, _)| pfn).chain(zero) {
            present[0] |= 1 << pfn;
        }
        let mut t = PfnTable::new(present);
        for &(pfn, count) in counts {
            let index = t.index(pfn).unwrap();
            t.mapcount[index] = count;
        }
        t
    }

    #[test]
    fn frames_counted_in_parts_give_the_figures_of_one_pass() {
        // Four processes mapping 250 pages each of 300 frames, pseudo-randomly (some twice),
        // some frames mapped outside the tree too, some the zero page: frames mapped by every
        // subset of the four.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let procs: Vec<PagesRaw> =
            (0..4).map(|_| pages(&(0..250).map(|_| next(300)).collect::<Vec<_>>())).collect();
        let mut present = vec![0u64; 5];
        for pfn in 0..300u64 {
            present[(pfn / 64) as usize] |= 1 << (pfn % 64);
        }
        let mut t = PfnTable::new(present);
        for pfn in 0..300u64 {
            let mapped: u32 = procs
                .iter()
                .map(|p| p.entries().iter().filter(|e| e.pfn() == Some(pfn)).count() as u32)
                .sum();
            let index = t.index(pfn).unwrap();
            t.mapcount[index] = if pfn % 37 == 0 { 0 } else { mapped + (next(3) as u32) };
        }
        let frames: Vec<Vec<u32>> = procs.iter().map(|p| frames_of(p, &t)).collect();
        let input: Vec<(u32, &PagesRaw, &[u32])> = procs
            .iter()
            .zip(&frames)
            .enumerate()
            .map(|(i, (p, f))| (i as u32 + 1, p, &f[..]))
            .collect();
        let mut ws = Workspace::default();
        let one = exact_in_parts(&input, &t, PAGE, &mut ws, true, 1);
        assert!(one.0.groups.len() > 4, "a tree with many sets: {:?}", one.0.groups.len());
        for parts in [2, 3, 7] {
            let split = exact_in_parts(&input, &t, PAGE, &mut ws, true, parts);
            assert_eq!(split, one, "{parts} parts");
        }
        // The workspace is reset after each: the same figures again.
        assert_eq!(exact_in_parts(&input, &t, PAGE, &mut ws, true, 1), one);
    }

    #[test]
    fn the_next_frame_of_a_word_is_the_next_index() {
        let mut present = vec![0u64; 2];
        for pfn in [1u64, 2, 3, 5, 63, 64, 65] {
            present[(pfn / 64) as usize] |= 1 << (pfn % 64);
        }
        let t = PfnTable::new(present);
        let mut last = None;
        let got: Vec<_> = [1u64, 2, 3, 4, 5, 63, 64, 65, 2]
            .iter()
            .map(|&p| t.index_after(p, &mut last))
            .collect();
        let want: Vec<_> = [1u64, 2, 3, 4, 5, 63, 64, 65, 2].iter().map(|&p| t.index(p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn dense_indexes_follow_the_frames() {
        let mut present = vec![0u64; 3];
        for pfn in [3u64, 64, 65, 190] {
            present[(pfn / 64) as usize] |= 1 << (pfn % 64);
        }
        let t = PfnTable::new(present);
        assert_eq!(t.len(), 4);
        assert_eq!(t.pfns(), vec![3, 64, 65, 190]);
        let indexes: Vec<_> = [3u64, 64, 65, 190].iter().map(|&p| t.index(p)).collect();
        assert_eq!(indexes, vec![Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(t.index(4), None);
        assert_eq!(t.index(100_000), None);
    }

    #[test]
    fn a_forked_tree_sharing_one_buffer() {
        // Parent and two workers map frames 10..14; each worker has one private frame; frame 20
        // is also mapped by a process outside the tree (mapcount 4).
        let parent = pages(&[10, 11, 12, 13, 20]);
        let w1 = pages(&[10, 11, 12, 13, 20, 30]);
        let w2 = pages(&[10, 11, 12, 13, 20, 31, 63]);
        let counts: Vec<(u64, u32)> =
            (10..14).map(|p| (p, 3)).chain([(20, 4), (30, 1), (31, 1)]).collect();
        let t = table(&counts, &[63]);
        let procs = [(1, &parent), (2, &w1), (3, &w2)];
        let (totals, per) = exact(&procs, &t, PAGE, &mut Workspace::default(), true);
        assert_eq!(totals.footprint, 7 * PAGE, "frames 10-13, 20, 30, 31");
        assert_eq!(totals.exclusive, 6 * PAGE, "frame 20 has a mapper outside the tree");
        assert_eq!(totals.zero_page_mapped, PAGE);
        assert_eq!(totals.histogram, vec![(1, 2 * PAGE), (3, 5 * PAGE)]);
        assert_eq!(totals.pairs.len(), 3);
        assert!(totals.pairs.iter().all(|p| p.bytes == 5 * PAGE));
        // One group: the three processes share frames 10-13 and 20 (20 also outside).
        assert_eq!(totals.groups.len(), 1);
        let group = &totals.groups[0];
        assert_eq!(group.members, [1, 2, 3]);
        assert_eq!((group.bytes, group.shared_outside), (5 * PAGE, PAGE));
        assert_eq!(group.mappings, [("buf".to_string(), 5 * PAGE)]);
        assert_eq!(totals.partners(2), vec![(1, 5 * PAGE), (3, 5 * PAGE)]);
        assert!(totals.partners(9).is_empty());
        assert_eq!(per[0].rss, 5 * PAGE);
        assert_eq!(per[1].uss, PAGE);
        assert_eq!(per[1].shared_in_tree, 4 * PAGE);
        assert_eq!(per[1].shared_outside, PAGE);
        // 4 frames / 3 + 1 frame / 4 + 1 private.
        let expected = (4 * PAGE) / 3 + PAGE / 4 + PAGE;
        assert!(per[1].pss.abs_diff(expected) <= 1, "{} vs {expected}", per[1].pss);
        let buf = &totals.by_name[0];
        assert_eq!(buf.processes, 3);
        assert_eq!(buf.private, 2 * PAGE);
        assert_eq!(buf.shared_in_tree, 4 * PAGE);
        assert_eq!(buf.shared_outside, PAGE);
    }

    #[test]
    fn copies_are_distinct_frames_and_the_workspace_resets() {
        let a = pages(&[1, 2]);
        let b = pages(&[3, 4]);
        let t = table(&[(1, 1), (2, 1), (3, 1), (4, 1)], &[]);
        let mut ws = Workspace::default();
        let (totals, _) = exact(&[(1, &a), (2, &b)], &t, PAGE, &mut ws, true);
        assert_eq!(totals.footprint, 4 * PAGE);
        assert!(totals.pairs.is_empty());
        assert_eq!(totals.histogram, vec![(1, 4 * PAGE)]);
        // Same frames again: a stale workspace would double the counts.
        let (again, _) = exact(&[(1, &a), (2, &b)], &t, PAGE, &mut ws, true);
        assert_eq!(again, totals);
    }

    #[test]
    fn groups_are_the_distinct_sets_and_pairs_come_from_them() {
        // 1 and 2 share frames 1-2; 1, 2 and 3 share frame 3; 3 alone has 4.
        let a = pages(&[1, 2, 3]);
        let b = pages(&[1, 2, 3]);
        let c = pages(&[3, 4]);
        let t = table(&[(1, 2), (2, 2), (3, 3), (4, 1)], &[]);
        let (totals, _) =
            exact(&[(7, &a), (8, &b), (9, &c)], &t, PAGE, &mut Workspace::default(), true);
        let groups: Vec<(Vec<u32>, u64)> =
            totals.groups.iter().map(|g| (g.members.clone(), g.bytes)).collect();
        assert_eq!(groups, [(vec![7, 8], 2 * PAGE), (vec![7, 8, 9], PAGE)]);
        let pairs: Vec<(u32, u32, u64)> =
            totals.pairs.iter().map(|p| (p.a, p.b, p.bytes)).collect();
        assert_eq!(pairs, [(7, 8, 3 * PAGE), (7, 9, PAGE), (8, 9, PAGE)]);
        assert_eq!(totals.partners(9), [(7, PAGE), (8, PAGE)]);
        // The whole-machine pass asks for none.
        let (none, _) = exact(&[(7, &a), (8, &b)], &t, PAGE, &mut Workspace::default(), false);
        assert!(none.groups.is_empty() && none.pairs.is_empty());
    }

    /// An anonymous mapping over `[start, end)`.
    fn anon(start: u64, end: u64) -> MappingSpan {
        MappingSpan { start, end, name: "[anon]".into() }
    }

    #[test]
    fn a_huge_page_counts_whole_and_once() {
        let huge = |head: u64| {
            let entry = [(0x20_0000, PageEntry::huge(PRESENT | head, 9))];
            PagesRaw::from_entries(vec![anon(0x20_0000, 0x40_0000)], entry, PAGE)
        };
        let (a, b) = (huge(512), huge(512));
        let mut present = vec![0u64; 9];
        present[8] = 1; // frame 512
        let mut t = PfnTable::new(present);
        t.mapcount[0] = 2;
        let (totals, per) = exact(&[(1, &a), (2, &b)], &t, PAGE, &mut Workspace::default(), true);
        assert_eq!(totals.footprint, 512 * PAGE);
        assert_eq!(totals.thp, 512 * PAGE);
        assert_eq!(totals.histogram, [(2, 512 * PAGE)]);
        assert_eq!(
            (per[0].rss, per[0].pss, per[0].shared_in_tree),
            (512 * PAGE, 256 * PAGE, 512 * PAGE)
        );
        assert_eq!(totals.groups[0].bytes, 512 * PAGE);
    }

    #[test]
    fn a_huge_page_mapped_by_pages_elsewhere_is_split_into_its_frames() {
        let entry = [(0x20_0000, PageEntry::huge(PRESENT | 512, 9))];
        let mut a = PagesRaw::from_entries(vec![anon(0x20_0000, 0x40_0000)], entry, PAGE);
        a.split_huge(PAGE, |head| head == 512);
        assert_eq!(a.entries().len(), 512);
        assert_eq!(a.ranges(), std::slice::from_ref(&(0..512)));
        assert_eq!(a.entries()[3].pfn(), Some(515));
        assert_eq!(a.vaddr(3), 0x20_0000 + 3 * PAGE);
        assert_eq!(a.addressed(511..512).next().map(|(v, _)| v), Some(0x20_0000 + 511 * PAGE));
        assert!(!a.has_huge());
    }

    #[test]
    fn swap_entries_count_once() {
        let with_swap = || {
            let entries =
                [(0, PageEntry::new(PRESENT | 1)), (0x9000, PageEntry::new(SWAPPED | 0x1234))];
            PagesRaw::from_entries(vec![anon(0, 0xa000)], entries, PAGE)
        };
        let (a, b) = (with_swap(), with_swap());
        let t = table(&[(1, 2)], &[]);
        let (totals, per) = exact(&[(1, &a), (2, &b)], &t, PAGE, &mut Workspace::default(), true);
        assert_eq!(totals.swap, PAGE);
        assert_eq!(totals.footprint, 2 * PAGE);
        assert_eq!(per[0].swap, PAGE);
    }
}
