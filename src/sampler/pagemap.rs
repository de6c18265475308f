//! Sampler layer: physical pages. Reads `/proc/PID/maps` and `/proc/PID/pagemap` (one 64-bit
//! entry per virtual page: PFN or swap entry, present/swapped/exclusive bits), and
//! `/proc/kpagecount` and `/proc/kpageflags` for the distinct frames a tree maps.
//!
//! Costs and rules (docs/exact.md): a pagemap read walks the target's page tables under its
//! mmap lock, like smaps; PAGEMAP_SCAN (Linux 6.7+) finds the present, swapped and huge ranges
//! first, so the empty parts of large reservations are skipped and a PMD-mapped transparent
//! huge page is read as one entry (its first base page's, whose PFN is its head frame) instead
//! of 512; kpagecount/kpageflags are read with one `pread` per contiguous run of frames, never
//! one look-up per page. PFNs read as 0 and the
//! kpage files are refused without CAP_SYS_ADMIN: then there is no exact accounting, with that
//! reason.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use super::{ReadError, Sampler, page_size};
use crate::model::snapshot::page_flags as pf;
use crate::model::snapshot::pagemap_bits as bits;
use crate::model::snapshot::{
    MappingSpan, PageEntry, PagesRaw, PfnTable, SmapsFields, Snapshot, Unreadable,
};
use rayon::prelude::*;

/// kpageflags bits (include/uapi/linux/kernel-page-flags.h).
mod kpf {
    pub const ANON: u64 = 1 << 12;
    pub const SWAPBACKED: u64 = 1 << 14;
    pub const HUGE: u64 = 1 << 17;
    pub const KSM: u64 = 1 << 21;
    pub const THP: u64 = 1 << 22;
    pub const ZERO_PAGE: u64 = 1 << 24;
}

/// Entries read per pread of a pagemap or kpage file (128 KiB of buffer: a larger one costs
/// more in page faults, ~2 µs a page here, than its fewer reads save).
const CHUNK_ENTRIES: usize = 16 * 1024;
/// The first address above the user address space (x86-64, 4-level page tables).
const USER_SPACE_END: u64 = 0x8000_0000_0000;
/// PAGEMAP_SCAN is used when the mapped address space exceeds the resident size this many
/// times (or where huge pages may be).
const SPARSE_FACTOR: u64 = 4;
/// Mappings (or present spans) closer than this are read in one pagemap pread.
const MERGE_GAP: u64 = 256 << 10;
/// Frames closer than this are read in one kpagecount pread, gaps included.
const RUN_GAP: u64 = 16;

/// What is known of a process's pages before they are read, from its smaps_rollup: how much
/// is resident, and how much of it is in huge pages (`None`: unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PagesHint {
    pub resident: Option<u64>,
    pub huge_bytes: Option<u64>,
}

impl PagesHint {
    pub fn from_rollup(fields: &SmapsFields) -> Self {
        let huge_bytes = [fields.anon_huge_pages, fields.shmem_pmd_mapped, fields.file_pmd_mapped]
            .into_iter()
            .flatten()
            .reduce(u64::saturating_add);
        PagesHint { resident: fields.rss, huge_bytes }
    }

    /// Whether any resident page is huge (`None`: unknown).
    fn huge(&self) -> Option<bool> {
        self.huge_bytes.map(|bytes| bytes > 0)
    }

    /// How many entries the pages read as: a base page each, a huge page one (`None`:
    /// unknown).
    fn entries(&self, page_size: u64) -> Option<usize> {
        let huge = self.huge_bytes.unwrap_or(0);
        let rss = self.resident?;
        let base = rss.saturating_sub(huge) / page_size;
        usize::try_from(base + huge / pmd_size().max(page_size)).ok()
    }
}

/// `struct pm_scan_arg` (include/uapi/linux/fs.h, Linux 6.7): no crate declares it.
#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// A PMD-mapped transparent huge page (or a hugetlb page).
const PAGE_IS_HUGE: u64 = 1 << 6;

nix::ioctl_readwrite!(pagemap_scan, b'f', 16, PmScanArg);

/// A range PAGEMAP_SCAN found present or swapped; `huge`: mapped by PMDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
    huge: bool,
}

/// The size of a PMD-mapped transparent huge page (2 MiB on x86-64 with 4 KiB pages).
fn pmd_size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&size: &u64| size.is_power_of_two())
            .unwrap_or(2 << 20)
    })
}

/// The present or swapped ranges of `[start, end)`, by PAGEMAP_SCAN; `None` when the kernel
/// does not have the ioctl (before 6.7), so the caller reads the whole range.
fn scan_ranges(file: &File, start: u64, end: u64) -> Option<Vec<Span>> {
    let mut regions = vec![PageRegion::default(); 4096];
    let mut out = Vec::new();
    let mut from = start;
    while from < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            start: from,
            end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_HUGE,
            ..PmScanArg::default()
        };
        // SAFETY: `arg` is a valid pm_scan_arg whose `vec` points at `regions.len()` writable
        // page_region structs that outlive the call.
        let found = unsafe { pagemap_scan(file.as_raw_fd(), &mut arg) }.ok()?;
        let found = usize::try_from(found).ok()?.min(regions.len());
        out.extend(regions[..found].iter().map(|r| Span {
            start: r.start,
            end: r.end,
            huge: r.categories & (PAGE_IS_HUGE | PAGE_IS_PRESENT) == PAGE_IS_HUGE | PAGE_IS_PRESENT,
        }));
        if arg.walk_end <= from {
            break;
        }
        from = arg.walk_end;
    }
    Some(out)
}

impl Sampler {
    /// Why exact accounting cannot be done here, if it cannot: a captured /proc, or no
    /// privilege.
    pub fn exact_refusal(&self, privileged: bool) -> Option<Unreadable> {
        if self.is_captured() {
            Some(Unreadable::Failed(
                "exact accounting reads live physical pages; a captured /proc has none".into(),
            ))
        } else if !privileged {
            Some(Unreadable::PermissionDenied(
                "physical pages (pagemap PFNs, /proc/kpagecount) need CAP_SYS_ADMIN: run memtree \
                 as root"
                    .into(),
            ))
        } else {
            None
        }
    }

    /// The pages of one sampled process, or why there are none.
    fn pages_of(
        &self,
        pid: u32,
        rollup: &Result<SmapsFields, Unreadable>,
        page_size: u64,
    ) -> Result<PagesRaw, Unreadable> {
        match rollup {
            Ok(fields) => self.read_pages(pid, page_size, PagesHint::from_rollup(fields)),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Reads the physical pages of every readable process of `snapshot` not read yet, in
    /// parallel, then kpagecount for the distinct frames they map (and kpageflags, which only
    /// `--dedup` needs: anonymous or shared memory). Without privilege (or on a captured /proc)
    /// every exact figure is left absent with the reason.
    pub fn sample_exact(&self, snapshot: &mut Snapshot, with_flags: bool) {
        if let Some(reason) = self.exact_refusal(snapshot.privileged) {
            for p in &mut snapshot.processes {
                p.pages = Some(Err(p.rollup.as_ref().err().cloned().unwrap_or(reason.clone())));
            }
            // Without root the flags are still there (the erosion estimate reads them); a
            // capture has no pagemap at all.
            if !self.is_captured() {
                let page_size = snapshot.page_size;
                snapshot.processes.par_iter_mut().filter(|p| p.unframed.is_none()).for_each(|p| {
                    p.unframed = Some(match &p.rollup {
                        Ok(fields) => {
                            self.read_page_entries(p.pid, page_size, PagesHint::from_rollup(fields))
                        }
                        Err(reason) => Err(reason.clone()),
                    });
                });
            }
            snapshot.pfn_table = Some(Err(reason));
            return;
        }
        let page_size = snapshot.page_size;
        let unread = snapshot.processes.iter().any(|p| p.pages.is_none());
        if !unread && let Some(Ok(table)) = &mut snapshot.pfn_table {
            // Counted while the pages were read: only the flags may be missing.
            if with_flags
                && table.flags.is_empty()
                && !table.is_empty()
                && let Err(reason) = self.read_flags(table)
            {
                snapshot.pfn_table = Some(Err(reason));
            }
            return;
        }
        snapshot.processes.par_iter_mut().filter(|p| p.pages.is_none()).for_each(|p| {
            p.pages = Some(self.pages_of(p.pid, &p.rollup, page_size));
        });
        split_huge_mapped_by_pages(snapshot);
        // Distinct frames: a bitmap over every frame of RAM. A frame above RAM (device memory
        // a driver mapped) has no page count and is left out, so it counts as the zero page
        // does: not memory. Without /proc/zoneinfo the bitmap grows to the highest frame seen.
        let max_pfn = self.max_pfn().ok();
        let mut present = vec![0u64; max_pfn.unwrap_or(0).div_ceil(64) as usize];
        for pages in snapshot.processes.iter().filter_map(|p| p.pages.as_ref()?.as_ref().ok()) {
            for pfn in pages.entries().iter().filter_map(|e| e.pfn()) {
                if max_pfn.is_some_and(|max| pfn >= max) {
                    continue;
                }
                let word = (pfn / 64) as usize;
                if word >= present.len() {
                    present.resize(word + 1, 0);
                }
                present[word] |= 1 << (pfn % 64);
            }
        }
        snapshot.pfn_table = Some(self.read_pfn_table(PfnTable::new(present), with_flags));
    }

    /// The present and swapped pages of `pid`, with the mappings they belong to.
    pub fn read_pages(
        &self,
        pid: u32,
        page_size: u64,
        hint: PagesHint,
    ) -> Result<PagesRaw, Unreadable> {
        let pages = self.read_page_entries(pid, page_size, hint)?;
        let hidden = pages
            .entries()
            .iter()
            .any(|e| e.raw & bits::PRESENT != 0 && e.raw & bits::PFN_MASK == 0);
        if hidden {
            return Err(Unreadable::PermissionDenied(
                "physical frame numbers read as 0: they need CAP_SYS_ADMIN (run as root)".into(),
            ));
        }
        Ok(pages)
    }

    /// The present and swapped pagemap entries of `pid`, PFNs or not: without CAP_SYS_ADMIN
    /// the PFNs read as 0 but the present, swapped and exclusively-mapped bits are there (what
    /// duplicated content without root is built on).
    pub fn read_page_entries(
        &self,
        pid: u32,
        page_size: u64,
        hint: PagesHint,
    ) -> Result<PagesRaw, Unreadable> {
        let resident = hint.resident;
        let mut mappings: Vec<MappingSpan> =
            self.parse_mappings(pid, "maps")?.into_iter().map(MappingSpan::from).collect();
        // [vsyscall] sits above the user address space: pagemap has nothing there.
        mappings.retain(|m| m.start < USER_SPACE_END);
        if mappings.is_empty() {
            return Err(self.explain(pid, ReadError::Vanished { path: "maps".into() }));
        }
        let path = self.root().join(pid.to_string()).join("pagemap");
        let io_error = |e: io::Error| self.explain(pid, ReadError::from_io(path.clone(), e));
        let file = File::open(&path).map_err(io_error)?;
        // PAGEMAP_SCAN walks the page tables once more to find what is present and what is
        // huge (~20 % of a pagemap read of 4 KiB pages): it pays where most of the address
        // space is empty (reservations, arenas, stacks: those parts are skipped) or where huge
        // pages are (each is read as one entry instead of 512); elsewhere it is not used.
        let first = mappings[0].start;
        let last = mappings.iter().map(|m| m.end).max().unwrap_or(first);
        let mapped: u64 = mappings.iter().map(|m| m.end - m.start).sum();
        let sparse = resident.is_none_or(|rss| mapped > SPARSE_FACTOR * rss);
        let present = if sparse || hint.huge() != Some(false) {
            scan_ranges(&file, first, last)
        } else {
            None
        };
        let order = (pmd_size() / page_size).trailing_zeros();

        // Sized from the resident pages (smaps_rollup), so the list is never copied as it grows
        // (and is faulted in at once: see `resident`).
        let capacity = hint.entries(page_size).unwrap_or(0);
        let wanted = wanted_spans(&mappings, present.as_deref());
        let mut pages = PagesRaw::new(mappings, capacity);
        let result = with_read_buffer(|buf| {
            buf.resize(CHUNK_ENTRIES * 8, 0);
            read_spans(&file, &wanted, page_size, order, buf, &mut pages)
        });
        result.map_err(io_error)?;
        // The rollup had resident pages and pagemap shows none: the process exited (or its
        // address space went away) between the two reads — not a process of 0 bytes.
        if pages.entries().is_empty() && resident.is_some_and(|rss| rss > 0) {
            return Err(self.explain_empty(pid));
        }
        Ok(pages.finish())
    }

    /// The highest page frame number of the machine, from `/proc/zoneinfo` (start_pfn +
    /// spanned of every zone): the size of the frame bitmap.
    pub fn max_pfn(&self) -> Result<u64, ReadError> {
        let path = self.root().join("zoneinfo");
        let text = super::read_text(&path, 16 << 20, self.is_captured())
            .map_err(|e| ReadError::from_io(path.clone(), e))?;
        let mut spanned = 0u64;
        let mut max = 0u64;
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("spanned") {
                spanned = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("start_pfn:") {
                let start: u64 = v.trim().parse().unwrap_or(0);
                max = max.max(start + spanned);
            }
        }
        if max == 0 {
            return Err(ReadError::Parse { path, what: "no zone with start_pfn".into() });
        }
        Ok(max)
    }

    /// kpagecount (and kpageflags `with_flags`) for the frames of `table`, read in contiguous
    /// runs; the two files at once.
    pub fn read_pfn_table(
        &self,
        mut table: PfnTable,
        with_flags: bool,
    ) -> Result<PfnTable, Unreadable> {
        let pfns = table.pfns();
        let count = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        let (counts, flags) = rayon::join(
            || self.read_kpage("kpagecount", &pfns, &count),
            || with_flags.then(|| self.read_kpage("kpageflags", &pfns, &compact_flags)),
        );
        table.mapcount = counts?;
        if let Some(flags) = flags {
            table.flags = flags?;
        }
        Ok(table)
    }

    /// Claims for the frames of a pass in which each process's frames are counted by the
    /// thread that read its pages (see [`FrameClaims`]); `None` when they cannot be used here
    /// (no privilege, a capture, no /proc/zoneinfo to size the bitmap, no /proc/kpagecount).
    pub fn frame_claims(&self, privileged: bool) -> Option<FrameClaims> {
        if self.exact_refusal(privileged).is_some() {
            return None;
        }
        let max_pfn = self.max_pfn().ok()?;
        let kpagecount = File::open(self.root().join("kpagecount")).ok()?;
        let words = max_pfn.div_ceil(64) as usize;
        // Zeroed by the allocator (calloc): the parts of the bitmap no frame of the pass falls
        // in are never touched, so never faulted in.
        let mut zeroed = std::mem::ManuallyDrop::new(vec![0u64; words]);
        let (ptr, len, capacity) = (zeroed.as_mut_ptr(), zeroed.len(), zeroed.capacity());
        // SAFETY: `AtomicU64` has the same size, alignment and bit validity as `u64`
        // (documented), so the allocation is a valid `Vec<AtomicU64>` of the same length and
        // capacity; `zeroed` is never dropped, so it is freed once, by the new vector.
        let bits = unsafe { Vec::from_raw_parts(ptr.cast(), len, capacity) };
        Some(FrameClaims { bits, max_pfn, kpagecount })
    }

    /// kpageflags for the frames of `table`, which has its counts already.
    pub fn read_flags(&self, table: &mut PfnTable) -> Result<(), Unreadable> {
        table.flags = self.read_kpage("kpageflags", &table.pfns(), &compact_flags)?;
        Ok(())
    }

    /// The values of `/proc/{what}` (kpagecount, kpageflags) for `pfns`, converted.
    fn read_kpage<T: Send + Default + Clone>(
        &self,
        what: &str,
        pfns: &[u64],
        convert: &(impl Fn(u64) -> T + Sync),
    ) -> Result<Vec<T>, Unreadable> {
        let file = File::open(self.root().join(what)).map_err(|e| kpage_error(what, e))?;
        let mut values = vec![T::default(); pfns.len()];
        read_table(&file, pfns, &mut values, convert).map_err(|e| kpage_error(what, e))?;
        Ok(values)
    }
}

/// A huge page one process maps with a PMD (one entry) and another with base pages (after a
/// partial mprotect or munmap, say) would be counted twice: its head in the first, its base
/// frames in the second. Such huge pages are split into base pages everywhere, so each frame
/// is one entry with its own count.
fn split_huge_mapped_by_pages(snapshot: &mut Snapshot) {
    let page_size = snapshot.page_size;
    let pages = || snapshot.processes.iter().filter_map(|p| p.pages.as_ref()?.as_ref().ok());
    let heads: std::collections::HashMap<u64, u32> = pages()
        .flat_map(|p| p.entries().iter().filter(|e| e.order() > 0))
        .filter_map(|e| Some((e.pfn()?, e.order())))
        .collect();
    if heads.is_empty() {
        return;
    }
    let orders: std::collections::BTreeSet<u32> = heads.values().copied().collect();
    let mut split = HashSet::new();
    for entry in pages().flat_map(|p| p.entries().iter().filter(|e| e.order() == 0)) {
        let Some(pfn) = entry.pfn() else { continue };
        for &order in &orders {
            let head = pfn & !((1u64 << order) - 1);
            if heads.get(&head) == Some(&order) {
                split.insert(head);
            }
        }
    }
    if split.is_empty() {
        return;
    }
    for p in &mut snapshot.processes {
        if let Some(Ok(pages)) = &mut p.pages {
            pages.split_huge(page_size, |head| split.contains(&head));
        }
    }
}

/// A frame bitmap shared by the threads of one pass: a thread that has read a process's pages
/// claims its frames (an atomic OR per frame) and reads kpagecount for the frames it was the
/// first to claim, in runs, while the other threads still read pages — so the frame table is
/// ready when the last process is. A frame whose pagemap entry says it is mapped exactly once
/// (`PM_MMAP_EXCLUSIVE`) needs no read: its count is 1.
pub struct FrameClaims {
    bits: Vec<std::sync::atomic::AtomicU64>,
    max_pfn: u64,
    kpagecount: File,
}

/// What one process claimed: the frames it was the first to claim, those mapped only once and
/// the others with their kpagecount; the head frames (and orders) of its huge pages; and
/// its base pages at frames aligned as a huge page's head is (one in 512), which may be a huge
/// page's head mapped by pages.
#[derive(Debug, Default)]
pub struct Claimed {
    once: Vec<u64>,
    read: Vec<u64>,
    counts: Vec<u32>,
    heads: Vec<(u64, u32)>,
    aligned: Vec<u64>,
}

impl FrameClaims {
    /// Claims the frames of `pages` and counts the ones this call claimed first.
    pub fn claim(&self, pages: &PagesRaw) -> Result<Claimed, Unreadable> {
        use std::sync::atomic::Ordering;
        let mut once = Vec::new();
        let mut read = Vec::new();
        let (mut heads, mut aligned) = (Vec::new(), Vec::new());
        let huge_pages = (pmd_size() / page_size()).max(1);
        // Entries in a row whose frames share a bitmap word (a buffer faulted in page by page
        // gets mostly ascending frames: ~7 entries a word) are claimed with one atomic OR: two
        // cores claiming a parent's and a worker's frames at once walk the same words, and a
        // locked OR per frame had them pass each word's cache line back and forth 64 times.
        let entries = &pages.entries();
        let mut i = 0;
        while i < entries.len() {
            let Some(pfn) = entries[i].pfn().filter(|&pfn| pfn < self.max_pfn) else {
                // Swapped, or above RAM: not memory (see sample_exact).
                if let Some(pfn) = entries[i].pfn() {
                    note_huge(&entries[i], pfn, huge_pages, &mut heads, &mut aligned);
                }
                i += 1;
                continue;
            };
            let at = pfn / 64;
            let mut mask = 0u64;
            let mut j = i;
            let same_word = |p: &u64| p / 64 == at && *p < self.max_pfn;
            while let Some(pfn) = entries.get(j).and_then(|e| e.pfn()).filter(same_word) {
                note_huge(&entries[j], pfn, huge_pages, &mut heads, &mut aligned);
                mask |= 1 << (pfn % 64);
                j += 1;
            }
            let word = &self.bits[at as usize];
            // A plain load first: most frames of a tree are claimed already (its workers map
            // their parent's), and a locked OR costs many times more.
            let mut new = mask & !word.load(Ordering::Relaxed);
            if new != 0 {
                new &= !word.fetch_or(new, Ordering::Relaxed);
            }
            for entry in &entries[i..j] {
                let pfn = entry.raw & bits::PFN_MASK;
                let bit = 1u64 << (pfn % 64);
                if new & bit == 0 {
                    continue; // claimed before, or twice in this run
                }
                new &= !bit;
                if entry.order() == 0 && entry.raw & bits::EXCLUSIVE != 0 {
                    once.push(pfn);
                } else {
                    read.push(pfn);
                }
            }
            i = j;
        }
        read.sort_unstable();
        let mut counts = vec![0u32; read.len()];
        read_runs(&self.kpagecount, &read, |i, v| counts[i] = u32::try_from(v).unwrap_or(u32::MAX))
            .map_err(|e| kpage_error("kpagecount", e))?;
        Ok(Claimed { once, read, counts, heads, aligned })
    }

    /// Whether the claims still make the frame table: not when a huge page must be split, one
    /// whose frames another mapping maps page by page (a base page inside its range, or at its
    /// head), since then each of its base pages needs its own count (see
    /// `split_huge_mapped_by_pages`). Checked in the bitmap: a huge page claims only its head.
    pub fn hold(&self, claims: &[&Claimed]) -> bool {
        use std::sync::atomic::Ordering;
        let mut heads: Vec<(u64, u32)> =
            claims.iter().flat_map(|c| c.heads.iter().copied()).collect();
        if heads.is_empty() {
            return true;
        }
        // A huge page is mapped whole by many processes: each head is looked at once.
        heads.sort_unstable();
        heads.dedup();
        let aligned: HashSet<u64> = claims.iter().flat_map(|c| c.aligned.iter().copied()).collect();
        let word = |at: u64| self.bits.get(at as usize).map_or(0, |w| w.load(Ordering::Relaxed));
        // Any frame of (head, head + 2^order) claimed: a base page of another mapping there.
        let inside = |head: u64, order: u32| {
            let end = head + (1u64 << order);
            (head / 64..end.div_ceil(64)).any(|at| {
                let (low, high) = (at * 64, at * 64 + 64);
                let (from, to) = ((head + 1).max(low) - low, end.min(high) - low);
                if from >= to {
                    return false; // the head is the last frame of its word
                }
                let ones = to - from;
                let mask = if ones == 64 { u64::MAX } else { ((1u64 << ones) - 1) << from };
                word(at) & mask != 0
            })
        };
        !heads.iter().any(|&(head, order)| aligned.contains(&head) || inside(head, order))
    }

    /// The frame table of the pass, from every process's claims.
    pub fn into_table(self, claims: &[Claimed]) -> PfnTable {
        let present = self.bits.into_iter().map(|w| w.into_inner()).collect();
        let mut table = PfnTable::new(present);
        let lists: Vec<(&[u64], Option<&[u32]>)> = claims
            .iter()
            .flat_map(|c| [(&c.once[..], None), (&c.read[..], Some(&c.counts[..]))])
            .collect();
        table.set_mapcounts(&lists);
        table
    }
}

/// Notes a huge page's head (with its order), or a base page at a frame aligned as a huge
/// page's head is, for [`FrameClaims::hold`].
fn note_huge(
    entry: &PageEntry,
    pfn: u64,
    huge_pages: u64,
    heads: &mut Vec<(u64, u32)>,
    aligned: &mut Vec<u64>,
) {
    if entry.order() > 0 {
        heads.push((pfn, entry.order()));
    } else if pfn.is_multiple_of(huge_pages) {
        aligned.push(pfn);
    }
}

/// Why `/proc/{what}` could not be read.
fn kpage_error(what: &str, e: io::Error) -> Unreadable {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            Unreadable::PermissionDenied(format!("/proc/{what} needs CAP_SYS_ADMIN (run as root)"))
        }
        _ => Unreadable::Failed(format!("/proc/{what}: {e}")),
    }
}

/// Frames per piece when a kpage file is read on several cores.
const PIECE_FRAMES: usize = 8 * 1024;

/// Reads the 64-bit values of `pfns` (sorted) from a kpage file into `table[i]` for `pfns[i]`,
/// converted by `convert`: split in halves read on the available cores, each half one `pread`
/// per run of nearby frames.
fn read_table<T: Send>(
    file: &File,
    pfns: &[u64],
    table: &mut [T],
    convert: &(impl Fn(u64) -> T + Sync),
) -> io::Result<()> {
    if pfns.len() > PIECE_FRAMES {
        let mid = pfns.len() / 2;
        let (low, high) = table.split_at_mut(mid);
        let (a, b) = rayon::join(
            || read_table(file, &pfns[..mid], low, convert),
            || read_table(file, &pfns[mid..], high, convert),
        );
        return a.and(b);
    }
    read_runs(file, pfns, |index, value| table[index] = convert(value))
}

/// Reads the 64-bit values of `pfns` (sorted) from a kpage file, one pread per run of nearby
/// frames, and hands each to `store` with its index in `pfns`.
fn read_runs(file: &File, pfns: &[u64], mut store: impl FnMut(usize, u64)) -> io::Result<()> {
    with_read_buffer(|buf| read_runs_with(file, pfns, buf, &mut store))
}

/// Runs `f` with this thread's read buffer (pagemap and kpage reads), kept between calls: a
/// fresh one per process would be faulted in page by page every time (~2 µs a page here).
fn with_read_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let result = f(&mut buf);
    BUF.with(|b| *b.borrow_mut() = buf);
    result
}

fn read_runs_with(
    file: &File,
    pfns: &[u64],
    buf: &mut Vec<u8>,
    store: &mut impl FnMut(usize, u64),
) -> io::Result<()> {
    let mut i = 0;
    while i < pfns.len() {
        let first = pfns[i];
        let mut last = first;
        let mut j = i + 1;
        while j < pfns.len() && pfns[j] - last <= RUN_GAP && pfns[j] - first < CHUNK_ENTRIES as u64
        {
            last = pfns[j];
            j += 1;
        }
        let len = (last - first + 1) as usize;
        buf.resize(len * 8, 0);
        let got = read_full(file, buf, first * 8)?;
        for (index, &pfn) in pfns.iter().enumerate().take(j).skip(i) {
            let at = ((pfn - first) * 8) as usize;
            if at + 8 <= got {
                store(index, u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes")));
            }
        }
        i = j;
    }
    Ok(())
}

fn compact_flags(raw: u64) -> u8 {
    let mut f = pf::READ;
    for (bit, flag) in [
        (kpf::ZERO_PAGE, pf::ZERO_PAGE),
        (kpf::THP, pf::THP),
        (kpf::KSM, pf::KSM),
        (kpf::ANON, pf::ANON),
        (kpf::HUGE, pf::HUGETLB),
        (kpf::SWAPBACKED, pf::SWAPBACKED),
    ] {
        if raw & bit != 0 {
            f |= flag;
        }
    }
    f
}

/// What to read of `mappings`: every mapping, or the present spans (PAGEMAP_SCAN's, if it ran)
/// clipped to the mappings.
fn wanted_spans(mappings: &[MappingSpan], present: Option<&[Span]>) -> Vec<Span> {
    let mut wanted: Vec<Span> = Vec::with_capacity(mappings.len());
    match present {
        None => {
            wanted.extend(mappings.iter().map(|m| Span { start: m.start, end: m.end, huge: false }))
        }
        Some(spans) => {
            let mut cursor = 0;
            for mapping in mappings {
                while cursor < spans.len() && spans[cursor].end <= mapping.start {
                    cursor += 1;
                }
                let mut k = cursor;
                while k < spans.len() && spans[k].start < mapping.end {
                    let span = spans[k];
                    let (start, end) = (span.start.max(mapping.start), span.end.min(mapping.end));
                    wanted.push(Span { start, end, huge: span.huge });
                    k += 1;
                }
            }
        }
    }
    wanted
}

/// Reads the present or swapped entries of the `wanted` spans into `pages`, in address order.
/// Spans closer than [`MERGE_GAP`] are read in one `pread` (a library's four segments are
/// adjacent): what lies between them is unmapped, and pagemap reports nothing there.
fn read_spans(
    file: &File,
    wanted: &[Span],
    page_size: u64,
    order: u32,
    buf: &mut [u8],
    pages: &mut PagesRaw,
) -> io::Result<()> {
    let mut i = 0;
    while i < wanted.len() {
        let span = wanted[i];
        if span.huge {
            read_huge(file, span.start, span.end, page_size, order, buf, pages)?;
            i += 1;
            continue;
        }
        let mut end = span.end;
        let mut j = i + 1;
        while j < wanted.len() && !wanted[j].huge && wanted[j].start <= end + MERGE_GAP {
            end = end.max(wanted[j].end);
            j += 1;
        }
        read_span(file, span.start, end, page_size, buf, pages)?;
        i = j;
    }
    Ok(())
}

/// Reads the pagemap entries of `[start, end)` and keeps the present or swapped ones.
fn read_span(
    file: &File,
    start: u64,
    end: u64,
    page_size: u64,
    buf: &mut [u8],
    out: &mut PagesRaw,
) -> io::Result<()> {
    let mut vpn = start / page_size;
    let last = end.div_ceil(page_size);
    while vpn < last {
        let count = ((last - vpn) as usize).min(buf.len() / 8);
        let got = read_full(file, &mut buf[..count * 8], vpn * 8)?;
        for (k, entry) in buf[..got - got % 8].chunks_exact(8).enumerate() {
            let raw = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
            if raw & (bits::PRESENT | bits::SWAPPED) != 0 {
                out.push((vpn + k as u64) * page_size, PageEntry::new(raw), page_size);
            }
        }
        if got < count * 8 {
            break; // end of what the kernel will show
        }
        vpn += count as u64;
    }
    Ok(())
}

/// Reads the huge pages of `[start, end)`, a range PAGEMAP_SCAN found PMD-mapped: one entry per
/// huge page, the pagemap entry of its first base page (whose PFN is the head frame). A part
/// that is not whole, aligned huge pages, or whose first entry is not an aligned head, is read
/// page by page.
fn read_huge(
    file: &File,
    start: u64,
    end: u64,
    page_size: u64,
    order: u32,
    buf: &mut [u8],
    out: &mut PagesRaw,
) -> io::Result<()> {
    let huge = page_size << order;
    let mut at = start;
    while at < end {
        let aligned = at.next_multiple_of(huge);
        if aligned != at || at + huge > end {
            let until = if aligned > at { aligned.min(end) } else { end };
            read_span(file, at, until, page_size, buf, out)?;
            at = until;
            continue;
        }
        let mut entry = [0u8; 8];
        let got = read_full(file, &mut entry, at / page_size * 8)?;
        let raw = u64::from_le_bytes(entry);
        let pfn = raw & bits::PFN_MASK;
        if got == 8 && raw & bits::PRESENT != 0 && pfn != 0 && pfn.is_multiple_of(1 << order) {
            out.push(at, PageEntry::huge(raw, order), page_size);
        } else {
            read_span(file, at, at + huge, page_size, buf, out)?;
        }
        at += huge;
    }
    Ok(())
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The room kept for a process's entries counts a huge page as one entry: a THP-backed
    /// buffer is not given (and faulted in) 512 times the room it takes.
    #[test]
    fn a_huge_page_takes_the_room_of_one_entry() {
        let (page, huge) = (4096, pmd_size());
        let hint = |rss, huge_bytes| PagesHint { resident: Some(rss), huge_bytes };
        assert_eq!(hint(256 << 20, Some(0)).entries(page), Some(65536));
        assert_eq!(hint(256 << 20, None).entries(page), Some(65536));
        let thp = hint((1 << 20) + 100 * huge, Some(100 * huge));
        assert_eq!(thp.entries(page), Some(256 + 100));
        assert_eq!(thp.huge(), Some(true));
        assert_eq!(hint(1 << 20, Some(0)).huge(), Some(false));
        assert_eq!(PagesHint { resident: None, huge_bytes: None }.entries(page), None);
    }
}
