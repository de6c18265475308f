//! Sampler layer: the only code that reads /proc (and `/proc/PID/mem`, `/proc/kpage*`). It may
//! use the model (it produces [`crate::model::snapshot`] types) and nothing above it: it never
//! formats, draws or decides what a face shows.
//!
//! [`Sampler`] is built on a root directory: `/proc` for live processes, or a directory captured
//! with `memtree capture` so that parsers and accounting are tested on real files without live
//! processes. It discovers process trees (`/proc/PID/task/*/children`, or the ppid of every
//! process where the kernel lacks `CONFIG_PROC_CHILDREN`) and reads each process into a
//! [`ProcessSample`]; [`pagemap`] reads physical pages, [`content`] page contents.
//! [`session::Session`], the shared sampler every command uses, decides what is read when and
//! builds the snapshots. A read that fails is recorded with its reason ([`Unreadable`]); it is
//! never turned into a zero.

pub mod capture;
pub mod content;
pub mod error;
pub mod pagemap;
pub mod session;
pub mod smaps;
pub mod stages;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use self::error::ReadError;
pub use self::session::{Cadence, Progress, Round, Sample, Session, Target};
use crate::model::snapshot::{MappingRaw, ProcessSample, SmapsFields, Unreadable};
/// The base page size (what one pagemap entry describes).
pub use crate::resident::page_size;

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat` (include/linux/sched.h).
const PF_KTHREAD: u32 = 0x0020_0000;

/// Bit of `CAP_SYS_ADMIN` in `CapEff` (include/uapi/linux/capability.h): needed for PFNs.
const CAP_SYS_ADMIN: u32 = 21;
/// Bit of `CAP_SYS_PTRACE`: reading other users' smaps.
const CAP_SYS_PTRACE: u32 = 19;

/// Past this many processes found, a tree walk reads every process's stat once instead of
/// each member's children files.
const INDEX_ABOVE: usize = 64;

/// The file a captured /proc keeps its facts in (who captured it, on which kernel).
pub const CAPTURE_META: &str = "memtree-capture.txt";

/// What `/proc/PID/stat` says about a process: enough to place it in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatInfo {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    pub state: char,
    pub flags: u32,
    /// Its `stat` could not be parsed (a capture's garbage, or a format memtree does not
    /// know): the process is reported with this reason, in a tree of its own, never dropped.
    pub problem: Option<String>,
}

impl StatInfo {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// What to read for each process.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleOptions {
    /// Also read the full per-mapping `smaps` (costly: a page-table walk plus text per mapping).
    pub mappings: bool,
    /// Also read every physical page (`pagemap`, `kpagecount`): `--exact`.
    pub exact: bool,
    /// Also hash the content of every distinct anonymous/shmem page (`--dedup`; implies
    /// `exact`).
    pub dedup: bool,
}

#[derive(Debug, Clone)]
pub struct Sampler {
    root: PathBuf,
    /// A captured directory rather than the live /proc: missing files may carry a recorded
    /// errno in `<file>.error`.
    captured: bool,
    /// Checked once, when the sampler is made ([`Sampler::privileged`]).
    privileged: bool,
    /// When a captured /proc was captured (seconds since the epoch), if it says.
    captured_at: Option<f64>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::live()
    }
}

impl Sampler {
    /// The live `/proc`.
    pub fn live() -> Self {
        Self::with_root("/proc")
    }

    /// A /proc-like directory: the live one or one written by `memtree capture`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let captured = root.join(CAPTURE_META).exists();
        let meta = if captured {
            read_text(&root.join(CAPTURE_META), 1 << 16, true).unwrap_or_default()
        } else {
            String::new()
        };
        let facts = CaptureMeta::parse(&meta);
        let captured_at = facts.taken_at_unix;
        let privileged = if captured {
            facts.privileged
        } else {
            fs::read_to_string(root.join("self/status"))
                .ok()
                .and_then(|status| parse_cap_eff(&status))
                .is_some_and(|caps| {
                    caps & (1 << CAP_SYS_ADMIN) != 0 && caps & (1 << CAP_SYS_PTRACE) != 0
                })
        };
        Sampler { root, captured, privileged, captured_at }
    }

    /// When the captured /proc this sampler reads was captured; `None` for the live one (or a
    /// capture that does not say).
    pub fn captured_at(&self) -> Option<f64> {
        self.captured_at
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_captured(&self) -> bool {
        self.captured
    }

    fn path(&self, pid: u32, file: &str) -> PathBuf {
        let mut path = self.root.join(pid.to_string());
        path.push(file);
        path
    }

    /// Reads one file of one process whole, up to its bound ([`read_limit`]).
    pub fn read(&self, pid: u32, file: &str) -> Result<Vec<u8>, ReadError> {
        let path = self.path(pid, file);
        match read_bounded(&path, read_limit(file), self.captured) {
            Ok(bytes) => Ok(bytes),
            Err(err) => {
                let err = ReadError::from_io(path.clone(), err);
                if self.captured && matches!(err, ReadError::Vanished { .. }) {
                    return Err(self.recorded_error(path).unwrap_or(err));
                }
                Err(err)
            }
        }
    }

    /// A captured /proc records a refused read as `<file>.error` holding the errno name.
    /// A missing file in a capture without a `.error` beside it is an incomplete capture, and
    /// an errno memtree does not know is named as such: neither passes for a process that
    /// exited.
    fn recorded_error(&self, path: PathBuf) -> Option<ReadError> {
        let mut marker = path.clone().into_os_string();
        marker.push(".error");
        let Ok(errno) = read_text(Path::new(&marker), 4096, true) else {
            let what = "missing from the capture, and no error recorded for it: an incomplete \
                        capture"
                .to_string();
            return Some(ReadError::Capture { path, what });
        };
        match errno.trim() {
            "EACCES" | "EPERM" => Some(ReadError::PermissionDenied { path }),
            "ESRCH" | "ENOENT" => Some(ReadError::Vanished { path }),
            other => {
                let shown = crate::units::visible(other.get(..other.len().min(40)).unwrap_or(""))
                    .into_owned();
                let what =
                    format!("the capture recorded an error memtree does not know: {shown:?}");
                Some(ReadError::Capture { path, what })
            }
        }
    }

    /// Every pid under the root, in no particular order.
    pub fn all_pids(&self) -> Result<Vec<u32>, ReadError> {
        let entries =
            fs::read_dir(&self.root).map_err(|e| ReadError::from_io(self.root.clone(), e))?;
        Ok(entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .collect())
    }

    pub fn stat(&self, pid: u32) -> Result<StatInfo, ReadError> {
        let bytes = self.read(pid, "stat")?;
        parse_stat(pid, &bytes)
            .map_err(|what| ReadError::Parse { path: self.path(pid, "stat"), what })
    }

    /// [`Sampler::stat`], keeping a process whose stat exists but cannot be parsed (with the
    /// reason) instead of losing it; `None` only for a process that is gone.
    pub fn stat_or_problem(&self, pid: u32) -> Option<StatInfo> {
        match self.stat(pid) {
            Ok(info) => Some(info),
            Err(ReadError::Vanished { .. }) => None,
            Err(err) => Some(StatInfo {
                pid,
                ppid: 0,
                name: "?".to_string(),
                state: '?',
                flags: 0,
                problem: Some(crate::units::visible(&err.to_string()).into_owned()),
            }),
        }
    }

    /// The `stat` of every process; processes that exit during the scan are left out.
    pub fn scan(&self) -> Result<Vec<StatInfo>, ReadError> {
        use rayon::prelude::*;
        let pids = self.all_pids()?;
        Ok(pids.into_par_iter().filter_map(|pid| self.stat_or_problem(pid)).collect())
    }

    /// The processes of the trees rooted at `roots` (each root included), parents before
    /// children. A root that does not exist is an error naming it.
    pub fn descendants(&self, roots: &[u32]) -> Result<Vec<StatInfo>, ReadError> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::new();
        for &root in roots {
            let info = self.stat(root)?;
            if seen.insert(root) {
                queue.push_back(info);
            }
        }
        let mut by_ppid: Option<HashMap<u32, Vec<StatInfo>>> = None;
        while let Some(info) = queue.pop_front() {
            let pid = info.pid;
            found.push(info);
            // A large tree is found faster from one (parallel) scan of every process's stat
            // than from each member's task/*/children files.
            let large = found.len() + queue.len() > INDEX_ABOVE;
            let children: Vec<StatInfo> = if by_ppid.is_none()
                && !large
                && let Some(pids) = self.children_from_task_files(pid)
            {
                pids.into_iter().filter_map(|child| self.stat(child).ok()).collect()
            } else {
                // No `children` files (CONFIG_PROC_CHILDREN unset, as on this project's CI
                // kernel): index every process by its parent, once.
                let index = by_ppid.get_or_insert_with(|| self.index_by_ppid());
                index.get(&pid).cloned().unwrap_or_default()
            };
            for child in children {
                if seen.insert(child.pid) {
                    queue.push_back(child);
                }
            }
        }
        Ok(found)
    }

    /// Children through `/proc/PID/task/*/children`; `None` when the kernel has no such files.
    fn children_from_task_files(&self, pid: u32) -> Option<Vec<u32>> {
        let tasks = fs::read_dir(self.path(pid, "task")).ok()?;
        let mut children = Vec::new();
        let mut any = false;
        for task in tasks.flatten() {
            let Ok(text) = read_text(&task.path().join("children"), 1 << 20, self.captured) else {
                continue;
            };
            any = true;
            children.extend(text.split_ascii_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
        any.then_some(children)
    }

    fn index_by_ppid(&self) -> HashMap<u32, Vec<StatInfo>> {
        let mut index: HashMap<u32, Vec<StatInfo>> = HashMap::new();
        for info in self.scan().unwrap_or_default() {
            index.entry(info.ppid).or_default().push(info);
        }
        for children in index.values_mut() {
            children.sort_by_key(|c| c.pid);
        }
        index
    }

    /// Reads one process: its identity and rollup, and its mappings if asked.
    pub fn sample_one(&self, info: &StatInfo, options: SampleOptions) -> ProcessSample {
        let pid = info.pid;
        // The rollup (a page-table walk) beside the rest, so a lone large process is read in
        // the time of its rollup.
        let ((uid, cmdline), rollup) = rayon::join(
            || (self.uid(pid), self.read(pid, "cmdline").ok().map(|bytes| split_cmdline(&bytes))),
            || {
                if let Some(problem) = &info.problem {
                    Err(Unreadable::Failed(problem.clone()))
                } else if info.is_kernel_thread() {
                    Err(Unreadable::NoAddressSpace)
                } else {
                    self.read_rollup(pid)
                }
            },
        );
        let mappings = options.mappings.then(|| match &rollup {
            Err(reason) => Err(reason.clone()),
            Ok(_) => self.read_mappings(pid),
        });
        ProcessSample {
            pid,
            ppid: info.ppid,
            name: info.name.clone(),
            uid,
            cmdline,
            rollup,
            mappings,
            pages: None,
            unframed: None,
            content: None,
        }
    }

    /// The process's uid: live, the owner of `/proc/PID` (one `statx`: the effective uid, or
    /// root for a process that made itself non-dumpable); in a capture, the real uid of its
    /// `status`.
    pub fn uid(&self, pid: u32) -> Option<u32> {
        if self.captured {
            return self.read(pid, "status").ok().and_then(|status| parse_uid(&status));
        }
        use std::os::unix::fs::MetadataExt;
        fs::metadata(self.root.join(pid.to_string())).ok().map(|m| m.uid())
    }

    /// Resident bytes from `statm` (the kernel's counters, no page-table walk), if readable.
    pub fn resident(&self, pid: u32, page_size: u64) -> Option<u64> {
        let statm = self.read(pid, "statm").ok()?;
        let text = std::str::from_utf8(&statm).ok()?;
        let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * page_size)
    }

    /// `smaps_rollup`, with an empty file or ESRCH explained (zombie, exited, kernel thread).
    pub fn read_rollup(&self, pid: u32) -> Result<SmapsFields, Unreadable> {
        let bytes = self.read(pid, "smaps_rollup").map_err(|e| self.explain(pid, e))?;
        match smaps::parse_rollup(&bytes) {
            Ok(Some(fields)) => Ok(fields),
            Ok(None) => Err(self.explain_empty(pid)),
            Err(err) => Err(Unreadable::Failed(format!(
                "{}: cannot parse: {err}",
                self.path(pid, "smaps_rollup").display()
            ))),
        }
    }

    /// The full per-mapping `smaps`.
    pub fn read_mappings(&self, pid: u32) -> Result<Vec<MappingRaw>, Unreadable> {
        match self.parse_mappings(pid, "smaps")? {
            maps if maps.is_empty() => Err(self.explain_empty(pid)),
            maps => Ok(maps),
        }
    }

    /// `smaps` or `maps` of `pid`, parsed as it is read (the text is never held whole).
    pub fn parse_mappings(&self, pid: u32, file: &str) -> Result<Vec<MappingRaw>, Unreadable> {
        let path = self.path(pid, file);
        let mut parser = smaps::SmapsParser::default();
        let mut failed = None;
        let read = read_streamed(&path, read_limit(file), self.captured, |chunk| {
            if failed.is_none() {
                failed = parser.feed(chunk).err();
            }
        });
        let parse_error = |err: smaps::ParseError| {
            Unreadable::Failed(format!("{}: cannot parse: {err}", path.display()))
        };
        match read {
            Ok(()) => {}
            Err(err) => {
                let err = ReadError::from_io(path.clone(), err);
                let err = match err {
                    ReadError::Vanished { .. } if self.captured => {
                        self.recorded_error(path.clone()).unwrap_or(err)
                    }
                    other => other,
                };
                return Err(self.explain(pid, err));
            }
        }
        if let Some(err) = failed {
            return Err(parse_error(err));
        }
        parser.finish().map_err(parse_error)
    }

    /// Turns a failed read into a reason, looking at `stat` again to tell a zombie or a kernel
    /// thread from a process that is gone.
    fn explain(&self, pid: u32, err: ReadError) -> Unreadable {
        match err {
            ReadError::Vanished { .. } => self.explain_empty(pid),
            ReadError::PermissionDenied { path } if self.privileged() => {
                Unreadable::PermissionDenied(format!(
                    "{} is refused even to root (a container boundary or a security module)",
                    path.display()
                ))
            }
            ReadError::PermissionDenied { path } => Unreadable::PermissionDenied(format!(
                "{} is readable only by the process's own user or root",
                path.display()
            )),
            other => Unreadable::Failed(other.to_string()),
        }
    }

    fn explain_empty(&self, pid: u32) -> Unreadable {
        match self.stat(pid) {
            Ok(info) if info.is_kernel_thread() => Unreadable::NoAddressSpace,
            Ok(info) if info.state == 'Z' || info.state == 'X' => {
                Unreadable::Vanished("exited (a zombie: its memory is already freed)".into())
            }
            Ok(_) => Unreadable::Vanished("its address space went away while it was read".into()),
            Err(_) => Unreadable::Vanished("exited before its memory was read".into()),
        }
    }

    /// `MemAvailable` from `/proc/meminfo`: the kernel's estimate of memory available for new
    /// allocations without swapping.
    pub fn mem_available(&self) -> Result<u64, ReadError> {
        let path = self.root.join("meminfo");
        let text = read_text(&path, 1 << 20, self.captured)
            .map_err(|e| ReadError::from_io(path.clone(), e))?;
        text.lines()
            .find_map(|line| line.strip_prefix("MemAvailable:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or(ReadError::Parse { path, what: "no MemAvailable line".into() })
    }

    /// Whether the reader may read every process's memory maps and physical frame numbers:
    /// CAP_SYS_ADMIN and CAP_SYS_PTRACE in the effective set (root has both), as checked when
    /// the sampler was made. For a captured /proc, what the capturer had.
    pub fn privileged(&self) -> bool {
        self.privileged
    }
}

/// The most memtree reads of a file of a process, by name: far above what the kernel writes
/// (a process's `smaps` is ~700 bytes a mapping; 65,530 mappings, the kernel's default limit,
/// are ~46 MB), so a file that is larger is not /proc's (a capture's file replaced by a huge
/// one, a symlink to /dev/zero) and is refused rather than read without end.
pub fn read_limit(file: &str) -> usize {
    match file {
        "smaps" | "maps" => 256 << 20,
        "smaps_rollup" | "status" | "stat" | "statm" | "cmdline" => 1 << 20,
        _ => 16 << 20,
    }
}

/// Reads `path` whole, refusing more than `limit` bytes. The final component is never followed
/// if it is a symlink, and opening never blocks (a FIFO in a capture); in a capture, only a
/// regular file is read. Live /proc files are read with plain `read`s (no size probe: they
/// report size 0), so a small file costs open, two reads and close.
pub fn read_bounded(path: &Path, limit: usize, captured: bool) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if captured && !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file (a capture holds only regular files)",
        ));
    }
    let mut bytes = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            if len > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("larger than {} bytes: not read", limit),
                ));
            }
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes: not read"),
        ));
    }
    bytes.truncate(len);
    Ok(bytes)
}

/// Reads `path` as [`read_bounded`] does, but hands the text to `chunk` piece by piece (up to
/// 256 KiB at a time) instead of keeping it.
pub fn read_streamed(
    path: &Path,
    limit: usize,
    captured: bool,
    mut chunk: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if captured && !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file (a capture holds only regular files)",
        ));
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0usize;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                total += n;
                if total > limit {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("larger than {limit} bytes: not read"),
                    ));
                }
                chunk(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// [`read_bounded`], as text (invalid UTF-8 replaced).
pub fn read_text(path: &Path, limit: usize, captured: bool) -> std::io::Result<String> {
    let bytes = read_bounded(path, limit, captured)?;
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
}

/// What a capture's `memtree-capture.txt` says of it (a stranger's file: every line is
/// optional, and what does not parse is ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CaptureMeta {
    /// The capturer held the privilege exact figures need.
    pub privileged: bool,
    /// When it was captured, seconds since the epoch.
    pub taken_at_unix: Option<f64>,
}

impl CaptureMeta {
    pub fn parse(text: &str) -> CaptureMeta {
        CaptureMeta {
            privileged: text.lines().any(|l| l.trim() == "privileged: true"),
            taken_at_unix: text
                .lines()
                .find_map(|l| l.trim().strip_prefix("taken_at_unix:"))
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t >= 0.0 && *t < 1e11),
        }
    }
}

/// Parses `/proc/PID/stat`, as bytes: the name is whatever lies between the first `(` and the
/// last `)` — a process may name itself anything, spaces, parentheses and bytes that are not
/// UTF-8 included (procfs's parser panicked on such a name: found by fuzzing) — and the fields
/// after it are state, ppid, …, flags (the 9th field of the line).
pub fn parse_stat(pid: u32, bytes: &[u8]) -> Result<StatInfo, String> {
    let open = bytes.iter().position(|&b| b == b'(').ok_or("no ( before the name")?;
    let close = bytes.iter().rposition(|&b| b == b')').ok_or("no ) after the name")?;
    if close < open {
        return Err("the name's parentheses are out of order".into());
    }
    let name = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(bytes.get(close + 1..).unwrap_or_default())
        .map_err(|_| "the fields after the name are not text".to_string())?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |i: usize, what: &str| -> Result<&str, String> {
        fields.get(i).copied().ok_or_else(|| format!("no {what} field"))
    };
    let mut state = field(0, "state")?.chars();
    let state = match (state.next(), state.next()) {
        (Some(c), None) => c,
        _ => return Err(format!("state {:?} is not one letter", field(0, "state")?)),
    };
    let ppid: i64 = field(1, "ppid")?.parse().map_err(|_| "ppid is not a number".to_string())?;
    let flags: u32 = field(6, "flags")?.parse().map_err(|_| "flags is not a number".to_string())?;
    Ok(StatInfo { pid, ppid: u32::try_from(ppid).unwrap_or(0), name, state, flags, problem: None })
}

/// The real uid: the first number of the `Uid:` line of `/proc/PID/status`.
pub fn parse_uid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line["Uid:".len()..].split_whitespace().next()?.parse().ok()
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// `/proc/PID/cmdline` is NUL-separated with a trailing NUL (empty for kernel threads).
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|b| *b == 0).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_splits_at_nuls() {
        assert_eq!(split_cmdline(b"python3\0-c\0print(1)\0"), ["python3", "-c", "print(1)"]);
        assert!(split_cmdline(b"").is_empty());
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
    }

    fn write_proc(root: &Path, pid: u32, ppid: u32, children: Option<&str>) {
        let dir = root.join(pid.to_string());
        fs::create_dir_all(dir.join("task").join(pid.to_string())).unwrap();
        let stat = format!(
            "{pid} (p {pid}) S {ppid} 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
        );
        fs::write(dir.join("stat"), stat).unwrap();
        if let Some(children) = children {
            fs::write(dir.join("task").join(pid.to_string()).join("children"), children).unwrap();
        }
    }

    #[test]
    fn descendants_follow_children_files_when_the_kernel_has_them() {
        let root = tempfile::tempdir().unwrap();
        write_proc(root.path(), 10, 1, Some("11 12 "));
        write_proc(root.path(), 11, 10, Some(""));
        write_proc(root.path(), 12, 10, Some("14"));
        write_proc(root.path(), 14, 12, Some(""));
        // Claims ppid 10 but no children file lists it: the children path must not find it.
        write_proc(root.path(), 13, 10, Some(""));
        let sampler = Sampler::with_root(root.path());
        let mut pids: Vec<u32> =
            sampler.descendants(&[10]).unwrap().iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12, 14]);
        let names: Vec<String> =
            sampler.descendants(&[12]).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["p 12", "p 14"]);
    }

    #[test]
    fn descendants_fall_back_to_ppid_without_children_files() {
        let root = tempfile::tempdir().unwrap();
        write_proc(root.path(), 10, 1, None);
        write_proc(root.path(), 11, 10, None);
        write_proc(root.path(), 12, 11, None);
        write_proc(root.path(), 13, 1, None);
        let sampler = Sampler::with_root(root.path());
        let pids: Vec<u32> = sampler.descendants(&[10]).unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(pids, [10, 11, 12]);
        assert!(matches!(sampler.descendants(&[99]), Err(ReadError::Vanished { .. })));
    }

    #[test]
    fn reads_are_bounded_and_a_capture_holds_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, vec![b'x'; 10_000]).unwrap();
        assert_eq!(read_bounded(&file, 20_000, true).unwrap().len(), 10_000);
        let err = read_bounded(&file, 5_000, true).unwrap_err();
        assert!(err.to_string().contains("larger than 5000"), "{err}");
        // A symlink to /dev/zero is not followed; a FIFO neither blocks nor is read.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read_bounded(&link, 1 << 20, true).is_err());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_bounded(&fifo, 1 << 20, true).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn stat_parses_any_name_as_bytes() {
        let line = |name: &[u8]| {
            [b"42 (".as_slice(), name, b") S 7 42 42 0 -1 4194304 0 0 0 0\n"].concat()
        };
        let info = parse_stat(42, &line(b"p (x) y")).unwrap();
        assert_eq!(
            (info.name.as_str(), info.ppid, info.state, info.flags),
            ("p (x) y", 7, 'S', 4194304)
        );
        // Not UTF-8, and a byte sequence that made procfs's parser panic (found by fuzzing).
        let info = parse_stat(42, &line(b"\xe3((kthreadd")).unwrap();
        assert_eq!(info.name, "\u{fffd}((kthreadd");
        assert!(parse_stat(42, b"garbage\n").is_err());
        assert!(parse_stat(42, b"42 (x) S\n").is_err());
        assert!(parse_stat(42, b"42 )x( S 1 2 3 4 5 6\n").is_err());
    }

    #[test]
    fn uid_and_caps_parse() {
        let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_uid(status.as_bytes()), Some(1000));
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_uid(b"Name:\tx\n"), None);
    }
}
