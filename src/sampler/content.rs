//! Sampler layer: page contents, for `--dedup`. Every distinct anonymous or shared-memory frame
//! the tree maps is read once, through the first process (in tree order) that maps it, from
//! `/proc/PID/mem` (see [`read_region`] for why not `process_vm_readv`), and turned into content-defined chunk hashes on the spot
//! ([`crate::model::dedup::Chunker`]). Only hashes and lengths are kept: the bytes live in one
//! reused window buffer per reading thread and are never stored or written anywhere.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use rayon::prelude::*;

use super::Sampler;
use crate::model::dedup::{Chunker, ContentRaw};
use crate::model::exact::{PagesRaw, PfnTable, flags};
use crate::model::snapshot::{Snapshot, Unreadable};

/// Bytes read per `process_vm_readv`: the only place content is held (one buffer per thread).
pub const WINDOW_BYTES: usize = 4 << 20;
/// Scans larger than this show progress on a terminal.
const PROGRESS_ABOVE: u64 = 256 << 20;

/// A virtual range of one process to read: `(address, length, mapping index)`.
pub type Region = (u64, u64, u32);

/// Splits the tree's distinct anonymous/shmem frames into contiguous virtual regions, each
/// frame in the first process (in snapshot order) that maps it.
pub fn plan(snapshot: &Snapshot, table: &PfnTable) -> Vec<Vec<Region>> {
    let page = snapshot.page_size;
    let mut visited = vec![0u64; table.mapcount.len().div_ceil(64)];
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
    for (index, range) in pages.ranges.iter().enumerate() {
        for entry in &pages.entries[range.start as usize..range.end as usize] {
            let Some(pfn) = entry.pfn() else { continue };
            let Some(&f) = table.flags.get(pfn as usize) else { continue };
            let content = f & (flags::ANON | flags::SWAPBACKED) != 0 && f & flags::ZERO_PAGE == 0;
            let (word, bit) = ((pfn / 64) as usize, 1u64 << (pfn % 64));
            if !content || visited[word] & bit != 0 {
                continue;
            }
            visited[word] |= bit;
            match regions.last_mut() {
                Some((start, len, m)) if *m == index as u32 && *start + *len == entry.vaddr => {
                    *len += page;
                }
                _ => regions.push((entry.vaddr, page, index as u32)),
            }
        }
    }
}

/// Reads one region of `pid` window by window, handing each window's whole pages to `visit`.
/// Returns the bytes that could not be read (unmapped since the page walk).
///
/// Reads go through `/proc/PID/mem`, not `process_vm_readv`: the latter pins the pages it
/// reads, and pinning a copy-on-write page that several processes share makes the kernel give
/// the target a private copy (`gup_must_unshare`) — memtree would be copying the very memory it
/// measures. `/proc/PID/mem` takes no pin and leaves the pages shared.
pub fn read_region(
    mem: &File,
    (start, len, _): Region,
    buf: &mut [u8],
    page: usize,
    mut visit: impl FnMut(&[u8]),
) -> Result<u64, Unreadable> {
    let mut offset = 0u64;
    while offset < len {
        let want = ((len - offset) as usize).min(buf.len());
        let mut got = 0;
        while got < want {
            match mem.read_at(&mut buf[got..want], start + offset + got as u64) {
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
        let got = got - got % page;
        visit(&buf[..got]);
        if got < want {
            return Ok(len - offset - got as u64);
        }
        offset += got as u64;
    }
    Ok(0)
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
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut chunker = Chunker::default();
    for &region in regions {
        let mapping = region.2;
        let mut zero = 0u64;
        let unread = read_region(&mem, region, &mut buf, page, |window| {
            // Runs of non-zero pages go to the chunker whole; a zero-filled page ends a run.
            let mut run_start = 0;
            for (index, bytes) in window.chunks(page).enumerate() {
                if bytes.iter().all(|&b| b == 0) {
                    let at = index * page;
                    chunker.feed(&window[run_start..at], &mut |c| raw.chunks.push((c, mapping)));
                    chunker.finish(&mut |c| raw.chunks.push((c, mapping)));
                    zero += page as u64;
                    run_start = at + page;
                }
            }
            chunker.feed(&window[run_start..], &mut |c| raw.chunks.push((c, mapping)));
            raw.scanned += window.len() as u64;
            done.fetch_add(window.len() as u64, Ordering::Relaxed);
        })?;
        raw.unread += unread;
        chunker.finish(&mut |c| raw.chunks.push((c, mapping)));
        if zero > 0 {
            raw.zero_filled.push((mapping, zero));
        }
    }
    Ok(raw)
}

impl Sampler {
    /// Hashes the content of every distinct anonymous/shmem frame of the snapshot (needs the
    /// exact pass first). Shows progress on stderr when it is a terminal and the scan is large.
    pub fn sample_content(&self, snapshot: &mut Snapshot) {
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
        let show = total > PROGRESS_ABOVE && std::io::stderr().is_terminal();
        let results: Vec<Option<Result<ContentRaw, Unreadable>>> = std::thread::scope(|s| {
            if show {
                s.spawn(|| progress(&done, total));
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

/// `memtree: hashing page contents: 512 MiB of 2 GiB` on stderr, until `done` is u64::MAX.
fn progress(done: &AtomicU64, total: u64) {
    let started = Instant::now();
    let mut stderr = std::io::stderr();
    loop {
        let now = done.load(Ordering::Relaxed);
        if now == u64::MAX {
            let _ = write!(stderr, "\r\x1b[2K");
            return;
        }
        if started.elapsed() > Duration::from_millis(300) {
            let _ = write!(
                stderr,
                "\r\x1b[2Kmemtree: hashing page contents: {} of {}",
                crate::units::human_bytes(now),
                crate::units::human_bytes(total)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
