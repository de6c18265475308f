//! Model layer: the raw samples the sampler hands over — every type the sampler produces is
//! declared here, and nothing else. Pure data, no I/O.
//!
//! Types are named after their source: [`SmapsFields`] are the key/value lines of
//! `/proc/PID/smaps` and `/proc/PID/smaps_rollup`, [`MappingRaw`] one smaps entry, [`PagesRaw`]
//! the pagemap entries of one process, [`PfnTable`] the kpagecount/kpageflags of the frames a
//! snapshot maps, [`ContentRaw`] the chunk hashes of page contents. Derived meanings live in
//! [`super::figures`] and [`super::accounting`].

use std::fmt;
use std::ops::Range;

/// The memory fields of one `smaps` entry or of `smaps_rollup`, in bytes.
///
/// Every field is an `Option`: a key the running kernel does not print (older kernels lack
/// `Pss_Dirty`, `Pss_Anon`/`Pss_File`/`Pss_Shmem` and `KSM`) stays `None` and is reported as
/// absent, never as 0. See <https://docs.kernel.org/filesystems/proc.html>.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmapsFields {
    pub size: Option<u64>,
    pub rss: Option<u64>,
    pub pss: Option<u64>,
    pub pss_dirty: Option<u64>,
    pub pss_anon: Option<u64>,
    pub pss_file: Option<u64>,
    pub pss_shmem: Option<u64>,
    pub shared_clean: Option<u64>,
    pub shared_dirty: Option<u64>,
    pub private_clean: Option<u64>,
    pub private_dirty: Option<u64>,
    pub referenced: Option<u64>,
    pub anonymous: Option<u64>,
    pub ksm: Option<u64>,
    pub lazy_free: Option<u64>,
    pub anon_huge_pages: Option<u64>,
    pub shmem_pmd_mapped: Option<u64>,
    pub file_pmd_mapped: Option<u64>,
    pub shared_hugetlb: Option<u64>,
    pub private_hugetlb: Option<u64>,
    pub swap: Option<u64>,
    pub swap_pss: Option<u64>,
    pub locked: Option<u64>,
}

/// One entry of `/proc/PID/smaps`: the `maps` header line plus its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRaw {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    /// The pathname column as the kernel prints it (`/usr/lib/libc.so.6`, `[heap]`,
    /// `/memfd:x (deleted)`), or empty for an anonymous mapping.
    pub pathname: String,
    pub fields: SmapsFields,
    /// The `VmFlags` mnemonics, kept verbatim (unknown ones included), separated by single
    /// spaces: one allocation a mapping, for processes with tens of thousands.
    pub vm_flags: String,
}

impl MappingRaw {
    /// The name mappings are grouped by across a tree: the pathname, or `[anon]`.
    pub fn name(&self) -> &str {
        if self.pathname.is_empty() { "[anon]" } else { &self.pathname }
    }
}

/// Bits of a `/proc/PID/pagemap` entry (Documentation/admin-guide/mm/pagemap.rst), declared
/// once for the sampler that reads them and the model that interprets them.
pub mod pagemap_bits {
    /// Bits 0–54: the page frame number when present (0 without CAP_SYS_ADMIN), or the swap
    /// type and offset when swapped.
    pub const PFN_MASK: u64 = (1 << 55) - 1;
    /// Bit 56: the page is mapped exactly once (readable without privilege).
    pub const EXCLUSIVE: u64 = 1 << 56;
    /// Bit 61: a file page or shared anonymous memory.
    pub const FILE_OR_SHARED_ANON: u64 = 1 << 61;
    pub const SWAPPED: u64 = 1 << 62;
    pub const PRESENT: u64 = 1 << 63;
    /// Where memtree keeps an entry's order ([`super::PageEntry::order`]): bits 57–60. The
    /// kernel's bit 57 (userfaultfd write-protected, which nothing here reads) is dropped when
    /// an entry is kept, and its bits 58–60 are always zero.
    pub const ORDER_SHIFT: u32 = 57;
    pub const ORDER_MASK: u64 = 0xf << ORDER_SHIFT;
}

/// One pagemap entry that is present or swapped: a base page, or a PMD-mapped transparent huge
/// page read as one entry (the pagemap entry of its first base page, whose PFN is the huge
/// page's head frame). 8 bytes, for the millions a large tree has: the raw entry, with its
/// order in bits 57–60 ([`pagemap_bits::ORDER_MASK`]); its address is kept by its [`PagesRaw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEntry {
    /// The raw 64-bit pagemap entry (and the order, in bits the kernel leaves zero).
    pub raw: u64,
}

impl PageEntry {
    /// A base page, from its raw pagemap entry.
    pub fn new(raw: u64) -> Self {
        PageEntry { raw: raw & !pagemap_bits::ORDER_MASK }
    }

    /// `1 << order` base pages mapped as one huge page (an order above 15 is kept as 15: no
    /// architecture's PMD holds more than 2^13 base pages).
    pub fn huge(raw: u64, order: u32) -> Self {
        let order = u64::from(order.min(15)) << pagemap_bits::ORDER_SHIFT;
        PageEntry { raw: (raw & !pagemap_bits::ORDER_MASK) | order }
    }

    /// log2 of the base pages the entry stands for.
    pub fn order(&self) -> u32 {
        ((self.raw & pagemap_bits::ORDER_MASK) >> pagemap_bits::ORDER_SHIFT) as u32
    }

    /// The bytes the entry stands for.
    pub fn bytes(&self, page_size: u64) -> u64 {
        page_size << self.order()
    }

    pub fn pfn(&self) -> Option<u64> {
        use pagemap_bits::{PFN_MASK, PRESENT};
        (self.raw & PRESENT != 0).then_some(self.raw & PFN_MASK)
    }

    /// The swap entry (type and offset), when the page is swapped out.
    pub fn swap_entry(&self) -> Option<u64> {
        use pagemap_bits::{PFN_MASK, PRESENT, SWAPPED};
        (self.raw & PRESENT == 0 && self.raw & SWAPPED != 0).then_some(self.raw & PFN_MASK)
    }
}

/// One mapping of `/proc/PID/maps`, as the pages need it: where it is and its name (no
/// smaps fields: a whole machine's processes have hundreds of thousands of mappings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpan {
    pub start: u64,
    pub end: u64,
    /// As [`MappingRaw::name`]: the pathname, or `[anon]`.
    pub name: Box<str>,
}

impl MappingSpan {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<MappingRaw> for MappingSpan {
    fn from(raw: MappingRaw) -> Self {
        let name = if raw.pathname.is_empty() { "[anon]".into() } else { raw.pathname.into() };
        MappingSpan { start: raw.start, end: raw.end, name }
    }
}

/// The pages of one process: its mappings (`/proc/PID/maps`), its present or swapped entries in
/// address order, and for each mapping the range of its entries. Built with [`PagesRaw::push`]
/// and [`PagesRaw::finish`].
///
/// The entries' addresses are kept in runs: a run's entries lie one after another from its
/// address, all of one size; a new run starts at a gap or where the size changes. A process's
/// resident memory is a few dozen runs (a 256 MiB buffer one), so 8 bytes an entry instead of 16.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PagesRaw {
    pub mappings: Vec<MappingSpan>,
    entries: Vec<PageEntry>,
    ranges: Vec<Range<u32>>,
    runs: Vec<Run>,
}

/// Entries from `first` on (to the next run's first) lie one after another from `vaddr`, each
/// `1 << shift` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    vaddr: u64,
    first: u32,
    shift: u32,
}

impl PagesRaw {
    /// No entries yet, room for `capacity`.
    pub fn new(mappings: Vec<MappingSpan>, capacity: usize) -> Self {
        PagesRaw {
            mappings,
            entries: crate::resident::with_capacity(capacity),
            ranges: Vec::new(),
            runs: Vec::new(),
        }
    }

    /// `entries` (each with its address, in address order) over `mappings`, finished.
    pub fn from_entries(
        mappings: Vec<MappingSpan>,
        entries: impl IntoIterator<Item = (u64, PageEntry)>,
        page_size: u64,
    ) -> Self {
        let mut pages = PagesRaw::new(mappings, 0);
        for (vaddr, entry) in entries {
            pages.push(vaddr, entry, page_size);
        }
        pages.finish()
    }

    /// Adds `entry`, at `vaddr` (above every entry's so far).
    pub fn push(&mut self, vaddr: u64, entry: PageEntry, page_size: u64) {
        let shift = page_size.trailing_zeros() + entry.order();
        let at = self.entries.len() as u32;
        let continues = self.runs.last().is_some_and(|run| {
            run.shift == shift && run.vaddr + (u64::from(at - run.first) << shift) == vaddr
        });
        if !continues {
            self.runs.push(Run { vaddr, first: at, shift });
        }
        self.entries.push(entry);
    }

    /// Cuts the entries into one range per mapping, once every entry is pushed (entries are in
    /// address order, as the mappings are; one outside every mapping is in no range).
    pub fn finish(mut self) -> Self {
        self.ranges = self
            .mappings
            .iter()
            .map(|m| self.first_from(m.start) as u32..self.first_from(m.end) as u32)
            .collect();
        self
    }

    /// The first entry at or above `addr` (the number of entries below it), or the number of
    /// entries: found from the runs, not by walking the entries.
    fn first_from(&self, addr: u64) -> usize {
        let at = self.runs.partition_point(|r| r.vaddr < addr);
        let Some(run) = at.checked_sub(1).map(|i| self.runs[i]) else { return 0 };
        let next = self.runs.get(at).map_or(self.entries.len(), |r| r.first as usize);
        let below = (addr - run.vaddr).div_ceil(1u64 << run.shift);
        (run.first as usize).saturating_add(usize::try_from(below).unwrap_or(usize::MAX)).min(next)
    }

    pub fn entries(&self) -> &[PageEntry] {
        &self.entries
    }

    /// The range of `entries` of each mapping, in the order of `mappings`.
    pub fn ranges(&self) -> &[Range<u32>] {
        &self.ranges
    }

    /// The address of entry `index`.
    pub fn vaddr(&self, index: usize) -> u64 {
        let run = self.runs[self.runs.partition_point(|r| r.first as usize <= index) - 1];
        run.vaddr + ((index as u64 - u64::from(run.first)) << run.shift)
    }

    /// The first entry that ends above `addr` (the one holding it, or the next), or the number
    /// of entries: found from the runs, not by walking the entries.
    pub fn first_ending_above(&self, addr: u64) -> usize {
        let at = self.runs.partition_point(|r| r.vaddr <= addr);
        let Some(run) = at.checked_sub(1).map(|i| self.runs[i]) else { return 0 };
        let next = self.runs.get(at).map_or(self.entries.len(), |r| r.first as usize);
        (run.first as usize + ((addr - run.vaddr) >> run.shift) as usize).min(next)
    }

    /// Addresses of entries looked up near one another (each in O(1) when the indices mostly
    /// rise, as a walk over the entries does).
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { pages: self, run: 0 }
    }

    /// The entries of `range`, each with its address.
    pub fn addressed(&self, range: Range<u32>) -> Addressed<'_> {
        let run = self.runs.partition_point(|r| r.first <= range.start).saturating_sub(1);
        Addressed { pages: self, at: range.start, end: range.end, run }
    }

    /// Whether any entry is a huge page.
    pub fn has_huge(&self) -> bool {
        self.entries.iter().any(|e| e.order() > 0)
    }

    /// Replaces every huge entry whose head frame `split` says to split by its base pages
    /// (consecutive frames from the head, the same flags): for a huge page that another process
    /// maps page by page, whose base pages then each need their own count.
    pub fn split_huge(&mut self, page_size: u64, split: impl Fn(u64) -> bool) {
        if !self.entries.iter().any(|e| e.order() > 0 && e.pfn().is_some_and(&split)) {
            return;
        }
        let mut pages = PagesRaw::new(std::mem::take(&mut self.mappings), self.entries.len());
        for (vaddr, entry) in self.addressed(0..self.entries.len() as u32) {
            match entry.pfn() {
                Some(head) if entry.order() > 0 && split(head) => {
                    let flags = entry.raw & !pagemap_bits::PFN_MASK;
                    for k in 0..1u64 << entry.order() {
                        pages.push(
                            vaddr + k * page_size,
                            PageEntry::new(flags | (head + k)),
                            page_size,
                        );
                    }
                }
                _ => pages.push(vaddr, *entry, page_size),
            }
        }
        *self = pages.finish();
    }
}

/// Addresses of a [`PagesRaw`]'s entries ([`PagesRaw::cursor`]).
pub struct Cursor<'a> {
    pages: &'a PagesRaw,
    run: usize,
}

impl Cursor<'_> {
    /// The address of entry `index`.
    pub fn vaddr(&mut self, index: usize) -> u64 {
        let runs = &self.pages.runs;
        if runs.get(self.run).is_none_or(|r| r.first as usize > index) {
            self.run = runs.partition_point(|r| r.first as usize <= index).saturating_sub(1);
        }
        while runs.get(self.run + 1).is_some_and(|r| r.first as usize <= index) {
            self.run += 1;
        }
        let run = runs[self.run];
        run.vaddr + ((index as u64 - u64::from(run.first)) << run.shift)
    }
}

/// The entries of a range of a [`PagesRaw`] with their addresses ([`PagesRaw::addressed`]).
pub struct Addressed<'a> {
    pages: &'a PagesRaw,
    at: u32,
    end: u32,
    run: usize,
}

impl<'a> Iterator for Addressed<'a> {
    type Item = (u64, &'a PageEntry);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let runs = &self.pages.runs;
        while runs.get(self.run + 1).is_some_and(|r| r.first <= self.at) {
            self.run += 1;
        }
        let run = runs[self.run];
        let vaddr = run.vaddr + (u64::from(self.at - run.first) << run.shift);
        let entry = &self.pages.entries[self.at as usize];
        self.at += 1;
        Some((vaddr, entry))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.at) as usize;
        (left, Some(left))
    }
}

/// Compact kpageflags, one byte per frame (the sampler maps the kernel's 64 bits to these).
pub mod page_flags {
    /// The frame's kpageflags were read.
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

/// `/proc/kpagecount` (and `/proc/kpageflags` with `--dedup`) for the distinct frames of a
/// snapshot.
///
/// The frames are a bitmap over every frame of the machine (one bit per 4 KiB of RAM) with a
/// running count of set bits per 64 frames, so a frame's dense index — its rank among the
/// snapshot's frames — is two loads and a popcount. Every per-frame table (here and in
/// [`super::exact::Workspace`]) is indexed densely: a 2 GiB tree's tables are a few hundred
/// KiB that stay in cache, where PFN-indexed tables would be tens of MB, touched at random and
/// faulted in page by page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PfnTable {
    /// Bit `pfn` set for every frame of the snapshot.
    present: Vec<u64>,
    /// Frames below each 64-frame word of `present`.
    rank: Vec<u32>,
    /// How many times each frame is mapped, machine-wide (0: not counted memory: the zero page,
    /// a `VM_PFNMAP` frame, or one freed since the page walk), by dense index.
    pub mapcount: Vec<u32>,
    /// Compact kpageflags ([`page_flags`]) by dense index; empty when they were not read (only
    /// `--dedup` needs them).
    pub flags: Vec<u8>,
}

impl PfnTable {
    /// A table for the frames set in `present`, with zero counts and no flags.
    pub fn new(present: Vec<u64>) -> Self {
        use rayon::prelude::*;
        // In pieces on the available cores (a machine of 24 GiB is 100,000 words): each
        // piece's frames first, then each piece's ranks from the frames below it.
        const PIECE: usize = 16 * 1024;
        let frames: Vec<u32> = present
            .par_chunks(PIECE)
            .map(|piece| piece.iter().map(|w| w.count_ones()).sum())
            .collect();
        let mut rank = crate::resident::filled(present.len(), 0u32);
        let total = rank
            .par_chunks_mut(PIECE)
            .zip(present.par_chunks(PIECE))
            .zip(frames.par_iter())
            .enumerate()
            .map(|(k, ((rank, piece), &in_piece))| {
                let mut below: u32 = frames[..k].iter().sum();
                for (r, word) in rank.iter_mut().zip(piece) {
                    *r = below;
                    below += word.count_ones();
                }
                in_piece
            })
            .sum::<u32>();
        let mapcount = crate::resident::filled(total as usize, 0);
        PfnTable { present, rank, mapcount, flags: Vec::new() }
    }

    /// Sets the machine-wide count of each frame of `lists` — `(frames, counts)`, a count of 1
    /// each where `counts` is `None` — in parts by frame number, one per core: each part
    /// writes the counts of its own frames.
    pub fn set_mapcounts(&mut self, lists: &[(&[u64], Option<&[u32]>)]) {
        use rayon::prelude::*;
        let parts = rayon::current_num_threads().clamp(1, 8);
        let len = self.len();
        // `(first frame, first index)` of each part: cut where a word's rank passes an even
        // share of the frames.
        let mut cuts: Vec<(u64, usize)> = vec![(0, 0)];
        for k in 1..parts {
            let word = self.rank.partition_point(|&r| (r as usize) < len * k / parts);
            let index = self.rank.get(word).map_or(len, |&r| r as usize);
            cuts.push((word as u64 * 64, index));
        }
        cuts.push((u64::MAX, len));
        let mut slices = Vec::with_capacity(parts);
        let mut rest = self.mapcount.as_mut_slice();
        for pair in cuts.windows(2) {
            let (slice, after) = rest.split_at_mut(pair[1].1 - pair[0].1);
            slices.push((pair[0], pair[1].0, slice));
            rest = after;
        }
        let (present, rank) = (&self.present, &self.rank);
        slices.into_par_iter().for_each(|((low_pfn, low_index), high_pfn, mapcount)| {
            for &(frames, counts) in lists {
                let counted =
                    frames.iter().enumerate().map(|(i, &pfn)| (pfn, counts.map_or(1, |c| c[i])));
                for (pfn, count) in counted.filter(|&(pfn, _)| pfn >= low_pfn && pfn < high_pfn) {
                    if let Some(index) = dense_index(present, rank, pfn) {
                        mapcount[index - low_index] = count;
                    }
                }
            }
        });
    }

    /// The frames, ascending.
    pub fn pfns(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.mapcount.len());
        for (index, &word) in self.present.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                out.push(index as u64 * 64 + u64::from(bits.trailing_zeros()));
                bits &= bits - 1;
            }
        }
        out
    }

    /// The number of frames.
    pub fn len(&self) -> usize {
        self.mapcount.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mapcount.is_empty()
    }

    /// The dense index of `pfn` where `last` was the previous lookup's `(pfn, index)`: the next
    /// frame of the same 64-frame word is the next index, with no count of the bits below it
    /// (consecutive pages are mostly consecutive frames).
    #[inline]
    pub fn index_after(&self, pfn: u64, last: &mut Option<(u64, usize)>) -> Option<usize> {
        if let Some((prev, prev_index)) = *last
            && pfn == prev.wrapping_add(1)
            && !pfn.is_multiple_of(64)
            && self.present[(pfn / 64) as usize] & (1u64 << (pfn % 64)) != 0
        {
            *last = Some((pfn, prev_index + 1));
            return Some(prev_index + 1);
        }
        let index = self.index(pfn);
        *last = index.map(|i| (pfn, i));
        index
    }

    /// The dense index of `pfn`, if it is one of the table's frames.
    #[inline]
    pub fn index(&self, pfn: u64) -> Option<usize> {
        dense_index(&self.present, &self.rank, pfn)
    }
}

/// The dense index of `pfn` in a table's `present` bitmap and its `rank`s.
#[inline]
fn dense_index(present: &[u64], rank: &[u32], pfn: u64) -> Option<usize> {
    let word = *present.get(usize::try_from(pfn / 64).ok()?)?;
    let bit = 1u64 << (pfn % 64);
    (word & bit != 0)
        .then(|| rank[(pfn / 64) as usize] as usize + (word & (bit - 1)).count_ones() as usize)
}

/// One content-defined chunk of page contents: the xxh3 of its bytes and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    pub hash: u64,
    pub len: u32,
}

/// What the content scan of one process found: its chunks (in address order, each tagged with
/// the index of its mapping), the zero-filled pages per mapping, and what could not be read.
/// Only hashes and lengths, never content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentRaw {
    pub chunks: Vec<(Chunk, u32)>,
    /// `(mapping index, bytes)` of pages that are all zeros.
    pub zero_filled: Vec<(u32, u64)>,
    /// Bytes hashed (zero-filled pages included).
    pub scanned: u64,
    /// Bytes that vanished between the page walk and the read.
    pub unread: u64,
    /// Read without physical frames (no root): only the pages this process alone maps, and
    /// the names of its mappings, for the chunks' mapping indexes.
    pub exclusive_only: Option<Vec<String>>,
}

/// Why a figure could not be read. A process with a reason has no figures, never zeros.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Unreadable {
    /// The process exited (ENOENT/ESRCH) or is a zombie whose address space is gone.
    Vanished(String),
    /// The kernel refused the read (another user's process, or the file needs a capability).
    PermissionDenied(String),
    /// A kernel thread: it has no user address space, so it has no memory figures.
    NoAddressSpace,
    /// Anything else (an I/O error or a file memtree could not parse); a bug to report.
    Failed(String),
    /// The figure has no meaning for this process (a tree's root has no parent in the tree to
    /// have copied from): said why, never a 0.
    NotApplicable(String),
}

impl Unreadable {
    /// A short stable slug, the first word of the reason: for grouping and counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Unreadable::Vanished(_) => "vanished",
            Unreadable::PermissionDenied(_) => "permission denied",
            Unreadable::NoAddressSpace => "no address space",
            Unreadable::Failed(_) => "failed",
            Unreadable::NotApplicable(_) => "not applicable",
        }
    }
}

impl Unreadable {
    /// The same reason, of the same kind, said of `whom` (`its parent 42`): a figure that
    /// needs another process's pages fails as that process's read did.
    pub fn about(&self, whom: &str) -> Unreadable {
        let of = |detail: &str| format!("{whom}: {detail}");
        match self {
            Unreadable::Vanished(d) => Unreadable::Vanished(of(d)),
            Unreadable::PermissionDenied(d) => Unreadable::PermissionDenied(of(d)),
            Unreadable::NoAddressSpace => Unreadable::NoAddressSpace,
            Unreadable::Failed(d) => Unreadable::Failed(of(d)),
            Unreadable::NotApplicable(d) => Unreadable::NotApplicable(of(d)),
        }
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unreadable::Vanished(detail) => write!(f, "vanished: {detail}"),
            Unreadable::PermissionDenied(detail) => write!(f, "permission denied: {detail}"),
            Unreadable::NoAddressSpace => {
                write!(f, "no address space: kernel thread, it has no user memory")
            }
            Unreadable::Failed(detail) => write!(f, "failed: {detail}"),
            Unreadable::NotApplicable(detail) => write!(f, "not applicable: {detail}"),
        }
    }
}

/// Everything read about one process at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSample {
    pub pid: u32,
    pub ppid: u32,
    /// `comm` from `/proc/PID/stat` (at most 15 bytes, as the kernel keeps it).
    pub name: String,
    /// Real uid from `/proc/PID/status`, when readable.
    pub uid: Option<u32>,
    /// `/proc/PID/cmdline` split at NULs; `None` when unreadable, empty for kernel threads.
    pub cmdline: Option<Vec<String>>,
    pub rollup: Result<SmapsFields, Unreadable>,
    /// Per-mapping `smaps`, only when asked for (`--mappings`).
    pub mappings: Option<Result<Vec<MappingRaw>, Unreadable>>,
    /// Present and swapped pages from `pagemap`, only when asked for (`--exact`).
    pub pages: Option<Result<PagesRaw, Unreadable>>,
    /// Without root, when `pages` were refused: the pagemap entries with their flags but no
    /// frames (present, swapped, exclusively mapped, file): what the erosion estimate reads.
    pub unframed: Option<Result<PagesRaw, Unreadable>>,
    /// Content-defined chunk hashes of the pages this process was the first to map, only when
    /// asked for (`--dedup`).
    pub content: Option<Result<ContentRaw, Unreadable>>,
}

impl ProcessSample {
    /// A copy of the cheap part (identity and rollup), without mappings, pages or contents.
    pub fn clone_identity(&self) -> ProcessSample {
        ProcessSample {
            pid: self.pid,
            ppid: self.ppid,
            name: self.name.clone(),
            uid: self.uid,
            cmdline: self.cmdline.clone(),
            rollup: self.rollup.clone(),
            mappings: None,
            pages: None,
            unframed: None,
            content: None,
        }
    }
}

/// One pass of the sampler over a set of processes.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Seconds since the Unix epoch when the pass started.
    pub taken_at_unix: f64,
    /// The reader holds CAP_SYS_ADMIN/CAP_SYS_PTRACE-level privilege (see `sampler::Sampler`).
    pub privileged: bool,
    pub processes: Vec<ProcessSample>,
    /// kpagecount/kpageflags of the frames the processes map, only with `--exact`.
    pub pfn_table: Option<Result<PfnTable, Unreadable>>,
    /// The base page size pagemap entries describe.
    pub page_size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagemap_bits::{EXCLUSIVE, PRESENT};

    const PAGE: u64 = 4096;

    /// A table of several pieces (more words than one piece of [`PfnTable::new`]) gives every
    /// frame the index of its place among all of them, and counts set in parts land on their
    /// own frames, whichever part's range a frame falls in.
    #[test]
    fn a_table_of_many_pieces_indexes_and_counts_every_frame() {
        let words = 40_000usize;
        let mut present = vec![0u64; words];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut pfns = Vec::new();
        for (w, word) in present.iter_mut().enumerate() {
            // Dense at the start, sparse later, some words empty: the cuts fall unevenly.
            let bits = if w < 5_000 {
                next()
            } else if w % 3 == 0 {
                next() & next()
            } else {
                0
            };
            *word = bits;
            for b in 0..64 {
                if bits & (1 << b) != 0 {
                    pfns.push(w as u64 * 64 + b);
                }
            }
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut table = pool.install(|| PfnTable::new(present));
        assert_eq!(table.len(), pfns.len());
        assert_eq!(table.pfns(), pfns);
        for (i, &pfn) in pfns.iter().enumerate() {
            assert_eq!(table.index(pfn), Some(i), "frame {pfn}");
        }
        assert_eq!(table.index(5), pfns.binary_search(&5).ok());
        // Every third frame counted once, the others with a count from a second list; a
        // frame not in the table is passed over.
        let once: Vec<u64> = pfns.iter().copied().step_by(3).collect();
        let read: Vec<u64> =
            pfns.iter().copied().enumerate().filter(|(i, _)| i % 3 != 0).map(|(_, p)| p).collect();
        let counts: Vec<u32> = read.iter().map(|&p| (p % 1000) as u32 + 2).collect();
        let absent = [words as u64 * 64 + 1, 5_001 * 64 + 3];
        pool.install(|| {
            table.set_mapcounts(&[(&once, None), (&read, Some(&counts)), (&absent, None)])
        });
        for (i, &pfn) in pfns.iter().enumerate() {
            let want = if i % 3 == 0 { 1 } else { (pfn % 1000) as u32 + 2 };
            assert_eq!(table.mapcount[i], want, "frame {pfn}");
        }
    }

    /// Entries at scattered addresses, base pages and huge ones, as the runs must give them
    /// back: every address by index, by a cursor walking both ways, by the iterator from any
    /// start, and the entry holding (or following) any address.
    #[test]
    fn runs_give_back_every_address() {
        let mut at = Vec::new();
        let mut v = 0x10_0000u64;
        for k in 0..300u64 {
            let huge = k % 50 == 7;
            if huge {
                v = v.next_multiple_of(PAGE << 9);
            }
            let entry = if huge {
                PageEntry::huge(PRESENT | (k << 9), 9)
            } else {
                PageEntry::new(PRESENT | EXCLUSIVE | k)
            };
            at.push((v, entry));
            v += entry.bytes(PAGE);
            if k % 13 == 0 {
                v += (k % 5 + 1) * PAGE; // a gap
            }
        }
        let end = v + PAGE;
        let mapping = MappingSpan { start: 0x10_0000, end, name: "[anon]".into() };
        let pages = PagesRaw::from_entries(vec![mapping], at.clone(), PAGE);
        assert!(pages.runs.len() > 20 && pages.runs.len() < at.len(), "{}", pages.runs.len());
        assert_eq!(pages.ranges(), std::slice::from_ref(&(0..300)));
        let mut cursor = pages.cursor();
        for (i, (vaddr, entry)) in at.iter().enumerate() {
            assert_eq!(pages.vaddr(i), *vaddr, "entry {i}");
            assert_eq!(cursor.vaddr(i), *vaddr, "entry {i} walking up");
            assert_eq!(pages.entries()[i], *entry);
            assert_eq!(pages.entries()[i].order(), if i % 50 == 7 { 9 } else { 0 });
        }
        for i in (0..at.len()).rev() {
            assert_eq!(cursor.vaddr(i), at[i].0, "entry {i} walking down");
        }
        for start in [0u32, 1, 7, 8, 150, 299] {
            let got: Vec<(u64, PageEntry)> =
                pages.addressed(start..300).map(|(v, e)| (v, *e)).collect();
            assert_eq!(got, at[start as usize..]);
        }
        let naive =
            |addr: u64| at.iter().position(|(v, e)| v + e.bytes(PAGE) > addr).unwrap_or(at.len());
        let below = |addr: u64| at.iter().filter(|(v, _)| *v < addr).count();
        for addr in (0x0f_0000..end + PAGE).step_by(PAGE as usize / 2) {
            assert_eq!(pages.first_ending_above(addr), naive(addr), "at {addr:#x}");
            assert_eq!(pages.first_from(addr), below(addr), "from {addr:#x}");
        }
        // Mappings cut anywhere (in gaps, inside runs, with entries before the first and
        // between two), each with the entries inside it.
        let spans = [(at[5].0, at[60].0), (at[60].0 + PAGE, at[200].0 - PAGE), (at[250].0, end)];
        let mappings: Vec<MappingSpan> = spans
            .iter()
            .map(|&(start, end)| MappingSpan { start, end, name: "[anon]".into() })
            .collect();
        let want: Vec<Range<u32>> =
            mappings.iter().map(|m| below(m.start) as u32..below(m.end) as u32).collect();
        assert!(want.iter().all(|r| !r.is_empty()) && want[0].start > 0, "{want:?}");
        let pages = PagesRaw::from_entries(mappings, at.clone(), PAGE);
        assert_eq!(pages.ranges(), want);
    }

    #[test]
    fn an_entry_keeps_its_order_apart_from_the_kernel_bits() {
        // Bit 57 (userfaultfd write-protected) is the kernel's; it is not taken for an order.
        let raw = PRESENT | EXCLUSIVE | (1 << 57) | 0x1234;
        let base = PageEntry::new(raw);
        assert_eq!((base.order(), base.pfn(), base.bytes(PAGE)), (0, Some(0x1234), PAGE));
        let huge = PageEntry::huge(raw, 9);
        assert_eq!((huge.order(), huge.pfn(), huge.bytes(PAGE)), (9, Some(0x1234), PAGE << 9));
        assert_eq!(huge.raw & EXCLUSIVE, EXCLUSIVE);
        assert_eq!(std::mem::size_of::<PageEntry>(), 8);
    }
}
