//! Runner layer: the memory the workloads use — page-aligned anonymous or shared mappings, a
//! fast pseudo-random fill, and the page touches that make pages resident or copied.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap};

/// A mapping owned by this process, unmapped on drop.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Private anonymous memory (`MAP_PRIVATE | MAP_ANONYMOUS`): copied on write after fork.
    pub fn anonymous(len: usize) -> io::Result<Region> {
        let length = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a fresh mapping at an address the kernel chooses aliases nothing.
        let ptr = unsafe { mmap_anonymous(None, length, prot, MapFlags::MAP_PRIVATE) }?;
        Ok(Region { ptr: ptr.cast(), len })
    }

    /// `MAP_SHARED` view of a memfd: every process mapping it sees the same pages.
    pub fn shared(fd: impl AsFd, len: usize) -> io::Result<Region> {
        let length = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: as above; the memfd was sized to `len` by the caller.
        let ptr = unsafe { mmap(None, length, prot, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(Region { ptr: ptr.cast(), len })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes, readable, and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, and writable; `&mut self` makes the borrow unique in this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing borrows them any more.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// Fills `buf` with pseudo-random bytes (wyrand, at memory speed): never zeros, so neither the
/// shared zero page nor KSM can make a copy look free. The same seed gives the same bytes.
pub fn fill(buf: &mut [u8], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    };
    let (chunks, rest) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = next().to_le_bytes();
    }
    let tail = next().to_le_bytes();
    rest.copy_from_slice(&tail[..rest.len()]);
}

/// Reads one byte of every page, so every page is mapped in this process. Returns the pages.
pub fn read_pages(buf: &[u8], page: usize) -> usize {
    let mut acc = 0u8;
    let mut pages = 0;
    for offset in (0..buf.len()).step_by(page) {
        // SAFETY: `offset < buf.len()`; volatile so the read is not optimised away.
        acc ^= unsafe { std::ptr::read_volatile(buf.as_ptr().add(offset)) };
        pages += 1;
    }
    std::hint::black_box(acc);
    pages
}

/// Changes one byte in a `fraction` of the pages, spread evenly, by adding `delta`: on private
/// memory each such page becomes a private copy that differs from the original by that byte
/// (workers pass different deltas, so their copies differ from each other too).
pub fn write_pages(buf: &mut [u8], page: usize, fraction: f64, delta: u8) -> usize {
    let pages = buf.len().div_ceil(page);
    let mut written = 0;
    for p in 0..pages {
        if ((p + 1) as f64 * fraction).floor() > (p as f64 * fraction).floor() {
            let byte = &mut buf[p * page];
            *byte = byte.wrapping_add(delta);
            written += 1;
        }
    }
    written
}

pub fn page_size() -> usize {
    crate::sampler::page_size() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_deterministic_and_not_zero() {
        let mut a = vec![0u8; 4096 * 3 + 5];
        let mut b = vec![0u8; 4096 * 3 + 5];
        fill(&mut a, 7);
        fill(&mut b, 7);
        assert_eq!(a, b);
        for page in a.chunks(4096) {
            assert!(page.iter().filter(|&&x| x == 0).count() < 64, "random, not zero-filled");
        }
        fill(&mut b, 8);
        assert_ne!(a, b);
    }

    #[test]
    fn write_fraction_spreads_evenly() {
        let mut buf = vec![0u8; 4096 * 100];
        assert_eq!(write_pages(&mut buf, 4096, 1.0, 1), 100);
        assert_eq!(write_pages(&mut buf, 4096, 0.25, 1), 25);
        assert_eq!(write_pages(&mut buf, 4096, 0.0, 1), 0);
        assert_eq!(buf[0], 1);
        assert_eq!(read_pages(&buf, 4096), 100);
    }

    #[test]
    fn regions_map_and_fill() {
        let mut region = Region::anonymous(1 << 20).unwrap();
        fill(region.bytes_mut(), 1);
        assert_eq!(read_pages(region.bytes(), 4096), 256);
        assert!(Region::anonymous(0).is_err());
    }
}
