//! CLI layer: `memtree run` (one built-in workload, in this process) and `memtree compare`
//! (the three one after another, each measured by one round of the shared sampler).

use std::io;

use anyhow::{Context, Result};

use super::target::{DEFAULT_SIZE, DEFAULT_WORKERS, available};
use super::{CompareArgs, Output, RunArgs, usage};
use crate::report::Format;
use crate::report::compare::{self, VariantResult};
use crate::runner::spawn::RunningWorkload;
use crate::runner::spec::{Spec, Variant, check_memory};
use crate::runner::workload;
use crate::sampler::{SampleOptions, Sampler, Session, Target};

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
    if args.format == Format::Openmetrics {
        return Err(usage(
            "compare has no openmetrics format (its workloads end with it); export a running \
             tree with `memtree report --format openmetrics` or `memtree serve`",
        ));
    }
    let mut out = Output::open(None)?;
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
    // As root, exact figures and duplicated content are measured unless turned off.
    let privileged = sampler.privileged();
    let exact = args.exact || (privileged && !args.no_exact);
    // Duplicated content is measured without root too, from the pages each worker alone maps.
    let dedup = args.dedup || (!args.no_exact && !args.no_dedup);
    let options = SampleOptions { exact, dedup, ..SampleOptions::default() };
    let mut results = Vec::with_capacity(specs.len());
    for spec in &specs {
        let workload = RunningWorkload::start(*spec)
            .with_context(|| format!("cannot start the {} workload", spec.variant))?;
        let mut session = Session::new(sampler.clone(), Target::Pids(vec![workload.root]), options)
            .on_progress(super::report_cmd::progress_on_stderr());
        let round = session.round().context("cannot read the workload's processes")?;
        results.push(VariantResult {
            spec: *spec,
            fill_seconds: workload.fill_seconds,
            handoff_seconds: workload.handoff_seconds,
            accounting: std::sync::Arc::unwrap_or_clone(round.accounting),
        });
        workload.stop().context("cannot stop the workload")?;
    }
    compare::write(&mut out.writer, args.format, &results, out.style)
        .context("cannot write the comparison to stdout")?;
    out.finish()?;
    Ok(0)
}
