//! Model layer: exact accounting from physical pages. Pure: fed the pagemap entries of every
//! process of a tree and the kpagecount/kpageflags of the frames they map, it computes what the
//! tree really holds — distinct frames (footprint), frames only the tree maps (exclusive), how
//! many processes map each frame (histogram), who shares with whom (pairs), per mapping name
//! what is private, shared within the tree and shared outside it, and each process's PSS and
//! USS recomputed page by page.
//!
//! Tables are indexed by PFN (sized from the machine's highest frame), not hashed: about 6 bytes
//! per frame of RAM for the counters here plus 5 for the [`PfnTable`] (docs/exact.md).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::snapshot::MappingRaw;

/// Pagemap bits the model needs (the sampler documents the format).
const PFN_MASK: u64 = (1 << 55) - 1;
const SWAPPED: u64 = 1 << 62;
const PRESENT: u64 = 1 << 63;

/// One pagemap entry that is present or swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEntry {
    pub vaddr: u64,
    /// The raw 64-bit pagemap entry.
    pub raw: u64,
}

impl PageEntry {
    pub fn pfn(&self) -> Option<u64> {
        (self.raw & PRESENT != 0).then_some(self.raw & PFN_MASK)
    }

    /// The swap entry (type and offset), when the page is swapped out.
    pub fn swap_entry(&self) -> Option<u64> {
        (self.raw & PRESENT == 0 && self.raw & SWAPPED != 0).then_some(self.raw & PFN_MASK)
    }
}

/// The pages of one process: its mappings (`/proc/PID/maps`), and for each mapping the range of
/// its present or swapped entries in `entries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagesRaw {
    pub mappings: Vec<MappingRaw>,
    pub entries: Vec<PageEntry>,
    pub ranges: Vec<Range<u32>>,
}

/// Compact kpageflags, one byte per frame.
pub mod flags {
    /// The frame's kpagecount/kpageflags were read.
    pub const READ: u8 = 1;
    /// The shared zero page: not memory anyone uses (RSS does not count it either).
    pub const ZERO_PAGE: u8 = 2;
    pub const THP: u8 = 4;
    pub const KSM: u8 = 8;
    pub const ANON: u8 = 16;
    pub const HUGETLB: u8 = 32;
    /// Backed by swap (anonymous or shared memory), not by a file.
    pub const SWAPBACKED: u8 = 64;
}

/// `/proc/kpagecount` and `/proc/kpageflags` for the frames of a tree, indexed by PFN.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PfnTable {
    /// How many times the frame is mapped, machine-wide (0 where not read).
    pub mapcount: Vec<u32>,
    pub flags: Vec<u8>,
}

/// A process's figures recomputed from its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub bytes: u64,
}

/// A mapping name's distinct bytes in the tree, by sharing class. A frame mapped under several
/// names (or several times) is split evenly between its occurrences, so the classes add up to
/// the footprint over all names.
#[derive(Debug, Clone, PartialEq, Default)]
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
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Every pair of processes sharing frames, largest first.
    pub pairs: Vec<Pair>,
    /// Per mapping name, largest first.
    pub by_name: Vec<NameSharing>,
}

/// Counters indexed by PFN, reused across trees and reset after each.
#[derive(Debug, Default)]
pub struct Workspace {
    /// Mappings of the frame by the tree (saturating).
    occurrences: Vec<u16>,
    /// Distinct processes of the tree mapping the frame.
    processes: Vec<u16>,
    /// The last process (index + 1) counted in `processes`; 0 once the frame is handled.
    last: Vec<u16>,
}

impl Workspace {
    fn ensure(&mut self, len: usize) {
        if self.occurrences.len() < len {
            // Zeroed allocations: the kernel hands out zero pages lazily, so only the parts of
            // the tables the tree's frames fall in ever become resident.
            self.occurrences = vec![0; len];
            self.processes = vec![0; len];
            self.last = vec![0; len];
        }
    }
}

fn frame_of(entry: &PageEntry, table: &PfnTable) -> Option<usize> {
    let pfn = usize::try_from(entry.pfn()?).ok()?;
    let zero = table.flags.get(pfn).is_some_and(|f| f & flags::ZERO_PAGE != 0);
    (pfn < table.mapcount.len() && !zero).then_some(pfn)
}

/// Computes the exact figures of the tree made of `processes` (pid, pages).
/// `want_pairs` false skips the pairwise sharing (its cost grows with the square of the
/// processes sharing a frame: for the whole machine, libc alone is thousands of pairs).
pub fn exact(
    processes: &[(u32, &PagesRaw)],
    table: &PfnTable,
    page_size: u64,
    ws: &mut Workspace,
    want_pairs: bool,
) -> (ExactTotals, Vec<ExactProcess>) {
    ws.ensure(table.mapcount.len());
    let mut totals = ExactTotals::default();
    let mut swap_entries = HashSet::new();
    let mut per_process = vec![ExactProcess::default(); processes.len()];

    // Pass 1: count the tree's mappings and distinct processes per frame.
    for (index, (_, pages)) in processes.iter().enumerate() {
        let tag = u16::try_from(index + 1).unwrap_or(u16::MAX);
        for entry in &pages.entries {
            if let Some(swap) = entry.swap_entry() {
                swap_entries.insert(swap);
                per_process[index].swap += page_size;
                continue;
            }
            let Some(pfn) = frame_of(entry, table) else {
                if entry.pfn().is_some() {
                    totals.zero_page_mapped += page_size;
                }
                continue;
            };
            ws.occurrences[pfn] = ws.occurrences[pfn].saturating_add(1);
            if ws.last[pfn] != tag {
                ws.last[pfn] = tag;
                ws.processes[pfn] = ws.processes[pfn].saturating_add(1);
            }
        }
    }

    // Pass 2: per process PSS/USS, per name sharing, pairs, then each distinct frame once.
    let mut histogram: HashMap<usize, u64> = HashMap::new();
    let mut names: HashMap<&str, (NameSharing, f64, f64, f64, usize)> = HashMap::new();
    let mut shared_frames: Vec<u64> = Vec::new();
    for (index, (_, pages)) in processes.iter().enumerate() {
        let mut pss_fixed: u128 = 0;
        let me = &mut per_process[index];
        for (mapping, range) in pages.mappings.iter().zip(&pages.ranges) {
            let name = mapping.name();
            let slot = names.entry(name).or_insert_with(|| {
                (NameSharing { name: name.to_string(), ..NameSharing::default() }, 0.0, 0.0, 0.0, 0)
            });
            if slot.4 != index + 1 {
                slot.4 = index + 1;
                slot.0.processes += 1;
            }
            for entry in &pages.entries[range.start as usize..range.end as usize] {
                let Some(pfn) = frame_of(entry, table) else { continue };
                let mapcount = table.mapcount[pfn].max(1);
                let occurrences = u32::from(ws.occurrences[pfn].max(1));
                me.rss += page_size;
                pss_fixed += (u128::from(page_size) << 12) / u128::from(mapcount);
                if mapcount == 1 {
                    me.uss += page_size;
                } else if u32::from(ws.occurrences[pfn]) >= mapcount {
                    me.shared_in_tree += page_size;
                } else {
                    me.shared_outside += page_size;
                }
                let share = page_size as f64 / f64::from(occurrences);
                if mapcount == 1 {
                    slot.1 += share;
                } else if occurrences >= mapcount {
                    slot.2 += share;
                } else {
                    slot.3 += share;
                }
                if want_pairs && ws.processes[pfn] >= 2 {
                    shared_frames.push(((pfn as u64) << 16) | (index as u64 & 0xffff));
                }
                if ws.last[pfn] != 0 {
                    // First time this frame is seen in pass 2: count it once.
                    ws.last[pfn] = 0;
                    totals.resident += page_size;
                    *histogram.entry(usize::from(ws.processes[pfn])).or_default() += page_size;
                    if u32::from(ws.occurrences[pfn]) >= table.mapcount[pfn] {
                        totals.exclusive += page_size;
                    }
                }
            }
        }
        me.pss = (pss_fixed >> 12) as u64;
    }
    // Reset the workspace where this tree touched it.
    for (_, pages) in processes {
        for entry in &pages.entries {
            if let Some(pfn) = frame_of(entry, table) {
                ws.occurrences[pfn] = 0;
                ws.processes[pfn] = 0;
                ws.last[pfn] = 0;
            }
        }
    }

    totals.swap = swap_entries.len() as u64 * page_size;
    totals.footprint = totals.resident + totals.swap;
    let mut histogram: Vec<(usize, u64)> = histogram.into_iter().collect();
    histogram.sort_unstable();
    totals.histogram = histogram;
    totals.pairs = pairs(&mut shared_frames, processes, page_size);
    let mut by_name: Vec<NameSharing> = names
        .into_values()
        .map(|(mut n, private, in_tree, outside, _)| {
            n.private = private.round() as u64;
            n.shared_in_tree = in_tree.round() as u64;
            n.shared_outside = outside.round() as u64;
            n
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

/// Bytes shared by each pair of processes, from `(pfn << 16 | process index)` of every shared
/// frame mapping.
fn pairs(frames: &mut Vec<u64>, processes: &[(u32, &PagesRaw)], page_size: u64) -> Vec<Pair> {
    frames.sort_unstable();
    frames.dedup();
    let mut bytes: HashMap<(u16, u16), u64> = HashMap::new();
    // Neighbouring frames are usually mapped by the same set of processes: count each set's
    // frames and expand its pairs once per change of set.
    let mut flush = |set: &[u16], frames_in_set: u64| {
        for (x, &a) in set.iter().enumerate() {
            for &b in &set[x + 1..] {
                *bytes.entry((a, b)).or_default() += frames_in_set * page_size;
            }
        }
    };
    let (mut set, mut run): (Vec<u16>, Vec<u16>) = (Vec::new(), Vec::new());
    let mut count = 0u64;
    let mut i = 0;
    while i < frames.len() {
        let pfn = frames[i] >> 16;
        run.clear();
        while i < frames.len() && frames[i] >> 16 == pfn {
            run.push((frames[i] & 0xffff) as u16);
            i += 1;
        }
        if run == set {
            count += 1;
        } else {
            flush(&set, count);
            std::mem::swap(&mut set, &mut run);
            count = 1;
        }
    }
    flush(&set, count);
    let mut list: Vec<Pair> = bytes
        .into_iter()
        .map(|((a, b), bytes)| Pair {
            a: processes[usize::from(a)].0,
            b: processes[usize::from(b)].0,
            bytes,
        })
        .collect();
    list.sort_by(|x, y| y.bytes.cmp(&x.bytes).then((x.a, x.b).cmp(&(y.a, y.b))));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::SmapsFields;

    const PAGE: u64 = 4096;

    fn mapping(name: &str) -> MappingRaw {
        MappingRaw {
            start: 0,
            end: 0,
            perms: "rw-p".into(),
            offset: 0,
            dev: "00:00".into(),
            inode: 0,
            pathname: name.into(),
            fields: SmapsFields::default(),
            vm_flags: vec![],
        }
    }

    fn pages(frames: &[u64]) -> PagesRaw {
        PagesRaw {
            mappings: vec![mapping("buf")],
            entries: frames
                .iter()
                .enumerate()
                .map(|(i, &pfn)| PageEntry { vaddr: i as u64 * PAGE, raw: PRESENT | pfn })
                .collect(),
            ranges: std::iter::once(0..frames.len() as u32).collect(),
        }
    }

    fn table(counts: &[(u64, u32)], zero: &[u64]) -> PfnTable {
        let mut t = PfnTable { mapcount: vec![0; 64], flags: vec![0; 64] };
        for &(pfn, count) in counts {
            t.mapcount[pfn as usize] = count;
            t.flags[pfn as usize] = flags::READ;
        }
        for &pfn in zero {
            t.flags[pfn as usize] |= flags::ZERO_PAGE;
        }
        t
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
    fn swap_entries_count_once() {
        let mut a = pages(&[1]);
        a.entries.push(PageEntry { vaddr: 0x9000, raw: SWAPPED | 0x1234 });
        let mut b = pages(&[1]);
        b.entries.push(PageEntry { vaddr: 0x9000, raw: SWAPPED | 0x1234 });
        let t = table(&[(1, 2)], &[]);
        let (totals, per) = exact(&[(1, &a), (2, &b)], &t, PAGE, &mut Workspace::default(), true);
        assert_eq!(totals.swap, PAGE);
        assert_eq!(totals.footprint, 2 * PAGE);
        assert_eq!(per[0].swap, PAGE);
    }
}
