//! Model layer: the raw samples the sampler hands over. Pure data, no I/O.
//!
//! Types here are named after their source (`SmapsFields` are the key/value lines of
//! `/proc/PID/smaps` and `/proc/PID/smaps_rollup`); derived meanings live in `accounting`.

use std::fmt;

use super::dedup::ContentRaw;
use super::exact::{PagesRaw, PfnTable};

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
    /// The `VmFlags` mnemonics, kept verbatim (unknown ones included).
    pub vm_flags: Vec<String>,
}

impl MappingRaw {
    /// The name mappings are grouped by across a tree: the pathname, or `[anon]`.
    pub fn name(&self) -> &str {
        if self.pathname.is_empty() { "[anon]" } else { &self.pathname }
    }
}

/// Why a figure could not be read. A process with a reason has no figures, never zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The process exited (ENOENT/ESRCH) or is a zombie whose address space is gone.
    Vanished(String),
    /// The kernel refused the read (another user's process, or the file needs a capability).
    PermissionDenied(String),
    /// A kernel thread: it has no user address space, so it has no memory figures.
    NoAddressSpace,
    /// Anything else (an I/O error or a file memtree could not parse); a bug to report.
    Failed(String),
}

impl Unreadable {
    /// A short stable slug, the first word of the reason: for grouping and counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Unreadable::Vanished(_) => "vanished",
            Unreadable::PermissionDenied(_) => "permission denied",
            Unreadable::NoAddressSpace => "no address space",
            Unreadable::Failed(_) => "failed",
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
    /// Content-defined chunk hashes of the pages this process was the first to map, only when
    /// asked for (`--dedup`).
    pub content: Option<Result<ContentRaw, Unreadable>>,
}

/// One pass of the sampler over a set of processes.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Seconds since the Unix epoch when the pass started.
    pub taken_at_unix: f64,
    /// The reader holds CAP_SYS_ADMIN/CAP_SYS_PTRACE-level privilege (see `sampler::privileged`).
    pub privileged: bool,
    pub processes: Vec<ProcessSample>,
    /// kpagecount/kpageflags of the frames the processes map, only with `--exact`.
    pub pfn_table: Option<Result<PfnTable, Unreadable>>,
    /// The base page size pagemap entries describe.
    pub page_size: u64,
}
