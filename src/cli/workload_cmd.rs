//! CLI layer: `memtree run` (one built-in workload, in this process) and `memtree compare`
//! (the three one after another, each measured by one round of the shared sampler; with
//! `--python`, the seed scenario's Python programs, each followed to its peak as `report --
//! CMD` follows one).

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

const NO_OPENMETRICS: &str = "compare has no openmetrics format (its workloads end with it); \
    export a running tree with `memtree report --format openmetrics` or `memtree serve`";

/// Exact figures and duplicated content for a comparison: as root unless turned off;
/// duplicated content without root too, from the pages each worker alone maps.
fn compare_options(args: &CompareArgs, sampler: &Sampler) -> SampleOptions {
    let exact = args.exact || (sampler.privileged() && !args.no_exact);
    let dedup = args.dedup || (!args.no_exact && !args.no_dedup);
    SampleOptions { exact, dedup, ..SampleOptions::default() }
}

pub fn compare(args: CompareArgs) -> Result<i32> {
    if args.format == Format::Openmetrics {
        return Err(usage(NO_OPENMETRICS));
    }
    if args.python {
        return compare_python(args);
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
    let options = compare_options(&args, &sampler);
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

/// The frame of `compare --python` unless --size says otherwise.
const PYTHON_DEFAULT_SIZE: u64 = 64 << 20;
const PYTHON_DEFAULT_WORKERS: usize = 2;
/// How long each worker holds its frame: long enough for every worker to hold its own at once
/// on a busy machine (importing pandas and building the frame can take seconds there), and
/// for a few samples of them.
const PYTHON_HOLD_SECONDS: f64 = 4.0;
/// What one interpreter with numpy and pandas takes besides the data, for the memory check.
const INTERPRETER_BYTES: u64 = 96 << 20;

fn compare_python(args: CompareArgs) -> Result<i32> {
    use crate::model::account;
    use crate::report::compare::{PythonComparison, PythonResult};
    use crate::runner::command;
    use crate::runner::python::{COLS, Scripts, VARIANTS, interpreter};

    let (python_version, default_start_method) = interpreter(&args.interpreter).map_err(usage)?;
    let size = args.workload.size.unwrap_or(PYTHON_DEFAULT_SIZE);
    let workers = args.workload.workers.map_or(PYTHON_DEFAULT_WORKERS, usize::from);
    let rows = (size / (8 * COLS)).max(1);
    let frame_bytes = rows * COLS * 8;
    let sampler = Sampler::live();
    if !args.workload.force {
        // The worst variant: a frame in the parent and in every worker, beside its interpreter.
        let projected = (workers as u64 + 2) * (frame_bytes + INTERPRETER_BYTES);
        check_memory(projected, available(&sampler)?, "compare --python").map_err(usage)?;
    }
    let options = compare_options(&args, &sampler);
    let mut out = Output::open(None)?;
    let scripts = Scripts::write().context("cannot write the Python programs")?;
    let mut results = Vec::with_capacity(VARIANTS.len());
    for variant in VARIANTS {
        // A signal between two variants ends the comparison before the next one starts.
        if let Some(signal) = crate::runner::signals::take() {
            return Ok(128 + signal as i32);
        }
        let argv = variant.argv(&args.interpreter, &scripts, rows, workers, PYTHON_HOLD_SECONDS);
        let log = tempfile::tempfile().context("cannot make a temporary file")?;
        let mut session = Session::new(sampler.clone(), Target::Children, options)
            .on_progress(super::report_cmd::progress_on_stderr());
        let interval = std::time::Duration::from_millis(200);
        let run = command::follow_logged(&argv, &mut session, interval, Some(&log))
            .map_err(|e| usage(format!("cannot run {:?}: {e}", args.interpreter)))?;
        // Interrupted: what was asked is not measured; nothing is printed.
        if let Some(signal) = run.interrupted {
            return Ok(128 + signal as i32);
        }
        let accounting = run.peak.as_ref().map(|snapshot| {
            let mut accounting = account(snapshot, &session.grouping(snapshot));
            accounting.set_peaks(&run.peaks);
            accounting
        });
        results.push(PythonResult {
            variant,
            frame_bytes,
            workers,
            accounting,
            exit_status: run.exit_status(),
            duration_seconds: run.outcome.duration_seconds,
            said: last_line(log),
        });
    }
    drop(scripts);
    // A variant that should run and did not (killed, out of memory) fails the comparison.
    let failed = results.iter().any(|r| r.variant.succeeds && r.exit_status != 0);
    let comparison = PythonComparison { python_version, default_start_method, results };
    crate::report::compare::write_python(&mut out.writer, args.format, &comparison, out.style)
        .context("cannot write the comparison to stdout")?;
    out.finish()?;
    Ok(i32::from(failed))
}

/// The last non-empty line a program wrote to `log` (its last 8 KiB read), made visible and cut
/// to 200 characters.
fn last_line(mut log: std::fs::File) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let length = log.seek(SeekFrom::End(0)).ok()?;
    log.seek(SeekFrom::Start(length.saturating_sub(8192))).ok()?;
    let mut tail = Vec::new();
    log.take(8192).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(crate::units::shorten_right(&crate::units::visible(line), 200))
}
