//! CLI layer: `memtree report`, on pids, the whole machine, a built-in workload or a command:
//! one round of the shared sampler (or, for a command, its snapshots until it exits), handed
//! to the report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::target::{self, root_error};
use super::{Output, ReportArgs, sampler_for, usage};
use crate::model::account;
use crate::report::{self, Meta};
use crate::runner::command;
use crate::sampler::{Progress, SampleOptions, Session, session::ProgressFn};
use crate::units::human_bytes;

pub fn report(args: ReportArgs) -> Result<i32> {
    if let Some(file) = &args.from {
        return super::record_cmd::report_from(file, &args);
    }
    let sampler = sampler_for(args.proc_root.clone())?;
    let options = SampleOptions { mappings: args.mappings, exact: args.exact, dedup: args.dedup };
    let source = sampler.root().display().to_string();
    let live = !sampler.is_captured();
    let mut out = Output::open(args.output.as_ref())?;
    // The plot's format and folder are checked before CMD runs: a run is not lost to a typo.
    let plot_format = match &args.plot {
        Some(path) => {
            let shown = crate::units::visible(&path.display().to_string()).into_owned();
            let format = report::plot::format_of(path).map_err(usage)?;
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            if folder.is_some_and(|f| !f.is_dir()) {
                return Err(usage(format!("cannot draw {shown}: its folder does not exist")));
            }
            Some(format)
        }
        None => None,
    };
    let mut resolved = target::resolve(&args.target, &args.workload, &sampler, None)?;
    let roots = resolved.roots();
    let mut session =
        Session::new(sampler, resolved.watch.clone(), options).on_progress(progress_on_stderr());
    let mut plotted = None;
    let (accounting, run, status) = if let Some(argv) = resolved.command() {
        let mut series = report::plot::Series::default();
        let mut add = |t: f64, a: &crate::model::Accounting| series.add(t, a);
        let observer: Option<command::Observer> = match plot_format {
            Some(_) => Some(&mut add),
            None => None,
        };
        let run = command::follow_observed(argv, &mut session, args.interval, None, observer)
            .map_err(|e| usage(format!("cannot run {:?}: {e}", argv[0])))?;
        if let (Some(path), Some(format)) = (&args.plot, plot_format) {
            let title = format!("memtree: {}", report::plot::describe(&resolved.described));
            plotted = Some((report::plot::draw(&series, &title, path, format), path));
        }
        let status = run.exit_status();
        let snapshot = run.peak.as_ref().context("the command's tree could not be sampled")?;
        let mut accounting = account(snapshot, &session.grouping(snapshot));
        accounting.set_peaks(&run.peaks);
        (accounting, Some(run.outcome), status)
    } else {
        let round = session.round().map_err(|e| root_error(e, &roots))?;
        resolved.stop()?;
        (Arc::unwrap_or_clone(round.accounting), None, 0)
    };
    let meta = Meta { target: resolved.described.clone(), run, source, live, recorded: None };
    report::write_report(&mut out.writer, args.format, &accounting, &meta, out.style)
        .with_context(|| format!("cannot write the report to {}", out.name()))?;
    out.finish()?;
    // A plot that could not be drawn after all (a full disk) costs neither the report nor CMD's
    // status: it is said on stderr.
    if let Some((Err(e), path)) = plotted {
        let shown = crate::units::visible(&path.display().to_string()).into_owned();
        eprintln!("memtree: cannot draw {shown}: {e}");
    }
    Ok(status)
}

/// Progress of a long content pass as one line on stderr, redrawn in place, when stderr is a
/// terminal and the pass has taken more than 300 ms; the line is cleared when it ends.
pub fn progress_on_stderr() -> ProgressFn {
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    Box::new(move |progress| {
        if !terminal {
            return;
        }
        let mut stderr = std::io::stderr();
        match progress {
            Progress::Content { done, total } if started.elapsed() > Duration::from_millis(300) => {
                let _ = write!(
                    stderr,
                    "\r\x1b[2Kmemtree: hashing page contents: {} of {}",
                    human_bytes(done),
                    human_bytes(total)
                );
            }
            Progress::Content { .. } => {}
            Progress::ContentDone => {
                let _ = write!(stderr, "\r\x1b[2K");
            }
        }
    })
}
