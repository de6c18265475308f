//! Runner layer: the seed scenario as the real Python programs of `workloads/`, for
//! `memtree compare --python`. The programs are compiled into memtree (an installed binary has
//! no checkout beside it) and written to a private temporary directory, removed when done.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workload programs, by file name.
const FILES: [(&str, &str); 3] = [
    ("_common.py", include_str!("../../workloads/_common.py")),
    ("pool_module_global.py", include_str!("../../workloads/pool_module_global.py")),
    ("pool_global.py", include_str!("../../workloads/pool_global.py")),
];
const SHARED_ARRAY: (&str, &str) =
    ("pool_shared_array.py", include_str!("../../workloads/pool_shared_array.py"));

/// One variant of the seed scenario: a program and how it starts its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonVariant {
    /// Its name in the comparison.
    pub name: &'static str,
    pub program: &'static str,
    pub start_method: &'static str,
    pub extra: &'static [&'static str],
    /// Whether the program is meant to exit 0 (the seed's structure under forkserver is not).
    pub succeeds: bool,
    /// How the workers get the frame, when they share one copy.
    pub shares: &'static str,
    /// Why every worker holds a copy, when each does.
    pub copies: &'static str,
}

/// The start methods on the seed's module-level frame, the seed's own structure where the
/// global cannot be inherited, and the fix that works under every method.
pub const VARIANTS: [PythonVariant; 5] = [
    PythonVariant {
        name: "global, fork",
        program: "pool_module_global.py",
        start_method: "fork",
        extra: &[],
        succeeds: true,
        shares: "forked after the parent built it, they share it copy-on-write",
        copies: "the forked workers wrote to it",
    },
    PythonVariant {
        name: "global, forkserver",
        program: "pool_module_global.py",
        start_method: "forkserver",
        extra: &[],
        succeeds: true,
        shares: "the fork server built one copy before forking them, which they share",
        copies: "forked from a fork server that never built it, every worker imported the \
                 program anew and rebuilt it",
    },
    PythonVariant {
        name: "global, spawn",
        program: "pool_module_global.py",
        start_method: "spawn",
        extra: &[],
        succeeds: true,
        shares: "they share one copy",
        copies: "spawned as fresh interpreters, every worker imported the program anew and \
                 rebuilt it",
    },
    PythonVariant {
        name: "main() global, forkserver",
        program: "pool_global.py",
        start_method: "forkserver",
        extra: &[],
        succeeds: false,
        shares: "they share one copy",
        copies: "every worker holds its own",
    },
    PythonVariant {
        name: "shared memory, forkserver",
        program: SHARED_ARRAY.0,
        start_method: "forkserver",
        extra: &["--copy", "false"],
        succeeds: true,
        shares: "a multiprocessing.Array, mapped by every worker and wrapped with \
                 pd.DataFrame(array, copy=False)",
        copies: "every worker holds its own",
    },
];

/// Columns of the frame: the workloads' float64 columns.
pub const COLS: u64 = 8;

/// The programs, written out; the directory goes when this is dropped.
pub struct Scripts {
    dir: tempfile::TempDir,
}

impl Scripts {
    pub fn write() -> io::Result<Scripts> {
        let dir = tempfile::Builder::new().prefix("memtree-python-").tempdir()?;
        for (name, text) in FILES.iter().chain(std::iter::once(&SHARED_ARRAY)) {
            std::fs::write(dir.path().join(name), text)?;
        }
        Ok(Scripts { dir })
    }

    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.path().join(program)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl PythonVariant {
    /// The command line of this variant: `interpreter program --rows … --start-method …`.
    pub fn argv(
        &self,
        interpreter: &str,
        scripts: &Scripts,
        rows: u64,
        workers: usize,
        hold: f64,
    ) -> Vec<String> {
        let mut argv =
            vec![interpreter.to_string(), scripts.path(self.program).display().to_string()];
        for (flag, value) in [
            ("--rows", rows.to_string()),
            ("--cols", COLS.to_string()),
            ("--workers", workers.to_string()),
            ("--hold", hold.to_string()),
            ("--start-method", self.start_method.to_string()),
        ] {
            argv.extend([flag.to_string(), value]);
        }
        argv.extend(self.extra.iter().map(|s| s.to_string()));
        argv
    }
}

/// What the interpreter is: its version and default start method, or why it cannot run the
/// workloads (not found, or no numpy/pandas), in a line.
pub fn interpreter(program: &str) -> Result<(String, String), String> {
    let probe = "import multiprocessing, platform, numpy, pandas; \
                 print(platform.python_version(), multiprocessing.get_start_method())";
    let out = Command::new(program)
        .args(["-c", probe])
        .output()
        .map_err(|e| format!("cannot run {program:?}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().last().unwrap_or("").trim().to_string();
        let why = if last.is_empty() {
            format!("it exited with {}", out.status)
        } else {
            crate::units::visible(&last).into_owned()
        };
        return Err(format!(
            "{program:?} cannot import numpy and pandas ({why}): pip install -r \
             workloads/requirements.txt"
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(version), Some(method)) => Ok((version.to_string(), method.to_string())),
        _ => Err(format!("{program:?} did not say its version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_a_program_that_is_written_out() {
        let scripts = Scripts::write().unwrap();
        for v in VARIANTS {
            assert!(scripts.path(v.program).is_file(), "{}", v.program);
            let argv = v.argv("python3", &scripts, 1000, 2, 0.5);
            assert_eq!(argv[0], "python3");
            let at = argv.iter().position(|a| a == "--start-method").unwrap();
            assert_eq!(argv[at + 1], v.start_method);
        }
        assert!(scripts.path("_common.py").is_file());
        let dir = scripts.dir().to_path_buf();
        drop(scripts);
        assert!(!dir.exists(), "the programs are removed");
    }
}
