//! CLI layer: `memtree report`, on pids, the whole machine, a built-in workload or a command.

use std::io::Write;

use anyhow::{Context, Result};

use super::workload_cmd::{self, DEFAULT_SIZE, DEFAULT_WORKERS};
use super::{ReportArgs, UsageError, open_output, root_error, sampler_for, usage};
use crate::model::{Accounting, Grouping, Snapshot, account};
use crate::report::{self, Meta, Target};
use crate::runner::command;
use crate::sampler::{SampleOptions, Sampler};

pub fn report(args: ReportArgs) -> Result<i32> {
    let sampler = sampler_for(args.proc_root.clone())?;
    let options = SampleOptions { mappings: args.mappings, exact: args.exact, dedup: args.dedup };
    let source = sampler.root().display().to_string();
    let (mut out, style) = open_output(args.output.as_ref())?;
    let t = &args.target;
    let self_pid = std::process::id();
    let (accounting, target, run, status) = if !t.command.is_empty() {
        let run = command::follow(&t.command, &sampler, options, args.interval)
            .map_err(|e| usage(format!("cannot run {:?}: {e}", t.command[0])))?;
        let status = run.exit_status();
        let snapshot = run.peak.clone().unwrap_or_else(|| Snapshot {
            taken_at_unix: 0.0,
            privileged: sampler.privileged(),
            processes: Vec::new(),
            pfn_table: None,
            page_size: 4096,
        });
        // CMD, and any orphan of its tree re-parented to memtree, roots a tree.
        let roots: Vec<u32> =
            snapshot.processes.iter().filter(|p| p.ppid == self_pid).map(|p| p.pid).collect();
        let mut accounting = account(&snapshot, &Grouping::Roots(roots));
        accounting.set_peaks(&run.peaks);
        (accounting, Target::Command(t.command.clone()), Some(run.outcome), status)
    } else if let Some(choice) = t.workload {
        let specs = workload_cmd::specs_for(
            choice,
            &args.workload,
            &sampler,
            DEFAULT_SIZE,
            DEFAULT_WORKERS,
        )?;
        let running = workload_cmd::start_all(&specs)?;
        let roots: Vec<u32> = running.iter().map(|w| w.root).collect();
        let accounting = sample_trees(&sampler, &roots, options, &Grouping::Roots(roots.clone()))?;
        for workload in running {
            workload.stop().context("cannot stop the workload")?;
        }
        (accounting, Target::Workload(specs), None, 0)
    } else if t.all {
        let mut processes = sampler.scan().context("cannot list processes")?;
        if !sampler.is_captured() {
            processes.retain(|p| p.pid != self_pid);
        }
        let accounting = account(&sampler.sample(&processes, options), &Grouping::Machine);
        (accounting, Target::All, None, 0)
    } else if !t.pids.is_empty() {
        let grouping = Grouping::Roots(t.pids.clone());
        let accounting = sample_trees(&sampler, &t.pids, options, &grouping)?;
        (accounting, Target::Pids(t.pids.clone()), None, 0)
    } else {
        return Err(UsageError(
            "no target: give --pid PID, --all, --workload VARIANT, or -- CMD [ARGS...]".into(),
        )
        .into());
    };
    let meta = Meta { target, run, source };
    report::write_report(&mut out, args.format, &accounting, &meta, style)?;
    out.flush()?;
    Ok(status)
}

/// Samples the trees under `roots` (memtree itself left out) and accounts them.
pub fn sample_trees(
    sampler: &Sampler,
    roots: &[u32],
    options: SampleOptions,
    grouping: &Grouping,
) -> Result<Accounting> {
    let mut processes = sampler.descendants(roots).map_err(|e| root_error(e, roots))?;
    if !sampler.is_captured() {
        let self_pid = std::process::id();
        processes.retain(|p| p.pid != self_pid);
    }
    Ok(account(&sampler.sample(&processes, options), grouping))
}
