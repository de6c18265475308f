//! Working memory memtree is about to fill whole, faulted in by one `madvise`
//! (`MADV_POPULATE_WRITE`, Linux 5.14) instead of one page fault per page as it is written: an
//! exact pass over 256 MiB in 4 KiB pages writes ~10 MiB of page entries and frame indexes,
//! and on a virtual machine each fault's trap costs as much as the page's allocation. A hint:
//! where the kernel refuses (older kernels, no memory left), the pages fault in as usual.

use std::ffi::c_void;
use std::ptr::NonNull;

/// Below this, a vector's pages are few and the call costs more than it saves.
const AT_LEAST: usize = 64 * 1024;

/// An empty vector with room for `capacity` values, that room resident already.
pub fn with_capacity<T>(capacity: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(capacity);
    populate(v.as_mut_ptr().cast(), capacity * size_of::<T>());
    v
}

/// `len` copies of `value`, their pages resident before they are written.
pub fn filled<T: Clone>(len: usize, value: T) -> Vec<T> {
    let mut v = with_capacity(len);
    v.resize(len, value);
    v
}

/// Faults in the whole pages inside `[start, start + bytes)` for writing, in one call.
fn populate(start: *mut c_void, bytes: usize) {
    if bytes < AT_LEAST {
        return;
    }
    let page = page_size() as usize;
    let first = (start as usize).next_multiple_of(page);
    let end = (start as usize + bytes) / page * page;
    let Some(first_page) = NonNull::new(first as *mut c_void) else { return };
    if end > first {
        // SAFETY: the range is whole pages inside one live allocation of ours that nothing
        // reads yet; MADV_POPULATE_WRITE only faults its pages in (as writing them would),
        // without changing their contents, protection or mapping.
        let _ = unsafe {
            nix::sys::mman::madvise(
                first_page,
                end - first,
                nix::sys::mman::MmapAdvise::MADV_POPULATE_WRITE,
            )
        };
    }
}

/// The base page size (what one pagemap entry describes), from the auxiliary vector; 4 KiB if
/// it cannot be read.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// Of the pages of `bytes` at `start`, how many are present (pagemap's bit 63, which
    /// needs no privilege).
    fn present_pages(start: usize, bytes: usize) -> usize {
        let page = page_size() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + bytes) / page * page);
        let mut raw = vec![0u8; (end - first) / page * 8];
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        pagemap.read_exact_at(&mut raw, (first / page * 8) as u64).unwrap();
        raw.chunks_exact(8)
            .filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) >> 63 == 1)
            .count()
    }

    /// Resident means present before a byte is written, and the values are the ones asked
    /// for; a small vector is left to fault in as it is written.
    #[test]
    fn the_room_is_resident_before_it_is_written() {
        let page = page_size() as usize;
        let v: Vec<u64> = with_capacity(8 << 20); // 64 MiB
        let pages = (64 << 20) / page;
        assert!(present_pages(v.as_ptr() as usize, 64 << 20) >= pages - 1);
        assert!(v.is_empty() && v.capacity() >= 8 << 20);
        let w = filled(1 << 20, 7u32);
        assert_eq!((w.len(), w.iter().all(|&x| x == 7)), (1 << 20, true));
        // What the count tells apart: room taken without it is not present.
        let plain: Vec<u8> = Vec::with_capacity(64 << 20);
        assert!(present_pages(plain.as_ptr() as usize, 64 << 20) < pages / 2);
    }
}
