//! Runner layer: the built-in workloads. The process that runs one (`memtree run VARIANT`) is
//! the workload's parent: it fills SIZE bytes with pseudo-random data and hands them to N
//! workers in one of three ways, the three ways a Python `multiprocessing.Pool` gets a
//! DataFrame to its workers:
//!
//! - `fork` (`fork_cow`): workers are forked after the fill and inherit the buffer
//!   copy-on-write;
//! - `serialize` (`serialize_copy`): workers are forked after the fill (as a Pool's are) and
//!   each receives the whole buffer again through a pipe into a buffer of its own, as pickling
//!   does;
//! - `shared` (`shm_shared`): one memfd mapped `MAP_SHARED`, which every worker maps and
//!   touches.
//!
//! Nothing is left behind: workers die with the parent (`PR_SET_PDEATHSIG`, checked right after
//! it is set), the parent kills and reaps them on every exit path (return, signal, panic), and a
//! memfd has no name in /dev/shm and goes with its last user.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{SigHandler, Signal, kill, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, ftruncate, getppid, pipe, read, write};
use serde::{Deserialize, Serialize};

use super::memory::{self, Region};
use super::signals;
use super::spec::{DATA_SEED, PIPE_BYTES, Spec, Touch, Variant};

/// What the workload reports as it goes: printed for people, or one JSON object a line for
/// the memtree that started it (`--events json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started { variant: Variant, size_bytes: u64, workers: usize, touch: String, pid: u32 },
    Filled { seconds: f64 },
    Worker { index: usize, pid: u32, seconds: f64, pages: u64 },
    Ready { pid: u32, workers: Vec<u32>, handoff_seconds: f64 },
    Holding { seconds: Option<f64> },
    Stopped { signal: Option<i32> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventFormat {
    Human,
    Json,
}

struct Reporter<'a> {
    out: &'a mut dyn Write,
    format: EventFormat,
    spec: Spec,
}

impl Reporter<'_> {
    fn emit(&mut self, event: Event) -> io::Result<()> {
        match self.format {
            EventFormat::Json => {
                serde_json::to_writer(&mut *self.out, &event)?;
                writeln!(self.out)?;
            }
            EventFormat::Human => {
                if let Some(line) = self.human(&event) {
                    writeln!(self.out, "{line}")?;
                }
            }
        }
        self.out.flush()
    }

    fn human(&self, event: &Event) -> Option<String> {
        use crate::units::human_bytes;
        let spec = &self.spec;
        let size = human_bytes(spec.size_bytes);
        Some(match event {
            Event::Started { pid, .. } => format!(
                "memtree run {}: parent pid {pid} ({}), {}, {size} of pseudo-random data, \
                 touch {}",
                spec.variant,
                spec.variant.mechanism(),
                crate::units::count(spec.workers, "worker", "workers"),
                spec.touch
            ),
            Event::Filled { seconds } => format!(
                "filled {size} in {seconds:.3} s ({}/s){}",
                human_bytes((spec.size_bytes as f64 / seconds.max(1e-9)) as u64),
                if spec.variant == Variant::Shared {
                    " in a memfd mapped MAP_SHARED"
                } else {
                    " in the parent's private memory"
                }
            ),
            Event::Worker { index, pid, seconds, pages } => {
                let how = match spec.variant {
                    Variant::Fork => "inherited the buffer copy-on-write".to_string(),
                    Variant::Serialize => format!(
                        "received its own copy through a pipe ({}/s)",
                        human_bytes((spec.size_bytes as f64 / seconds.max(1e-9)) as u64)
                    ),
                    Variant::Shared => "mapped the shared memfd".to_string(),
                };
                let touched = match spec.touch {
                    Touch::None => String::new(),
                    Touch::Read => format!(", read {pages} pages"),
                    Touch::Write(_) => format!(", wrote to {pages} pages"),
                };
                format!("worker {index} (pid {pid}): {how}{touched}, in {seconds:.3} s")
            }
            Event::Ready { pid, workers, handoff_seconds } => format!(
                "ready: every worker holds its data (hand-off {handoff_seconds:.3} s in all); \
                 the tree is pid {pid} and {} — look at it with: memtree report --pid {pid}",
                crate::units::count(workers.len(), "worker", "workers")
            ),
            Event::Holding { seconds: Some(s) } => format!("holding for {s:.1} s (Ctrl-C to stop)"),
            Event::Holding { seconds: None } => "holding until Ctrl-C".to_string(),
            Event::Stopped { signal: Some(s) } => {
                format!("stopped by signal {s}: workers killed and reaped, nothing left behind")
            }
            Event::Stopped { signal: None } => {
                "done: workers killed and reaped, nothing left behind".to_string()
            }
        })
    }
}

/// The workers of a running workload: killed (SIGKILL) and reaped on drop, so every way out
/// of `run` — return, error, panic — leaves none behind.
struct Workers {
    pids: Vec<Pid>,
}

impl Workers {
    /// The first worker that has died, if any (a worker only exits when killed).
    fn casualty(&mut self) -> Option<(usize, WaitStatus)> {
        for (index, pid) in self.pids.iter().enumerate() {
            match waitpid(*pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => {}
                Ok(status) => return Some((index, status)),
            }
        }
        None
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        for pid in &self.pids {
            while let Err(Errno::EINTR) = waitpid(*pid, None) {}
        }
    }
}

/// Why `run` stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stopped by signal {}", *.0 as i32)]
    Signalled(Signal),
    #[error("worker {index} (pid {pid}) died before it held its data: {status:?}")]
    WorkerDied { index: usize, pid: i32, status: WaitStatus },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<Errno> for RunError {
    fn from(errno: Errno) -> Self {
        RunError::Io(errno.into())
    }
}

/// Runs the workload in this process (which becomes its parent) until `hold` has passed
/// (`None`: until a signal). Returns the exit status: 0, or 128 + the signal that stopped it.
pub fn run(
    spec: Spec,
    hold: Option<Duration>,
    out: &mut dyn Write,
    format: EventFormat,
) -> Result<i32, RunError> {
    signals::catch()?;
    let mut reporter = Reporter { out, format, spec };
    let me = std::process::id();
    let name = std::ffi::CString::new(spec.variant.mechanism()).expect("no NUL");
    let _ = nix::sys::prctl::set_name(&name);
    reporter.emit(Event::Started {
        variant: spec.variant,
        size_bytes: spec.size_bytes,
        workers: spec.workers,
        touch: spec.touch.to_string(),
        pid: me,
    })?;

    let result = run_workers(spec, hold, &mut reporter);
    match result {
        Ok(()) => {
            reporter.emit(Event::Stopped { signal: None })?;
            Ok(0)
        }
        Err(RunError::Signalled(signal)) => {
            let _ = reporter.emit(Event::Stopped { signal: Some(signal as i32) });
            Ok(128 + signal as i32)
        }
        Err(other) => Err(other),
    }
}

fn run_workers(
    spec: Spec,
    hold: Option<Duration>,
    reporter: &mut Reporter<'_>,
) -> Result<(), RunError> {
    let len = usize::try_from(spec.size_bytes).map_err(|_| io::Error::other("size too large"))?;
    let page = memory::page_size();
    let start = Instant::now();
    let (mut region, _memfd) = match spec.variant {
        Variant::Shared => {
            // No name in /dev/shm: the segment lives exactly as long as a process maps it.
            let name = format!("memtree-shared-{}", std::process::id());
            let fd = memfd_create(name.as_str(), MFdFlags::MFD_CLOEXEC)?;
            ftruncate(&fd, spec.size_bytes as i64)?;
            (Region::shared(&fd, len)?, Some(fd))
        }
        _ => (Region::anonymous(len)?, None),
    };
    memory::fill(region.bytes_mut(), DATA_SEED);
    reporter.emit(Event::Filled { seconds: start.elapsed().as_secs_f64() })?;
    check_signal()?;

    // Workers report `[index, pages]` on one pipe (16-byte writes are atomic).
    let (status_read, status_write) = pipe()?;
    let mut workers = Workers { pids: Vec::with_capacity(spec.workers) };
    let mut started = Vec::with_capacity(spec.workers);
    let mut data_pipes: Vec<OwnedFd> = Vec::new();
    let parent = Pid::this();
    for index in 0..spec.workers {
        let data = if spec.variant == Variant::Serialize {
            let (r, w) = pipe()?;
            // A larger pipe moves the copy in fewer, larger steps; a refusal only slows it.
            let _ = fcntl(&w, FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32));
            data_pipes.push(w);
            Some(r)
        } else {
            None
        };
        started.push(Instant::now());
        // SAFETY: this process is single-threaded (the workload runs in a process of its
        // own), so the child may allocate and run ordinary code.
        match unsafe { fork() }? {
            ForkResult::Child => {
                worker(index, spec, parent, &mut region, data, &status_write, page);
            }
            ForkResult::Parent { child } => workers.pids.push(child),
        }
    }
    drop(status_write);

    let mut seconds = vec![0.0; spec.workers];
    if spec.variant == Variant::Serialize {
        // As a Pool pickles each task's argument in turn: one worker after another.
        for (index, pipe) in data_pipes.iter().enumerate() {
            started[index] = Instant::now();
            write_all(pipe, region.bytes())?;
            let (done, pages) = await_worker(&status_read, &mut workers)?;
            seconds[done] = started[done].elapsed().as_secs_f64();
            emit_worker(reporter, &workers, done, seconds[done], pages)?;
        }
    } else {
        for _ in 0..spec.workers {
            let (done, pages) = await_worker(&status_read, &mut workers)?;
            seconds[done] = started[done].elapsed().as_secs_f64();
            emit_worker(reporter, &workers, done, seconds[done], pages)?;
        }
    }
    drop(data_pipes);
    reporter.emit(Event::Ready {
        pid: std::process::id(),
        workers: workers.pids.iter().map(|p| p.as_raw() as u32).collect(),
        handoff_seconds: match spec.variant {
            Variant::Serialize => seconds.iter().sum(),
            _ => seconds.iter().copied().fold(0.0, f64::max),
        },
    })?;

    reporter.emit(Event::Holding { seconds: hold.map(|h| h.as_secs_f64()) })?;
    // A fault the tests inject to prove a panic leaves nothing behind.
    if std::env::var_os("MEMTREE_TEST_PANIC_WHEN_READY").is_some() {
        panic!("MEMTREE_TEST_PANIC_WHEN_READY is set");
    }
    let until = hold.map(|h| Instant::now() + h);
    while until.is_none_or(|t| Instant::now() < t) {
        check_signal()?;
        if let Some((index, status)) = workers.casualty() {
            return Err(RunError::WorkerDied { index, pid: workers.pids[index].as_raw(), status });
        }
        let left = until.map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))
        });
        std::thread::sleep(left);
    }
    drop(workers);
    Ok(())
}

fn emit_worker(
    reporter: &mut Reporter<'_>,
    workers: &Workers,
    index: usize,
    seconds: f64,
    pages: u64,
) -> io::Result<()> {
    reporter.emit(Event::Worker { index, pid: workers.pids[index].as_raw() as u32, seconds, pages })
}

fn check_signal() -> Result<(), RunError> {
    match signals::take() {
        Some(signal) => Err(RunError::Signalled(signal)),
        None => Ok(()),
    }
}

/// Waits for one worker's `[index, pages]` record, watching for signals and dead workers.
fn await_worker(status: &OwnedFd, workers: &mut Workers) -> Result<(usize, u64), RunError> {
    loop {
        check_signal()?;
        let mut fds = [PollFd::new(status.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(Errno::EINTR) => {
                if let Some((index, status)) = workers.casualty() {
                    return Err(RunError::WorkerDied {
                        index,
                        pid: workers.pids[index].as_raw(),
                        status,
                    });
                }
            }
            Ok(_) => {
                let mut record = [0u8; 16];
                let n = read(status, &mut record)?;
                if n != record.len() {
                    return Err(io::Error::other("a worker's status pipe closed early").into());
                }
                let index = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
                let pages = u64::from_le_bytes(record[8..].try_into().expect("8 bytes"));
                return Ok((index as usize, pages));
            }
            Err(errno) => return Err(errno.into()),
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), RunError> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => check_signal()?,
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match read(fd, &mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// A worker's whole life, in the forked child: never returns.
fn worker(
    index: usize,
    spec: Spec,
    parent: Pid,
    inherited: &mut Region,
    data: Option<OwnedFd>,
    status: &OwnedFd,
    page: usize,
) -> ! {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> io::Result<()> {
        // Die with the parent, and make sure it did not die before this was set.
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        if getppid() != parent {
            return Err(io::Error::other("parent gone"));
        }
        // The parent's signal flags are not the worker's business: default actions.
        for sig in signals::CAUGHT {
            // SAFETY: restoring the default disposition is always sound.
            unsafe { signal(sig, SigHandler::SigDfl) }?;
        }
        let name = format!("{}-w{index}", spec.variant.worker_prefix());
        let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(name).expect("no NUL"));

        let mut own;
        let buf: &mut [u8] = match data {
            Some(pipe) => {
                own = Region::anonymous(inherited.bytes().len())?;
                read_exact(&pipe, own.bytes_mut())?;
                own.bytes_mut()
            }
            None => inherited.bytes_mut(),
        };
        let pages = match spec.touch {
            Touch::None => 0,
            Touch::Read => memory::read_pages(buf, page),
            // 1 + index: no two workers' copies are alike (255 workers before one repeats).
            Touch::Write(fraction) => {
                memory::write_pages(buf, page, fraction, (index % 255) as u8 + 1)
            }
        };
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&(index as u64).to_le_bytes());
        record[8..].copy_from_slice(&(pages as u64).to_le_bytes());
        write(status, &record)?;
        // Hold the data until killed.
        loop {
            nix::unistd::pause();
        }
    }));
    let code = match outcome {
        Ok(Err(_)) => 1,
        _ => 101,
    };
    // SAFETY: _exit ends the child at once, without running the parent's atexit handlers or
    // flushing its copy of stdio buffers.
    unsafe { nix::libc::_exit(code) }
}
