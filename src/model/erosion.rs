//! Model layer: copy-on-write erosion, what a forked worker still shares with its parent and
//! what it has copied since the fork. Pure: fed the pagemap entries of a worker and of its
//! parent (and, as root, the kpagecount of their frames), it compares them address by address.
//!
//! After `fork()` a worker maps its parent's frames at the parent's addresses. A write to one
//! of its private pages (a Python object's reference count, a garbage collection's header
//! bits) gives it a frame of its own there: a copy. So, per worker:
//!
//! - **shared with parent**: its resident pages in frames the parent maps too (any address);
//! - **copied from parent**: its private anonymous pages at addresses where the parent has a
//!   resident page too, in another frame, that this worker alone maps;
//! - **diverged, still shared**: the same, but the worker's frame is mapped by others too. The
//!   usual cause is the parent: when it writes a page after the fork, the parent gets the new
//!   frame and its workers go on sharing the frame of before. Counting that as a copy in every
//!   worker would charge N workers N copies of one write of the parent's; it is kept apart.
//!
//! Without root the frames read as 0; pagemap's exclusively-mapped bit (mapped once, machine
//! wide) still tells a copy (the worker's page is exclusive where the parent has a page) from a
//! shared page (neither is exclusive): an estimate, said so (docs/erosion.md).

use std::collections::HashMap;

use super::exact::{NO_FRAME, frames_of};
use super::snapshot::{Cursor, PageEntry, PagesRaw, PfnTable, pagemap_bits};

/// Mapping names kept per worker, for where its copies are.
pub const EROSION_NAMES: usize = 3;

/// What one forked worker shares with its parent and what it copied.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Erosion {
    pub parent: u32,
    pub shared_with_parent: u64,
    /// Of `shared_with_parent`, the anonymous pages: memory inherited copy-on-write (0 for a
    /// child that exec'd: it shares its parent's file pages only).
    pub shared_anon: u64,
    pub copied_from_parent: u64,
    /// At addresses both map, in different frames, the worker's mapped by others too.
    pub diverged_shared: u64,
    /// From the exclusively-mapped bit, without frames (no root).
    pub estimated: bool,
    /// `copied_from_parent` by the worker's mapping name, largest first, at most
    /// [`EROSION_NAMES`].
    pub by_mapping: Vec<(String, u64)>,
}

/// The frames a parent maps, as a bit per dense frame index ([`PfnTable::index`]): set for a
/// parent, asked for each of its workers, cleared again (only its own bits) when done.
#[derive(Debug, Default)]
pub struct ParentFrames {
    bits: Vec<u64>,
    /// The words of `bits` set (a few per thousand frames, where a list of the frames would
    /// be megabytes to fault in).
    touched: Vec<u32>,
}

impl ParentFrames {
    /// Marks the frames of `parent`.
    pub fn fill(&mut self, parent: &PagesRaw, table: &PfnTable) {
        self.fill_framed(&frames_of(parent, table), table);
    }

    /// Marks the frames of a parent whose entries' frames are `frames` ([`frames_of`]).
    pub fn fill_framed(&mut self, frames: &[u32], table: &PfnTable) {
        self.clear();
        let words = table.len().div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
        for index in frames.iter().filter(|&&f| f != NO_FRAME).map(|&f| f as usize) {
            let word = &mut self.bits[index / 64];
            if *word == 0 {
                self.touched.push((index / 64) as u32);
            }
            *word |= 1 << (index % 64);
        }
    }

    fn contains(&self, index: usize) -> bool {
        self.bits.get(index / 64).is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    fn clear(&mut self) {
        for word in self.touched.drain(..) {
            self.bits[word as usize] = 0;
        }
    }
}

fn present(entry: &PageEntry) -> bool {
    entry.raw & pagemap_bits::PRESENT != 0
}

fn anonymous(entry: &PageEntry) -> bool {
    entry.raw & pagemap_bits::FILE_OR_SHARED_ANON == 0
}

fn exclusive(entry: &PageEntry) -> bool {
    entry.raw & pagemap_bits::EXCLUSIVE != 0
}

/// The parent's resident entries over `[start, end)`, walked from `*from` (entries in address
/// order, so each worker's walk over its parent is one pass): calls `each` with every overlap's
/// bytes and the parent's entry's index.
fn overlaps(
    parent: &PagesRaw,
    at: &mut Cursor,
    from: &mut usize,
    (start, stop): (u64, u64),
    page_size: u64,
    mut each: impl FnMut(u64, usize),
) {
    let entries = parent.entries();
    let end = |at: &mut Cursor, k: usize| at.vaddr(k) + entries[k].bytes(page_size);
    if *from < entries.len() && end(at, *from) <= start {
        *from = parent.first_ending_above(start).max(*from);
    }
    let mut k = *from;
    while k < entries.len() && at.vaddr(k) < stop {
        if present(&entries[k]) {
            let bytes = end(at, k).min(stop) - at.vaddr(k).max(start);
            each(bytes, k);
        }
        k += 1;
    }
}

fn by_mapping(names: HashMap<&str, u64>) -> Vec<(String, u64)> {
    let mut list: Vec<(String, u64)> =
        names.into_iter().filter(|&(_, b)| b > 0).map(|(n, b)| (n.to_string(), b)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(EROSION_NAMES);
    list
}

/// A worker's erosion from physical frames: `frames` holds its parent's ([`ParentFrames::fill`]).
pub fn exact(
    parent_pid: u32,
    worker: &PagesRaw,
    parent: &PagesRaw,
    frames: &ParentFrames,
    table: &PfnTable,
    page_size: u64,
) -> Erosion {
    let (of_worker, of_parent) = (frames_of(worker, table), frames_of(parent, table));
    exact_framed(parent_pid, (worker, &of_worker), (parent, &of_parent), frames, table, page_size)
}

/// [`exact`] with each entry's frame looked up already ([`frames_of`]), for the worker's pages
/// and the parent's.
pub fn exact_framed(
    parent_pid: u32,
    (worker, worker_frames): (&PagesRaw, &[u32]),
    (parent, parent_frames): (&PagesRaw, &[u32]),
    frames: &ParentFrames,
    table: &PfnTable,
    page_size: u64,
) -> Erosion {
    let mut out = Erosion { parent: parent_pid, ..Erosion::default() };
    let mut names: HashMap<&str, u64> = HashMap::new();
    let (mut from, mut at, mut mine) = (0usize, parent.cursor(), worker.cursor());
    for (mapping, range) in worker.mappings.iter().zip(worker.ranges()) {
        let range = range.start as usize..range.end as usize;
        let entries = worker.entries()[range.clone()].iter().zip(&worker_frames[range.clone()]);
        for (k, (entry, &index)) in range.zip(entries) {
            // A counted frame: not swapped, not the zero page, not device memory.
            if index == NO_FRAME {
                continue;
            }
            let index = index as usize;
            let mapcount = table.mapcount[index];
            if frames.contains(index) {
                out.shared_with_parent += entry.bytes(page_size);
                if anonymous(entry) {
                    out.shared_anon += entry.bytes(page_size);
                }
                continue;
            }
            if !anonymous(entry) {
                continue;
            }
            let mut differs = 0u64;
            let vaddr = mine.vaddr(k);
            let span = (vaddr, vaddr + entry.bytes(page_size));
            // Only where the parent holds memory: its zero page (what it read and never wrote)
            // was never shared memory, so a worker's page over it is no copy.
            overlaps(parent, &mut at, &mut from, span, page_size, |bytes, k| {
                if parent_frames[k] != NO_FRAME {
                    differs += bytes;
                }
            });
            if differs == 0 {
                continue;
            }
            if mapcount == 1 {
                out.copied_from_parent += differs;
                *names.entry(mapping.name()).or_default() += differs;
            } else {
                out.diverged_shared += differs;
            }
        }
    }
    out.by_mapping = by_mapping(names);
    out
}

/// A worker's erosion without frames (no root), from pagemap's flags alone: a page neither maps
/// exclusively, at an address both have, counts as shared; the worker's exclusive anonymous page
/// where the parent has one, as copied; the worker's shared anonymous page where the parent's is
/// exclusive, as diverged. Pages shared at different addresses are missed, and a worker's page
/// shared with a sibling at an address where the parent holds a shared page of another frame
/// counts as shared.
pub fn estimate(parent_pid: u32, worker: &PagesRaw, parent: &PagesRaw, page_size: u64) -> Erosion {
    let mut out = Erosion { parent: parent_pid, estimated: true, ..Erosion::default() };
    let mut names: HashMap<&str, u64> = HashMap::new();
    let (mut from, mut at) = (0usize, parent.cursor());
    for (mapping, range) in worker.mappings.iter().zip(worker.ranges()) {
        for (vaddr, entry) in worker.addressed(range.clone()) {
            if !present(entry) {
                continue;
            }
            let span = (vaddr, vaddr + entry.bytes(page_size));
            let (mut shared, mut copied, mut diverged) = (0u64, 0u64, 0u64);
            overlaps(parent, &mut at, &mut from, span, page_size, |bytes, k| {
                match (exclusive(entry), exclusive(&parent.entries()[k])) {
                    (false, false) => shared += bytes,
                    (true, _) if anonymous(entry) => copied += bytes,
                    (false, true) if anonymous(entry) => diverged += bytes,
                    _ => {}
                }
            });
            out.shared_with_parent += shared;
            if anonymous(entry) {
                out.shared_anon += shared;
            }
            out.copied_from_parent += copied;
            out.diverged_shared += diverged;
            if copied > 0 {
                *names.entry(mapping.name()).or_default() += copied;
            }
        }
    }
    out.by_mapping = by_mapping(names);
    out
}

/// Growth of a worker's copies in bytes per second: the least-squares slope of `(seconds,
/// copied bytes)` points, `None` with fewer than two points or no time between them.
pub fn growth(points: &[(f64, u64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, y) in points {
        num += (t - mean_t) * (y as f64 - mean_y);
        den += (t - mean_t) * (t - mean_t);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::MappingSpan;

    const PAGE: u64 = 4096;
    const P: u64 = pagemap_bits::PRESENT;
    const X: u64 = pagemap_bits::EXCLUSIVE;
    const F: u64 = pagemap_bits::FILE_OR_SHARED_ANON;

    /// One anonymous mapping at 0x10000 whose page k has the raw entry `raws[k]` (0: absent).
    fn pages(name: &str, raws: &[u64]) -> PagesRaw {
        let entries = raws
            .iter()
            .enumerate()
            .filter(|&(_, &r)| r != 0)
            .map(|(k, &r)| (0x10000 + k as u64 * PAGE, PageEntry::new(r)));
        let end = 0x10000 + raws.len() as u64 * PAGE;
        let mappings = vec![MappingSpan { start: 0x10000, end, name: name.into() }];
        PagesRaw::from_entries(mappings, entries, PAGE)
    }

    fn table(counts: &[(u64, u32)]) -> PfnTable {
        let max = counts.iter().map(|c| c.0).max().unwrap_or(0);
        let mut present = vec![0u64; (max / 64 + 1) as usize];
        for &(pfn, _) in counts {
            present[(pfn / 64) as usize] |= 1 << (pfn % 64);
        }
        let mut t = PfnTable::new(present);
        for &(pfn, count) in counts {
            let i = t.index(pfn).unwrap();
            t.mapcount[i] = count;
        }
        t
    }

    #[test]
    fn shared_copied_and_diverged_pages_are_told_apart() {
        // Parent: frames 100..104 at pages 0..4. Worker: 100, 101 shared; 200 its own copy at
        // page 2; 300 at page 3 is mapped by two (a sibling still holds the frame of before
        // the parent rewrote it: the parent has 103 there); page 4 only the worker has.
        let parent = pages("[heap]", &[P | 100, P | 101, P | 102, P | 103]);
        let worker = pages("[heap]", &[P | 100, P | 101, P | 200, P | 300, P | 400]);
        let t = table(&[(100, 2), (101, 2), (102, 1), (103, 1), (200, 1), (300, 2), (400, 1)]);
        let mut frames = ParentFrames::default();
        frames.fill(&parent, &t);
        let e = exact(10, &worker, &parent, &frames, &t, PAGE);
        assert_eq!(e.shared_with_parent, 2 * PAGE);
        assert_eq!(e.shared_anon, 2 * PAGE, "inherited, not exec'd");
        assert_eq!(e.copied_from_parent, PAGE);
        assert_eq!(e.diverged_shared, PAGE);
        assert_eq!(e.by_mapping, vec![("[heap]".to_string(), PAGE)]);
        assert!(!e.estimated);
    }

    #[test]
    fn file_pages_and_the_zero_page_are_not_copies() {
        // A file page of another frame at the same address is a different page, not a copy;
        // the zero page (kpagecount 0) is not memory.
        let parent = pages("/lib/x", &[P | F | 100, P | 7]);
        let worker = pages("/lib/x", &[P | F | 101, P | 7]);
        let t = table(&[(100, 1), (101, 1), (7, 0)]);
        let mut frames = ParentFrames::default();
        frames.fill(&parent, &t);
        let e = exact(10, &worker, &parent, &frames, &t, PAGE);
        assert_eq!((e.shared_with_parent, e.copied_from_parent, e.diverged_shared), (0, 0, 0));
    }

    #[test]
    fn a_page_written_over_the_parents_zero_page_is_no_copy() {
        // The parent only read page 0 (the zero page, frame 7, kpagecount 0); the worker wrote
        // it (frame 200 of its own). Page 1 the parent did write: the worker's page there is.
        let parent = pages("[anon]", &[P | 7, P | 100]);
        let worker = pages("[anon]", &[P | 200, P | 201]);
        let t = table(&[(7, 0), (100, 1), (200, 1), (201, 1)]);
        let mut frames = ParentFrames::default();
        frames.fill(&parent, &t);
        let e = exact(10, &worker, &parent, &frames, &t, PAGE);
        assert_eq!((e.copied_from_parent, e.shared_with_parent), (PAGE, 0));
    }

    #[test]
    fn a_huge_page_against_base_pages_counts_the_overlap() {
        // The worker's 2 MiB huge page (frame 512) where the parent has 3 base pages of other
        // frames: 3 pages differ, the rest of the huge page has no parent page under it.
        let parent = pages("[anon]", &[P | 10, P | 11, P | 12]);
        let huge = [(0x10000, PageEntry::huge(P | 512, 9))];
        let mut mappings = pages("[anon]", &[]).mappings;
        mappings[0].end = 0x10000 + (512 << 12);
        let worker = PagesRaw::from_entries(mappings, huge, PAGE);
        let t = table(&[(10, 1), (11, 1), (12, 1), (512, 1)]);
        let mut frames = ParentFrames::default();
        frames.fill(&parent, &t);
        let e = exact(10, &worker, &parent, &frames, &t, PAGE);
        assert_eq!(e.copied_from_parent, 3 * PAGE);
        // The same huge frame in both: shared whole.
        let parent_huge = worker.clone();
        frames.fill(&parent_huge, &t);
        let e = exact(10, &worker, &parent_huge, &frames, &t, PAGE);
        assert_eq!((e.shared_with_parent, e.copied_from_parent), (512 * PAGE, 0));
    }

    #[test]
    fn the_estimate_reads_the_exclusive_bit() {
        let parent = pages("[heap]", &[P, P, P | X, P]);
        let worker = pages("[heap]", &[P, P | X, P, 0, P | X]);
        let e = estimate(10, &worker, &parent, PAGE);
        assert!(e.estimated);
        assert_eq!(e.shared_with_parent, PAGE);
        assert_eq!(e.copied_from_parent, PAGE, "page 4 has no parent page: not a copy");
        assert_eq!(e.diverged_shared, PAGE);
    }

    #[test]
    fn frames_are_cleared_between_parents() {
        let a = pages("[heap]", &[P | 100]);
        let b = pages("[heap]", &[P | 101]);
        let t = table(&[(100, 2), (101, 2)]);
        let mut frames = ParentFrames::default();
        frames.fill(&a, &t);
        frames.fill(&b, &t);
        assert!(!frames.contains(t.index(100).unwrap()));
        assert!(frames.contains(t.index(101).unwrap()));
    }

    #[test]
    fn growth_is_the_slope() {
        assert_eq!(growth(&[(0.0, 0)]), None);
        assert_eq!(growth(&[(1.0, 0), (1.0, 5)]), None);
        let g = growth(&[(0.0, 0), (1.0, 100), (2.0, 200)]).unwrap();
        assert!((g - 100.0).abs() < 1e-9);
    }
}
