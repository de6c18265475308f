//! Runner layer: `report -- CMD`. Runs CMD with its stdio untouched, samples its whole tree
//! until it exits — memtree becomes a child subreaper, so descendants whose parent exits stay
//! in the tree — and keeps the sample at the tree's peak footprint.
//!
//! Signals, as `timeout` does with its command, but for the whole tree: SIGTERM and SIGHUP
//! sent to memtree are forwarded to every process of CMD's tree; SIGINT and SIGQUIT (which a
//! terminal's Ctrl-C and Ctrl-\ send to the whole foreground group, CMD included) are forwarded
//! to the processes of the tree that left memtree's process group, which the terminal did not
//! reach. memtree keeps sampling until CMD exits, reports what it saw, and exits with CMD's
//! status. Whatever ends CMD, processes of its tree still running when it has exited — orphans
//! re-parented to memtree — are stopped (SIGTERM, then SIGKILL after 2 s) and reaped: nothing
//! is left behind.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::signals;
use crate::model::Snapshot;
use crate::model::accounting::Peak;
use crate::model::peak::PeakTracker;
use crate::sampler::{Sampler, Session};

/// How a `report -- CMD` run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Exit code when CMD exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when CMD was killed by one.
    pub signal: Option<i32>,
    pub duration_seconds: f64,
    /// Samples of the tree taken while it ran.
    pub samples: usize,
    /// The highest footprint any sample had (the reported sample is within 5 % of it).
    pub peak_footprint: Option<u64>,
}

/// The result of following a command.
pub struct FollowedRun {
    /// The tree at its peak footprint (the last sample if none could be read; `None` if no
    /// sample was taken at all).
    pub peak: Option<Snapshot>,
    pub peaks: std::collections::HashMap<u32, Peak>,
    pub outcome: RunOutcome,
    /// The root of the followed tree (CMD's pid).
    pub pid: u32,
    /// The last signal memtree was sent while CMD ran (and passed on to it).
    pub interrupted: Option<Signal>,
}

impl FollowedRun {
    /// The exit status memtree passes on: CMD's code, or 128 + the signal that killed it.
    pub fn exit_status(&self) -> i32 {
        match (self.outcome.exit_code, self.outcome.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            _ => 1,
        }
    }
}

/// Runs `argv` and follows its tree, a snapshot from `session` (which watches memtree's
/// children) every `interval`. `Err` only when CMD cannot be started.
pub fn follow(
    argv: &[String],
    session: &mut Session,
    interval: Duration,
) -> io::Result<FollowedRun> {
    follow_logged(argv, session, interval, None)
}

/// [`follow`], with CMD's stdout and stderr written to `log` instead of memtree's (its stdin
/// is then /dev/null).
pub fn follow_logged(
    argv: &[String],
    session: &mut Session,
    interval: Duration,
    log: Option<&std::fs::File>,
) -> io::Result<FollowedRun> {
    follow_observed(argv, session, interval, log, None)
}

/// Each sample of a followed run, accounted, with its time since CMD started (for a plot).
pub type Observer<'a> = &'a mut dyn FnMut(f64, &crate::model::Accounting);

/// [`follow_logged`], with every sample also handed to `observe`.
pub fn follow_observed(
    argv: &[String],
    session: &mut Session,
    interval: Duration,
    log: Option<&std::fs::File>,
    mut observe: Option<Observer>,
) -> io::Result<FollowedRun> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given after --"))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    signals::catch().map_err(io::Error::from)?;
    let started = Instant::now();
    let mut command = Command::new(program);
    command.args(args);
    if let Some(log) = log {
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
    }
    let child = command.spawn()?;
    let pid = child.id();

    let mut tracker = PeakTracker::new();
    let mut status: Option<WaitStatus> = None;
    let mut interrupted = None;
    while status.is_none() {
        let sample_start = Instant::now();
        if let Ok(sample) = session.sample() {
            if let Some(observe) = observe.as_mut() {
                let accounting = crate::model::account(&sample.snapshot, &sample.grouping);
                observe(started.elapsed().as_secs_f64(), &accounting);
            }
            tracker.observe(sample.snapshot);
        }
        status = reap(pid);
        if status.is_some() {
            break;
        }
        if let Some(signal) = signals::take() {
            forward(signal, session.sampler());
            interrupted = Some(signal);
        }
        // Never spend more than half of one core sampling: wait at least as long as a
        // sample took.
        thread::sleep(interval.max(sample_start.elapsed()));
        if status.is_none() {
            status = reap(pid);
        }
    }
    // A signal that came as CMD exited (a Ctrl-C reaches both) is still memtree's.
    if interrupted.is_none() {
        interrupted = signals::take();
    }
    // `child` is never waited through std: waitpid above reaped it.
    drop(child);
    stop_leftovers(session.sampler());
    let (exit_code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (Some(code), None),
        Some(WaitStatus::Signaled(_, signal, _)) => (None, Some(signal as i32)),
        _ => (None, None),
    };
    let samples = tracker.samples();
    let peak_footprint = tracker.max_footprint();
    let (peak, peaks) = tracker.finish();
    Ok(FollowedRun {
        peak,
        peaks,
        outcome: RunOutcome {
            exit_code,
            signal,
            duration_seconds: started.elapsed().as_secs_f64(),
            samples,
            peak_footprint,
        },
        pid,
        interrupted,
    })
}

/// Sends `signal` to the processes of the followed tree it should reach (module docs).
pub fn forward(signal: Signal, sampler: &Sampler) {
    let me = std::process::id();
    let group = nix::unistd::getpgrp();
    let Ok(tree) = sampler.descendants(&[me]) else { return };
    for info in tree.iter().filter(|p| p.pid != me) {
        let pid = Pid::from_raw(info.pid as i32);
        let reached_by_terminal = matches!(signal, Signal::SIGINT | Signal::SIGQUIT)
            && nix::unistd::getpgid(Some(pid)).is_ok_and(|g| g == group);
        if !reached_by_terminal {
            let _ = kill(pid, signal);
        }
    }
}

/// Stops what is left of the tree once CMD has exited (or memtree is asked to end): SIGTERM,
/// SIGKILL after 2 s, reaped.
pub fn stop_leftovers(sampler: &Sampler) {
    let me = std::process::id();
    let left = |sampler: &Sampler| -> Vec<Pid> {
        sampler
            .descendants(&[me])
            .unwrap_or_default()
            .iter()
            .filter(|p| p.pid != me && p.state != 'Z')
            .map(|p| Pid::from_raw(p.pid as i32))
            .collect()
    };
    let mut pids = left(sampler);
    if pids.is_empty() {
        let _ = reap(0);
        return;
    }
    for &pid in &pids {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        let _ = reap(0);
        pids = left(sampler);
    }
    for &pid in &pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    while !left(sampler).is_empty() && Instant::now() < deadline + Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(10));
        let _ = reap(0);
    }
    let _ = reap(0);
}

/// Starts `argv` for the dashboard: stdin, stdout and stderr on /dev/null (they would draw over
/// the screen), memtree a child subreaper (so the command's orphans stay in its tree), and the
/// command sent SIGTERM if memtree dies.
pub fn spawn_quiet(argv: &[String]) -> io::Result<std::process::Child> {
    spawn_watched(argv, true)
}

/// Starts `argv` for a face that watches it for as long as it runs (`serve -- CMD`: its stdio
/// is memtree's, unless `quiet`), as [`spawn_quiet`] does otherwise. Its status is
/// [`exited`]'s; what is left of its tree, [`stop_leftovers`]'.
pub fn spawn_watched(argv: &[String], quiet: bool) -> io::Result<std::process::Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given after --"))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    if quiet {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    }
    // SAFETY: prctl is async-signal-safe: the command dies with memtree.
    unsafe {
        cmd.pre_exec(|| set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from));
    }
    cmd.spawn()
}

/// Reaps memtree's exited children; `pid`'s exit status (128 + the signal that ended it) once
/// it has exited.
pub fn exited(pid: u32) -> Option<i32> {
    match ended(pid)? {
        (Some(code), _) => Some(code),
        (None, Some(signal)) => Some(128 + signal),
        _ => Some(1),
    }
}

/// [`exited`], told apart: `(exit code, signal)` once `pid` has exited (a command that exits
/// 130 is not one killed by SIGINT).
pub fn ended(pid: u32) -> Option<(Option<i32>, Option<i32>)> {
    match reap(pid)? {
        WaitStatus::Exited(_, code) => Some((Some(code), None)),
        WaitStatus::Signaled(_, signal, _) => Some((None, Some(signal as i32))),
        _ => Some((None, None)),
    }
}

/// Reaps every exited child (orphans re-parented to memtree included) and returns CMD's
/// status once it has exited.
fn reap(cmd: u32) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return found,
            Ok(status @ (WaitStatus::Exited(p, _) | WaitStatus::Signaled(p, _, _))) => {
                if p.as_raw() as u32 == cmd {
                    found = Some(status);
                }
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return found,
        }
    }
}
