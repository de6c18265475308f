//! Sampler layer: what a read of /proc can end in. Each variant keeps the path it concerns.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// ENOENT/ESRCH: the process exited (or, for smaps files, has no address space).
    #[error("{path}: gone (the process exited)")]
    Vanished { path: PathBuf },
    /// EACCES/EPERM: another user's process, or a file that needs a capability.
    #[error("{path}: permission denied")]
    PermissionDenied { path: PathBuf },
    /// A file memtree could not parse: a bug, or a kernel format it does not know.
    #[error("{path}: cannot parse: {what}")]
    Parse { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A captured /proc lacks a file or recorded an error memtree does not know: the capture is
    /// incomplete or not memtree's, and says so rather than passing for a process that exited.
    #[error("{path}: {what}")]
    Capture { path: PathBuf, what: String },
}

impl ReadError {
    pub fn from_io(path: PathBuf, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc_errno::ENOENT | libc_errno::ESRCH) => ReadError::Vanished { path },
            Some(libc_errno::EACCES | libc_errno::EPERM) => ReadError::PermissionDenied { path },
            _ => match source.kind() {
                io::ErrorKind::NotFound => ReadError::Vanished { path },
                io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
                _ => ReadError::Io { path, source },
            },
        }
    }

    /// The errno a captured /proc records for this failure (`<file>.error`), if any.
    pub fn errno_name(&self) -> Option<&'static str> {
        match self {
            ReadError::Vanished { .. } => Some("ESRCH"),
            ReadError::PermissionDenied { .. } => Some("EACCES"),
            _ => None,
        }
    }
}

/// The errno values this module maps (Linux, every architecture memtree builds for).
pub(crate) mod libc_errno {
    pub const EPERM: i32 = nix::errno::Errno::EPERM as i32;
    pub const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;
    pub const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;
    pub const EACCES: i32 = nix::errno::Errno::EACCES as i32;
}
