//! Sampler layer: page contents, for `--dedup`. Every distinct anonymous or shared-memory frame
//! the tree maps is read once, through the first process (in tree order) that maps it, with
//! `process_vm_readv`, and turned into content-defined chunk hashes on the spot
//! ([`crate::model::dedup::Chunker`]). Only hashes and lengths are kept: the bytes live in one
//! reused window buffer per reading thread and are never stored or written anywhere.

use std::io::{IoSliceMut, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
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
type Region = (u64, u64, u32);

/// Splits the tree's distinct anonymous/shmem frames into contiguous virtual regions, each
/// frame in the first process (in snapshot order) that maps it.
fn plan(snapshot: &Snapshot, table: &PfnTable) -> Vec<Vec<Region>> {
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

/// Reads and chunks the regions of one process.
fn scan(
    pid: u32,
    regions: &[Region],
    page: usize,
    done: &AtomicU64,
) -> Result<ContentRaw, Unreadable> {
    let mut raw = ContentRaw::default();
    let mut buf = vec![0u8; WINDOW_BYTES];
    let mut chunker = Chunker::default();
    for &(start, len, mapping) in regions {
        let mut zero = 0u64;
        let mut offset = 0u64;
        while offset < len {
            let want = ((len - offset) as usize).min(buf.len());
            let remote = [RemoteIoVec { base: (start + offset) as usize, len: want }];
            let got = match process_vm_readv(
                Pid::from_raw(pid as i32),
                &mut [IoSliceMut::new(&mut buf[..want])],
                &remote,
            ) {
                Ok(n) => n,
                Err(Errno::ESRCH) => {
                    return Err(Unreadable::Vanished("exited while its pages were read".into()));
                }
                Err(Errno::EPERM | Errno::EACCES) => {
                    return Err(Unreadable::PermissionDenied(format!(
                        "reading the memory of {pid} needs ptrace rights (run as root)"
                    )));
                }
                // Unmapped since the page walk: nothing left to read in this region.
                Err(Errno::EFAULT) => 0,
                Err(e) => return Err(Unreadable::Failed(format!("process_vm_readv {pid}: {e}"))),
            };
            // A short read stops at the first page that went away.
            let got = got - got % page;
            for bytes in buf[..got].chunks(page) {
                if bytes.iter().all(|&b| b == 0) {
                    chunker.finish(&mut |c| raw.chunks.push((c, mapping)));
                    zero += page as u64;
                } else {
                    chunker.feed(bytes, &mut |c| raw.chunks.push((c, mapping)));
                }
            }
            raw.scanned += got as u64;
            done.fetch_add(got as u64, Ordering::Relaxed);
            if got < want {
                raw.unread += len - offset - got as u64;
                break;
            }
            offset += got as u64;
        }
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
                    Some(Ok(_)) => Some(scan(p.pid, regions, page, &done)),
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
