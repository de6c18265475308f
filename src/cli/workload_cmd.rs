//! CLI layer: `memtree run` and `memtree compare`, and the workload target of `report`: sizes,
//! the memory guard, starting and stopping.

use std::io::{self, Write};

use anyhow::{Context, Result};

use super::{CompareArgs, RunArgs, WorkloadArgs, WorkloadChoice, open_output, usage};
use crate::model::Grouping;
use crate::report::compare::{self, VariantResult};
use crate::runner::spawn::RunningWorkload;
use crate::runner::workload::{self, Spec, Variant, check_memory};
use crate::sampler::{SampleOptions, Sampler};
use crate::units::human_bytes;

pub const DEFAULT_SIZE: u64 = 256 << 20;
pub const DEFAULT_WORKERS: usize = 4;
/// `--workload all` keeps its three workloads within this share of MemAvailable.
const ALL_SHARE: f64 = 0.8;

fn available(sampler: &Sampler) -> Result<u64> {
    Sampler::live()
        .mem_available()
        .or_else(|_| sampler.mem_available())
        .context("cannot read MemAvailable from /proc/meminfo")
}

/// The specs of a workload target, refused (exit 2) when they cannot fit in memory. `all`
/// scales its three workloads down until they fit.
pub fn specs_for(
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
pub fn start_all(specs: &[Spec]) -> Result<Vec<RunningWorkload>> {
    let mut running = Vec::with_capacity(specs.len());
    for spec in specs {
        let workload = RunningWorkload::start(*spec)
            .with_context(|| format!("cannot start the {} workload", spec.variant))?;
        running.push(workload);
    }
    Ok(running)
}

pub fn run(args: RunArgs) -> Result<i32> {
    let spec = args.workload.spec(args.variant, DEFAULT_SIZE, DEFAULT_WORKERS);
    if !args.workload.force {
        let available = available(&Sampler::live())?;
        let what = format!("memtree run {}", spec.variant);
        check_memory(spec.projected_bytes(), available, &what).map_err(usage)?;
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let status = workload::run(spec, args.hold, &mut out, args.events)
        .with_context(|| format!("the {} workload failed", spec.variant))?;
    Ok(status)
}

pub fn compare(args: CompareArgs) -> Result<i32> {
    let (mut out, style) = open_output(None)?;
    let sampler = Sampler::live();
    let specs: Vec<Spec> = Variant::ALL
        .iter()
        .map(|v| args.workload.spec(*v, DEFAULT_SIZE, DEFAULT_WORKERS))
        .collect();
    if !args.workload.force {
        // One after another: the largest must fit.
        let available = available(&sampler)?;
        for spec in &specs {
            let what = format!("compare's {} variant", spec.variant);
            check_memory(spec.projected_bytes(), available, &what).map_err(usage)?;
        }
    }
    let mut results = Vec::with_capacity(specs.len());
    for spec in &specs {
        let workload = RunningWorkload::start(*spec)
            .with_context(|| format!("cannot start the {} workload", spec.variant))?;
        let accounting = super::report_cmd::sample_trees(
            &sampler,
            &[workload.root],
            SampleOptions { exact: args.exact, dedup: args.dedup, ..SampleOptions::default() },
            &Grouping::Roots(vec![workload.root]),
        )?;
        results.push(VariantResult {
            spec: *spec,
            fill_seconds: workload.fill_seconds,
            handoff_seconds: workload.handoff_seconds,
            accounting,
        });
        workload.stop().context("cannot stop the workload")?;
    }
    compare::write(&mut out, args.format, &results, style)?;
    out.flush()?;
    Ok(0)
}
