//! CLI layer: `memtree serve`: listens first (an address in use or malformed is bad input),
//! resolves the target (the whole machine when none is given), takes the first round, and hands
//! a paced shared-sampler session to the exporter until a signal, the command's exit or the
//! target's end. Whatever ends it, the command's tree and the workloads it started are stopped.

use std::time::Duration;

use anyhow::{Context, Result};

use super::target::{self, root_error};
use super::{GroupBy, ServeArgs, TargetArgs, usage};
use crate::runner::{command, signals};
use crate::sampler::{Cadence, SampleOptions, Sampler, Session};
use crate::serve::{self, Ended, Options};
use crate::units::visible;

/// The shortest sampling interval `serve` takes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Every process is read in full, changed or not, at least this often; and the costly passes
/// run at least this often unless their budget says otherwise.
const FULL_EVERY: Duration = Duration::from_secs(300);
/// How long a signal may wait for the loop before it ends memtree anyway.
const WATCHDOG_GRACE: Duration = Duration::from_secs(3);

pub fn serve(args: ServeArgs) -> Result<i32> {
    let sampler = Sampler::live();
    let t = &args.target;
    let everything =
        TargetArgs { pids: Vec::new(), all: true, workload: None, command: Vec::new() };
    let no_target = t.pids.is_empty() && !t.all && t.workload.is_none() && t.command.is_empty();
    let target_args = if no_target { &everything } else { t };
    // Listen before anything starts, so a taken address leaves nothing behind.
    let listener = serve::listen(args.listen).map_err(|e| {
        usage(format!("cannot listen on {}: {}", args.listen, visible(&e.to_string())))
    })?;
    signals::catch().context("cannot catch signals")?;
    // If a signal is not taken within the grace (memtree stuck in a first round over the
    // whole machine's pages), it ends memtree as it would have; what it started dies with it.
    let _watchdog = signals::Watchdog::start(WATCHDOG_GRACE);
    let mut resolved = target::resolve(target_args, &args.workload, &sampler, None)?;
    let roots = resolved.roots();
    let child = resolved.spawn_watched()?;
    let interval = args.interval.max(MIN_INTERVAL);
    let privileged = sampler.privileged();
    let options = SampleOptions {
        mappings: false,
        exact: privileged && !args.no_exact,
        // Without root, duplicated content is measured from the pages each process alone maps.
        dedup: !args.no_exact && !args.no_dedup,
    };
    let cadence = Cadence {
        full_every: FULL_EVERY.max(interval),
        exact_every: args.exact_interval.max(interval),
        exact_budget: 100,
        exact_full_every: FULL_EVERY.max(args.exact_interval),
        // 0.9 %: the exporter's goal is 1 % of a core.
        session_budget: 110,
        keep_moved_exact: true,
        walk_budget: 50,
    };
    let mut session =
        Session::new(sampler.clone(), resolved.watch.clone(), options).with_cadence(cadence);
    if args.group_by == GroupBy::Name {
        session = session.grouped_by_name();
    }
    let first = match session.round() {
        Ok(round) => round,
        Err(e) => {
            if child.is_some() {
                command::forward(nix::sys::signal::Signal::SIGTERM, &sampler);
                command::stop_leftovers(&sampler);
            }
            return Err(root_error(e, &roots));
        }
    };
    let what = match args.group_by {
        GroupBy::Tree => "a group per tree",
        GroupBy::Name => "a group per process name",
    };
    eprintln!(
        "memtree: serving http://{}/metrics ({what}; a sample every {})",
        args.listen,
        crate::units::human_duration(interval)
    );
    let options = Options {
        interval,
        max_groups: args.max_groups as usize,
        per_process: args.per_process.map(|n| n as usize),
    };
    let pid = child.as_ref().map(std::process::Child::id);
    let mut status = None;
    let ended = serve::serve(listener, session, first, &options, || {
        if let Some(pid) = pid
            && let Some(code) = command::exited(pid)
        {
            status = Some(code);
            return true;
        }
        signals::take().is_some()
    });
    // `child` is never waited through std: `exited` reaps it.
    drop(child);
    if pid.is_some() {
        if status.is_none() {
            command::forward(nix::sys::signal::Signal::SIGTERM, &sampler);
        }
        command::stop_leftovers(&sampler);
    }
    resolved.stop()?;
    if ended == Ended::TargetGone {
        eprintln!("memtree: every process of the target has exited");
    }
    Ok(status.unwrap_or(0))
}
