//! Test support: the memtree binary, live helper trees, and the kernel's own figures read
//! independently of memtree's parser.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::schema::Report;

pub const MIB: u64 = 1 << 20;

pub fn memtree() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memtree"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/proc").join(name)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a test that needs root must be skipped here: never in CI (`CI` set, as `.ci/run`
/// runs as root), where an unprivileged run is a broken setup and fails the test instead of
/// letting it pass without checking anything; elsewhere it says so on stderr.
pub fn skip_unless_root(what: &str) -> bool {
    if is_root() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root, but this test runs unprivileged: {what} is not checked"
    );
    eprintln!("skipped: {what} needs root (the unprivileged path has its own test)");
    true
}

/// Runs memtree and parses its JSON report; panics with stderr on failure.
pub fn report_json(args: &[&str]) -> Report {
    let out = memtree().args(["report", "--format", "json"]).args(args).output().unwrap();
    assert!(out.status.success(), "memtree {args:?} failed: {}", text(&out.stderr));
    parse(&out.stdout)
}

pub fn parse(json: &[u8]) -> Report {
    let report: Report = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("not a memtree.report/v1 document: {e}\n{}", text(json)));
    assert_eq!(report.schema, "memtree.report/v1");
    report
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A live tree from `tests/helpers/forktree.py`: a parent holding `size_mib` of random bytes
/// and `workers` forked children that touched it. Killed (the whole process group) on drop.
pub struct ForkTree {
    child: Child,
    pub parent: u32,
    pub workers: Vec<u32>,
}

impl ForkTree {
    pub fn spawn(size_mib: u64, workers: usize, touch: &str) -> ForkTree {
        Self::spawn_with(size_mib, workers, touch, |_| {})
    }

    pub fn spawn_with(
        size_mib: u64,
        workers: usize,
        touch: &str,
        adjust: impl FnOnce(&mut Command),
    ) -> ForkTree {
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/helpers/forktree.py"))
            .args(["--size-mib", &size_mib.to_string()])
            .args(["--workers", &workers.to_string()])
            .args(["--touch", touch])
            .stdout(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("python3 runs the fork-tree helper");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let pids: Vec<u32> = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("helper said {line:?}"))
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        ForkTree { child, parent: pids[0], workers: pids[1..].to_vec() }
    }

    pub fn all(&self) -> Vec<u32> {
        std::iter::once(self.parent).chain(self.workers.iter().copied()).collect()
    }
}

impl Drop for ForkTree {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A Python 3 every user can run (a pyenv under /root is not reachable by `nobody`).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" }
}

/// The kernel's smaps_rollup of `pid`, key → bytes, read with a parser of the test's own.
pub fn kernel_rollup(pid: u32) -> std::collections::HashMap<String, u64> {
    rollup_file(&Path::new("/proc").join(pid.to_string()).join("smaps_rollup"))
}

pub fn rollup_file(path: &Path) -> std::collections::HashMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let kib: u64 = value.trim().strip_suffix(" kB")?.trim().parse().ok()?;
            Some((key.to_string(), kib * 1024))
        })
        .collect()
}

/// `a` and `b` differ by at most `slack` bytes.
pub fn close(a: u64, b: u64, slack: u64) -> bool {
    a.abs_diff(b) <= slack
}
