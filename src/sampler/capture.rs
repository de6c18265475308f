//! Sampler layer: `memtree capture` copies the /proc files of a process tree into a directory
//! that `--proc-root` reads back, so parsers and accounting can be tested, and bugs reported, on
//! real files. A read the kernel refused is recorded as `<file>.error` holding the errno name,
//! so a capture made without privilege replays its refusals.

use std::fs;
use std::io;
use std::path::Path;

use super::{CAPTURE_META, ReadError, Sampler, StatInfo};

/// The per-process files a capture keeps. `environ`, `mem` and `pagemap` are never copied.
pub const CAPTURED_FILES: &[&str] =
    &["stat", "status", "cmdline", "statm", "smaps_rollup", "smaps"];

/// Copies `processes` into `out/<pid>/` and writes `out/memtree-capture.txt`.
pub fn capture(sampler: &Sampler, processes: &[StatInfo], out: &Path) -> io::Result<usize> {
    fs::create_dir_all(out)?;
    for info in processes {
        let dir = out.join(info.pid.to_string());
        fs::create_dir_all(&dir)?;
        for file in CAPTURED_FILES {
            match sampler.read(info.pid, file) {
                Ok(bytes) => fs::write(dir.join(file), bytes)?,
                Err(err) => {
                    if let Some(errno) = err.errno_name() {
                        fs::write(dir.join(format!("{file}.error")), format!("{errno}\n"))?;
                    } else if let ReadError::Io { source, .. } = err {
                        return Err(source);
                    }
                }
            }
        }
    }
    let uname = nix::sys::utsname::uname().ok();
    let release = uname.as_ref().map(|u| u.release().to_string_lossy().into_owned());
    let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let meta = format!(
        "# written by memtree capture; read back with memtree report --proc-root DIR\n\
         privileged: {}\nkernel: {}\npage_size: {}\nprocesses: {}\ntaken_at_unix: {now}\n",
        sampler.privileged(),
        release.as_deref().unwrap_or("unknown"),
        page_size.map_or("unknown".to_string(), |p| p.to_string()),
        processes.len(),
    );
    fs::write(out.join(CAPTURE_META), meta)?;
    Ok(processes.len())
}
