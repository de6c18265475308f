//! Sampler layer: page contents, for `--dedup`. Every distinct anonymous or shared-memory frame
//! the tree maps is read once, through the first process (in tree order) that maps it, from
//! `/proc/PID/mem` (see [`RegionReader`] for why not `process_vm_readv`), and turned into
//! content-defined chunk hashes on the spot ([`crate::model::dedup::chunks`]). Only hashes and
//! lengths are kept: the bytes live in one reused buffer per reading thread (a read window plus
//! the unfinished chunk carried over from the window before) and are never stored or written.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use rayon::prelude::*;

use super::Sampler;
use super::session::Progress;
use crate::model::dedup::{self, MAX_CHUNK};
use crate::model::snapshot::{
    ContentRaw, PagesRaw, PfnTable, Snapshot, Unreadable, page_flags, pagemap_bits,
};

/// Bytes read from `/proc/PID/mem` at a time: small enough that they are still in the core's
/// cache when they are hashed.
pub const WINDOW_BYTES: usize = 256 << 10;
/// Scans larger than this report their progress.
const PROGRESS_ABOVE: u64 = 256 << 20;

/// A virtual range of one process to read: `(address, length, mapping index)`.
pub type Region = (u64, u64, u32);

/// Splits the tree's distinct anonymous/shmem frames into contiguous virtual regions, each
/// frame in the first process (in snapshot order) that maps it.
pub fn plan(snapshot: &Snapshot, table: &PfnTable) -> Vec<Vec<Region>> {
    let page = snapshot.page_size;
    let mut visited = vec![0u64; table.len().div_ceil(64)];
    let mut plans = Vec::with_capacity(snapshot.processes.len());
    for process in &snapshot.processes {
        let mut regions: Vec<Region> = Vec::new();
        if let Some(Ok(pages)) = &process.pages {
            plan_process(pages, table, page, &mut visited, &mut regions);
        }
        plans.push(regions);
    }
    plans
}

fn plan_process(
    pages: &PagesRaw,
    table: &PfnTable,
    page: u64,
    visited: &mut [u64],
    regions: &mut Vec<Region>,
) {
    for (index, range) in pages.ranges().iter().enumerate() {
        for (vaddr, entry) in pages.addressed(range.clone()) {
            let Some(pfn) = entry.pfn() else { continue };
            let Some(frame) = table.index(pfn) else { continue };
            let Some(&f) = table.flags.get(frame) else { continue };
            let content = f & (page_flags::ANON | page_flags::SWAPBACKED) != 0
                && f & page_flags::ZERO_PAGE == 0;
            let (word, bit) = (frame / 64, 1u64 << (frame % 64));
            if !content || visited[word] & bit != 0 {
                continue;
            }
            visited[word] |= bit;
            let bytes = entry.bytes(page);
            match regions.last_mut() {
                Some((start, len, m)) if *m == index as u32 && *start + *len == vaddr => {
                    *len += bytes;
                }
                _ => regions.push((vaddr, bytes, index as u32)),
            }
        }
    }
}

/// Reads one region of a process, window by window, whole pages at a time.
///
/// Reads go through `/proc/PID/mem`, not `process_vm_readv`: the latter pins the pages it
/// reads, and pinning a copy-on-write page that several processes share makes the kernel give
/// the target a private copy (`gup_must_unshare`) — memtree would be copying the very memory it
/// measures. `/proc/PID/mem` takes no pin and leaves the pages shared.
pub struct RegionReader<'a> {
    mem: &'a File,
    start: u64,
    len: u64,
    offset: u64,
    page: usize,
    /// The region stopped being mapped: nothing more is read.
    stopped: bool,
}

impl<'a> RegionReader<'a> {
    pub fn new(mem: &'a File, (start, len, _): Region, page: usize) -> Self {
        RegionReader { mem, start, len, offset: 0, page, stopped: false }
    }

    /// Reads the next whole pages of the region into `dst` (a multiple of the page size);
    /// returns how many bytes it read: 0 at the end of the region, or where it stopped being
    /// mapped since the page walk.
    pub fn read(&mut self, dst: &mut [u8]) -> Result<usize, Unreadable> {
        if self.stopped {
            return Ok(0);
        }
        let want = ((self.len - self.offset) as usize).min(dst.len());
        let at = self.start + self.offset;
        let mut got = 0;
        while got < want {
            match self.mem.read_at(&mut dst[got..want], at + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Unmapped since the page walk: the read stops there.
                Err(e) if e.raw_os_error() == Some(Errno::EIO as i32) => break,
                Err(e) if e.raw_os_error() == Some(Errno::ESRCH as i32) => {
                    return Err(Unreadable::Vanished("exited while its pages were read".into()));
                }
                Err(e) => return Err(Unreadable::Failed(format!("reading /proc/PID/mem: {e}"))),
            }
        }
        // A short read stops at the first page that went away.
        let got = got - got % self.page;
        self.stopped = got < want;
        self.offset += got as u64;
        Ok(got)
    }

    /// Bytes of the region not read: all of it is read once [`Self::read`] has returned 0,
    /// unless part of it was unmapped since the page walk.
    pub fn unread(&self) -> u64 {
        self.len - self.offset
    }
}

/// Opens `/proc/PID/mem` for reading.
pub fn open_mem(sampler: &Sampler, pid: u32) -> Result<File, Unreadable> {
    let path = sampler.root().join(pid.to_string()).join("mem");
    File::open(&path).map_err(|e| match e.raw_os_error() {
        Some(code) if code == Errno::ENOENT as i32 || code == Errno::ESRCH as i32 => {
            Unreadable::Vanished("exited before its pages were read".into())
        }
        Some(code) if code == Errno::EACCES as i32 || code == Errno::EPERM as i32 => {
            Unreadable::PermissionDenied(format!(
                "{} needs ptrace rights over the process (run as root)",
                path.display()
            ))
        }
        _ => Unreadable::Failed(format!("{}: {e}", path.display())),
    })
}

/// Without physical frames: the pages of one process to read, as regions — the pages it
/// alone maps (pagemap's exclusively-mapped bit) that hold anonymous memory (a private page
/// not from a file) or shared memory (a memfd, `/dev/zero`, SysV or POSIX shm mapping); and
/// the anonymous pages it shares, unless its parent has an anonymous page at the same address
/// (`parent`: those addresses). A page shared after a fork sits at the same address in parent
/// and child, so it is read once, in the oldest process that has it: the original of data a
/// forked worker was then sent a copy of is read, and no frame is read twice, so no copy is
/// invented. What is missed: shared memory mapped by several processes, a page shared between
/// siblings whose parent wrote its own copy, and unrelated processes sharing a KSM page
/// (read in each: counted as duplicated, which KSM already undid).
pub fn plan_exclusive(pages: &PagesRaw, page: u64, parent: Option<&HashSet<u64>>) -> Vec<Region> {
    let mut regions: Vec<Region> = Vec::new();
    for (index, (mapping, range)) in pages.mappings.iter().zip(pages.ranges()).enumerate() {
        let shmem = is_shared_memory(mapping.name());
        for (vaddr, entry) in pages.addressed(range.clone()) {
            let raw = entry.raw;
            let present = raw & pagemap_bits::PRESENT != 0;
            let exclusive = raw & pagemap_bits::EXCLUSIVE != 0;
            let anonymous = raw & pagemap_bits::FILE_OR_SHARED_ANON == 0;
            let ours = if exclusive {
                anonymous || shmem
            } else {
                anonymous && parent.is_none_or(|p| !p.contains(&vaddr))
            };
            if !(present && ours) {
                continue;
            }
            let bytes = entry.bytes(page);
            match regions.last_mut() {
                Some((start, len, m)) if *m == index as u32 && *start + *len == vaddr => {
                    *len += bytes;
                }
                _ => regions.push((vaddr, bytes, index as u32)),
            }
        }
    }
    regions
}

/// What to read of one process without frames, and the names of its mappings.
type Planned = (Vec<Region>, Vec<String>);

/// A mapping of shared memory, by its name in /proc/PID/maps.
fn is_shared_memory(name: &str) -> bool {
    ["/memfd:", "/dev/zero", "/SYSV", "/dev/shm/", "/anon_hugepage", "[anon_shmem"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Reads and chunks the regions of one process.
fn scan(
    sampler: &Sampler,
    pid: u32,
    regions: &[Region],
    page: usize,
    done: &AtomicU64,
) -> Result<ContentRaw, Unreadable> {
    let mut raw = ContentRaw::default();
    if regions.is_empty() {
        return Ok(raw);
    }
    let mem = open_mem(sampler, pid)?;
    // The unfinished chunk of the previous window (< MAX_CHUNK), then the window read after it.
    let mut buf = vec![0u8; MAX_CHUNK + WINDOW_BYTES];
    let bytes: u64 = regions.iter().map(|r| r.1).sum();
    raw.chunks.reserve((bytes / dedup::MIN_CHUNK as u64) as usize);
    for &region in regions {
        let mapping = region.2;
        let mut push = |c| raw.chunks.push((c, mapping));
        let mut zero = 0u64;
        let mut carry = 0;
        let mut reader = RegionReader::new(&mem, region, page);
        loop {
            let got = reader.read(&mut buf[carry..carry + WINDOW_BYTES])?;
            if got == 0 {
                break;
            }
            let end = carry + got;
            // Runs of non-zero pages are chunked whole; a zero-filled page ends a run.
            let mut run = 0;
            for at in (carry..end).step_by(page) {
                if buf[at..at + page].iter().all(|&b| b == 0) {
                    dedup::chunks(&buf[run..at], true, &mut push);
                    zero += page as u64;
                    run = at + page;
                }
            }
            let used = dedup::chunks(&buf[run..end], false, &mut push);
            buf.copy_within(run + used..end, 0);
            carry = end - run - used;
            done.fetch_add(got as u64, Ordering::Relaxed);
        }
        dedup::chunks(&buf[..carry], true, &mut push);
        raw.scanned += region.1 - reader.unread();
        raw.unread += reader.unread();
        if zero > 0 {
            raw.zero_filled.push((mapping, zero));
        }
    }
    Ok(raw)
}

impl Sampler {
    /// Hashes the content of every distinct anonymous/shmem frame of the snapshot (needs the
    /// exact pass first). A large scan reports its progress to `progress` every 100 ms.
    pub fn sample_content(
        &self,
        snapshot: &mut Snapshot,
        progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
    ) {
        // Which frames hold anonymous or shared memory is in kpageflags, which a plain exact
        // pass does not read: read them into the same table (the exact figures stay as they
        // are, whatever happens to the flags).
        let mut flags_refused = None;
        if let Some(Ok(table)) = &mut snapshot.pfn_table
            && table.flags.is_empty()
            && !table.is_empty()
        {
            flags_refused = self.read_flags(table).err();
        }
        if let Some(reason) = flags_refused {
            for p in &mut snapshot.processes {
                p.content = Some(Err(reason.clone()));
            }
            return;
        }
        let table = match &snapshot.pfn_table {
            Some(Ok(table)) => table,
            Some(Err(reason)) => {
                let reason = reason.clone();
                for p in &mut snapshot.processes {
                    p.content = Some(Err(reason.clone()));
                }
                return;
            }
            None => return,
        };
        let plans = plan(snapshot, table);
        let total: u64 = plans.iter().flatten().map(|r| r.1).sum();
        let done = AtomicU64::new(0);
        let page = snapshot.page_size as usize;
        let report = progress.filter(|_| total > PROGRESS_ABOVE);
        let results: Vec<Option<Result<ContentRaw, Unreadable>>> = std::thread::scope(|s| {
            if let Some(report) = report {
                s.spawn(|| report_progress(&done, total, report));
            }
            let results = snapshot
                .processes
                .par_iter()
                .zip(&plans)
                .map(|(p, regions)| match &p.pages {
                    Some(Ok(_)) => Some(scan(self, p.pid, regions, page, &done)),
                    Some(Err(reason)) => Some(Err(reason.clone())),
                    None => None,
                })
                .collect();
            done.store(u64::MAX, Ordering::Relaxed);
            results
        });
        for (p, content) in snapshot.processes.iter_mut().zip(results) {
            p.content = content;
        }
    }
}

impl Sampler {
    /// Duplicated content without root, for the processes memtree may read: each process's
    /// exclusively-mapped anonymous and shared-memory pages ([`plan_exclusive`]) read through
    /// `/proc/PID/mem` and chunked as with root. A process memtree may not read gets the reason.
    pub fn sample_content_exclusive(
        &self,
        snapshot: &mut Snapshot,
        progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
    ) {
        let page = snapshot.page_size;
        let read: Vec<Result<PagesRaw, Unreadable>> = snapshot
            .processes
            .par_iter()
            .map(|p| match (&p.unframed, &p.rollup) {
                (Some(read), _) => read.clone(),
                (None, Err(reason)) => Err(reason.clone()),
                (None, Ok(fields)) => self.read_page_entries(
                    p.pid,
                    page,
                    super::pagemap::PagesHint::from_rollup(fields),
                ),
            })
            .collect();
        // Each process's present anonymous addresses, for its children's plans.
        let anonymous: HashMap<u32, HashSet<u64>> = snapshot
            .processes
            .iter()
            .zip(&read)
            .filter_map(|(p, pages)| {
                let pages = pages.as_ref().ok()?;
                let addresses = pages
                    .addressed(0..pages.entries().len() as u32)
                    .filter(|(_, e)| {
                        e.raw & pagemap_bits::PRESENT != 0
                            && e.raw & pagemap_bits::FILE_OR_SHARED_ANON == 0
                    })
                    .map(|(vaddr, _)| vaddr)
                    .collect();
                Some((p.pid, addresses))
            })
            .collect();
        let planned: Vec<Option<Result<Planned, Unreadable>>> = snapshot
            .processes
            .iter()
            .zip(read)
            .map(|(p, pages)| {
                Some(pages.map(|pages| {
                    let names = pages.mappings.iter().map(|m| m.name().to_string()).collect();
                    (plan_exclusive(&pages, page, anonymous.get(&p.ppid)), names)
                }))
            })
            .collect();
        let total: u64 = planned
            .iter()
            .flatten()
            .filter_map(|r| r.as_ref().ok())
            .map(|(regions, _)| regions.iter().map(|r| r.1).sum::<u64>())
            .sum();
        let done = AtomicU64::new(0);
        let report = progress.filter(|_| total > PROGRESS_ABOVE);
        let results: Vec<Option<Result<ContentRaw, Unreadable>>> = std::thread::scope(|s| {
            if let Some(report) = report {
                s.spawn(|| report_progress(&done, total, report));
            }
            let results = snapshot
                .processes
                .par_iter()
                .zip(planned)
                .map(|(p, plan)| {
                    plan.map(|plan| {
                        let (regions, names) = plan?;
                        let mut raw = scan(self, p.pid, &regions, page as usize, &done)
                            .map_err(|reason| self.mem_refusal(p.pid, reason))?;
                        raw.exclusive_only = Some(names);
                        Ok(raw)
                    })
                })
                .collect();
            done.store(u64::MAX, Ordering::Relaxed);
            results
        });
        for (p, content) in snapshot.processes.iter_mut().zip(results) {
            p.content = content;
        }
    }

    /// A refused `/proc/PID/mem`, explained: under Yama's ptrace_scope 1 only memtree's own
    /// descendants may be read by their user.
    fn mem_refusal(&self, pid: u32, reason: Unreadable) -> Unreadable {
        let Unreadable::PermissionDenied(_) = &reason else { return reason };
        let scope =
            super::read_text(std::path::Path::new("/proc/sys/kernel/yama/ptrace_scope"), 64, false)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
        match scope {
            Some(1) if !self.is_descendant_of_memtree(pid) => Unreadable::PermissionDenied(
                "ptrace_scope 1: only descendants of memtree can be read; run the program under \
                 `memtree report -- …` or as root"
                    .into(),
            ),
            Some(scope) if scope >= 2 => Unreadable::PermissionDenied(format!(
                "ptrace_scope {scope}: only root may read another process's memory"
            )),
            _ => reason,
        }
    }

    /// Whether `pid` descends from this memtree (its parents, followed, reach it).
    fn is_descendant_of_memtree(&self, pid: u32) -> bool {
        let me = std::process::id();
        let mut current = pid;
        for _ in 0..4096 {
            match self.stat(current) {
                Ok(info) if info.ppid == me => return true,
                Ok(info) if info.ppid > 1 && info.ppid != current => current = info.ppid,
                _ => return false,
            }
        }
        false
    }
}

/// Sends `done` to `report` every 100 ms until it is u64::MAX.
fn report_progress(done: &AtomicU64, total: u64, report: &(dyn Fn(Progress) + Send + Sync)) {
    loop {
        let now = done.load(Ordering::Relaxed);
        if now == u64::MAX {
            report(Progress::ContentDone);
            return;
        }
        report(Progress::Content { done: now, total });
        std::thread::sleep(Duration::from_millis(100));
    }
}
