//! CLI layer: the target of `report`, `top` and `compare` (`--pid`, `--all`, `--workload`,
//! `-- CMD`), resolved once for every command: the pids checked, the workloads sized against
//! the memory available and started, and what the shared sampler should watch. Starting CMD is
//! left to the command (the report follows it with its stdio untouched, the dashboard runs it
//! with its output discarded).

use anyhow::{Context, Result};

use super::{TargetArgs, WorkloadArgs, WorkloadChoice, usage};
use crate::report;
use crate::runner::spawn::RunningWorkload;
use crate::runner::spec::{Spec, Variant, check_memory};
use crate::sampler::{self, ReadError, Sampler};
use crate::units::human_bytes;

/// A built-in workload's size when none is given, and its worker count.
pub const DEFAULT_SIZE: u64 = 256 << 20;
pub const DEFAULT_WORKERS: usize = 4;
/// `--workload all` keeps its three workloads within this share of MemAvailable.
const ALL_SHARE: f64 = 0.8;

/// A target, resolved.
pub struct Resolved {
    /// How the report and the dashboard name it.
    pub described: report::Target,
    /// What the shared sampler watches.
    pub watch: sampler::Target,
    /// The workloads started for it, in the order of their specs; stopped by
    /// [`Resolved::stop`] (or, failing that, when dropped).
    pub workloads: Vec<RunningWorkload>,
}

impl Resolved {
    /// The command to run and follow, for `-- CMD`.
    pub fn command(&self) -> Option<&[String]> {
        match &self.described {
            report::Target::Command(argv) => Some(argv),
            _ => None,
        }
    }

    /// The pids given as roots (`--pid`), for the error that names a missing one.
    pub fn roots(&self) -> Vec<u32> {
        match &self.watch {
            sampler::Target::Pids(pids) => pids.clone(),
            _ => Vec::new(),
        }
    }

    /// Starts `-- CMD` for a face that watches it as long as it runs, with memtree's stdio
    /// (`serve`, `record`); `None` for any other target. A command that cannot start is bad
    /// input.
    pub fn spawn_watched(&self) -> Result<Option<std::process::Child>> {
        let Some(argv) = self.command() else { return Ok(None) };
        crate::runner::command::spawn_watched(argv, false)
            .map(Some)
            .map_err(|e| usage(format!("cannot run {:?}: {e}", crate::units::visible(&argv[0]))))
    }

    /// Stops the workloads started for the target.
    pub fn stop(&mut self) -> Result<()> {
        for workload in self.workloads.drain(..) {
            workload.stop().context("cannot stop a workload")?;
        }
        Ok(())
    }
}

/// Resolves `args`. With no target, `demo` gives the built-in workloads at that (size,
/// workers); without `demo`, no target is an error.
pub fn resolve(
    args: &TargetArgs,
    workload: &WorkloadArgs,
    sampler: &Sampler,
    demo: Option<(u64, usize)>,
) -> Result<Resolved> {
    let resolved = |described, watch| Resolved { described, watch, workloads: Vec::new() };
    if !args.command.is_empty() {
        let argv = args.command.clone();
        return Ok(resolved(report::Target::Command(argv), sampler::Target::Children));
    }
    if args.all {
        return Ok(resolved(report::Target::All, sampler::Target::Machine));
    }
    if !args.pids.is_empty() {
        // Each root must exist (the session walks their trees itself).
        for &pid in &args.pids {
            sampler.stat(pid).map_err(|e| root_error(e, &args.pids))?;
        }
        let pids = args.pids.clone();
        return Ok(resolved(report::Target::Pids(pids.clone()), sampler::Target::Pids(pids)));
    }
    let (choice, size, workers) = match (args.workload, demo) {
        (Some(choice), _) => (choice, DEFAULT_SIZE, DEFAULT_WORKERS),
        (None, Some((size, workers))) => (WorkloadChoice::All, size, workers),
        (None, None) => {
            return Err(usage(
                "no target: give --pid PID, --all, --workload VARIANT, or -- CMD [ARGS...]",
            ));
        }
    };
    let specs = workload_specs(choice, workload, sampler, size, workers)?;
    let workloads = start_workloads(&specs)?;
    let roots = workloads.iter().map(|w| w.root).collect();
    Ok(Resolved {
        described: report::Target::Workload(specs),
        watch: sampler::Target::Pids(roots),
        workloads,
    })
}

/// `MemAvailable`, from the live /proc (or the sampler's own, for a captured one).
pub fn available(sampler: &Sampler) -> Result<u64> {
    Sampler::live()
        .mem_available()
        .or_else(|_| sampler.mem_available())
        .context("cannot read MemAvailable from /proc/meminfo")
}

/// The specs of a workload target, refused (exit 2) when they cannot fit in memory. `all`
/// scales its three workloads down until they fit.
pub fn workload_specs(
    choice: WorkloadChoice,
    args: &WorkloadArgs,
    sampler: &Sampler,
    default_size: u64,
    default_workers: usize,
) -> Result<Vec<Spec>> {
    let variants: Vec<Variant> = match choice {
        WorkloadChoice::Fork => vec![Variant::Fork],
        WorkloadChoice::Serialize => vec![Variant::Serialize],
        WorkloadChoice::Shared => vec![Variant::Shared],
        WorkloadChoice::All => Variant::ALL.to_vec(),
    };
    let mut specs: Vec<Spec> =
        variants.iter().map(|v| args.spec(*v, default_size, default_workers)).collect();
    if args.force {
        return Ok(specs);
    }
    let available = available(sampler)?;
    let projected: u64 = specs.iter().map(Spec::projected_bytes).sum();
    if choice == WorkloadChoice::All && projected as f64 > available as f64 * ALL_SHARE {
        let scale = available as f64 * ALL_SHARE / projected as f64;
        let size = ((specs[0].size_bytes as f64 * scale) as u64) & !((1 << 20) - 1);
        if size < 1 << 20 {
            return Err(usage(format!(
                "--workload all needs about {} and cannot be scaled to fit the {} available",
                human_bytes(projected),
                human_bytes(available)
            )));
        }
        eprintln!(
            "memtree: --workload all: {} each would need {}; running {} each to fit in {} \
             available",
            human_bytes(specs[0].size_bytes),
            human_bytes(projected),
            human_bytes(size),
            human_bytes(available)
        );
        for spec in &mut specs {
            spec.size_bytes = size;
        }
        return Ok(specs);
    }
    let what = format!("--workload {}", variants[0]);
    check_memory(projected, available, if specs.len() == 1 { &what } else { "--workload all" })
        .map_err(usage)?;
    Ok(specs)
}

/// Starts every spec; stops the ones already started if one fails.
pub fn start_workloads(specs: &[Spec]) -> Result<Vec<RunningWorkload>> {
    let mut running = Vec::with_capacity(specs.len());
    for spec in specs {
        let workload = RunningWorkload::start(*spec)
            .with_context(|| format!("cannot start the {} workload", spec.variant))?;
        running.push(workload);
    }
    Ok(running)
}

/// Maps a root that cannot be read to a one-line usage error.
pub fn root_error(err: ReadError, pids: &[u32]) -> anyhow::Error {
    match err {
        ReadError::Vanished { path } => {
            let pid = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|p| p.to_str())
                .map_or_else(|| format!("{pids:?}"), str::to_string);
            usage(format!("no process with pid {pid}"))
        }
        other => anyhow::Error::new(other).context("cannot read the target's process list"),
    }
}
