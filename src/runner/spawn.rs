//! Runner layer: a workload as a library. `RunningWorkload::start` runs `memtree run` in a
//! child process (so the workload's tree is apart from the memtree that inspects it), waits
//! until every worker holds its data, and stops it on `stop` or drop. The workload dies with
//! the memtree that started it (`PR_SET_PDEATHSIG`), and its workers with it.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::spec::Spec;
use super::workload::Event;

/// A workload that is running and ready: every worker holds its data.
pub struct RunningWorkload {
    child: Option<Child>,
    /// Kept open: the workload writes its last event here when it stops.
    _events: BufReader<ChildStdout>,
    pub spec: Spec,
    /// The workload's parent: the root of its tree.
    pub root: u32,
    pub workers: Vec<u32>,
    pub fill_seconds: f64,
    /// Per worker, seconds from its start to holding its data.
    pub worker_seconds: Vec<f64>,
    /// Time to hand the data to every worker.
    pub handoff_seconds: f64,
}

impl RunningWorkload {
    /// Starts `spec` with this very memtree binary.
    pub fn start(spec: Spec) -> io::Result<RunningWorkload> {
        Self::start_with(&std::env::current_exe()?, spec)
    }

    /// Starts `spec` with the memtree binary at `exe` (tests and benches name it).
    pub fn start_with(exe: &Path, spec: Spec) -> io::Result<RunningWorkload> {
        let mut cmd = Command::new(exe);
        cmd.args(["run", spec.variant.as_str()])
            .args(["--size", &spec.size_bytes.to_string()])
            .args(["--workers", &spec.workers.to_string()])
            .args(["--touch", &spec.touch.to_string()])
            .args(["--force", "--events", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its error, if it fails, becomes part of ours (one line, not two).
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)
            });
        }
        let mut child = cmd.spawn()?;
        let mut events = BufReader::new(child.stdout.take().expect("piped"));
        let (mut root, mut fill_seconds) = (child.id(), 0.0);
        let mut worker_seconds = vec![0.0; spec.workers];
        let mut line = String::new();
        let (workers, handoff_seconds) = loop {
            line.clear();
            let event = match events.read_line(&mut line) {
                Ok(0) => Err(format!("the {} workload ended before it was ready", spec.variant)),
                Ok(_) => serde_json::from_str::<Event>(&line)
                    .map_err(|e| format!("unexpected workload output {line:?}: {e}")),
                Err(e) => Err(e.to_string()),
            };
            match event {
                Ok(Event::Started { pid, .. }) => root = pid,
                Ok(Event::Filled { seconds }) => fill_seconds = seconds,
                Ok(Event::Worker { index, seconds, .. }) => {
                    if let Some(slot) = worker_seconds.get_mut(index) {
                        *slot = seconds;
                    }
                }
                Ok(Event::Ready { workers, handoff_seconds, .. }) => {
                    break (workers, handoff_seconds);
                }
                Ok(_) => {}
                Err(message) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    let mut said = String::new();
                    if let Some(mut stderr) = child.stderr.take() {
                        use std::io::Read;
                        let _ = stderr.by_ref().take(4096).read_to_string(&mut said);
                    }
                    let said = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    let said = said.trim().strip_prefix("memtree: ").unwrap_or(said.trim());
                    return Err(io::Error::other(if said.is_empty() {
                        format!("{message} ({status})")
                    } else {
                        format!("{message}: {said}")
                    }));
                }
            }
        };
        Ok(RunningWorkload {
            child: Some(child),
            _events: events,
            spec,
            root,
            workers,
            fill_seconds,
            worker_seconds,
            handoff_seconds,
        })
    }

    /// Stops the workload (SIGTERM, then SIGKILL after 5 s) and reaps it.
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(io::Error::other("already stopped"));
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RunningWorkload {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop_inner();
        }
    }
}
