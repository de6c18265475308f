//! CLI layer: the command line (clap derive) and what each subcommand does with the sampler,
//! the model and the report. Bad input becomes a [`UsageError`]: one line, exit status 2.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::model::{Grouping, account};
use crate::report::{self, Format, Meta, Style, Target};
use crate::runner::command;
use crate::sampler::{ReadError, SampleOptions, Sampler, capture};
use crate::units;

/// Bad input: printed as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

#[derive(Debug, Parser)]
#[command(
    name = "memtree",
    version,
    about = "How much memory a process tree really uses, and which of it is truly duplicated \
             rather than shared.",
    after_help = "Examples:\n  memtree report --pid 1234\n  memtree report --all --format json | jq \
                  .totals\n  memtree report -- python3 train.py"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print a one-shot report of a process tree: RSS, PSS, USS, shared, swap, and what the
    /// tree really uses.
    Report(ReportArgs),
    /// Copy the /proc files of a process tree into a directory, for a bug report or a test
    /// fixture; `report --proc-root DIR` reads it back.
    Capture(CaptureArgs),
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Report the tree rooted at PID (repeatable: one tree per PID).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Report every process on the machine, grouped by tree.
    #[arg(long, conflicts_with = "pids")]
    pub all: bool,
    /// Run CMD, follow its tree until it exits, and report the tree at its peak footprint.
    #[arg(last = true, value_name = "CMD", conflicts_with_all = ["pids", "all"])]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also read every mapping (`/proc/PID/smaps`) and group them by name across the tree.
    #[arg(long)]
    pub mappings: bool,
    /// Write the report to FILE instead of stdout (with `-- CMD`, keeps it apart from CMD's
    /// own output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read a /proc captured with `memtree capture` instead of the live one.
    #[arg(long, value_name = "DIR")]
    pub proc_root: Option<PathBuf>,
    /// With `-- CMD`: how often to sample the running tree (it never takes more than half of
    /// one core).
    #[arg(long, value_name = "DURATION", default_value = "25ms", value_parser = units::parse_duration)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Capture the tree rooted at PID (repeatable).
    #[arg(long = "pid", value_name = "PID", required = true)]
    pub pids: Vec<u32>,
    /// The directory to write (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Report(args) => report(args),
        Cmd::Capture(args) => capture_cmd(args),
    }
}

fn sampler_for(proc_root: Option<PathBuf>) -> Result<Sampler> {
    match proc_root {
        None => Ok(Sampler::live()),
        Some(dir) => {
            if !dir.is_dir() {
                return Err(usage(format!("--proc-root {}: not a directory", dir.display())));
            }
            Ok(Sampler::with_root(dir))
        }
    }
}

/// Maps a root that cannot be read to a one-line usage error.
fn root_error(err: ReadError, pids: &[u32]) -> anyhow::Error {
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

fn report(args: ReportArgs) -> Result<i32> {
    let sampler = sampler_for(args.proc_root.clone())?;
    let options = SampleOptions { mappings: args.mappings };
    let source = sampler.root().display().to_string();
    // Opened first: a report path that cannot be written fails before anything runs.
    let (mut out, style): (io::BufWriter<Box<dyn Write>>, Style) = match &args.output {
        None => {
            let color = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            (io::BufWriter::new(Box::new(io::stdout().lock())), Style { color })
        }
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| {
                usage(format!("cannot write the report to {}: {e}", path.display()))
            })?;
            (io::BufWriter::new(Box::new(file)), Style { color: false })
        }
    };
    let t = &args.target;
    let (accounting, meta, status) = if !t.command.is_empty() {
        if args.proc_root.is_some() {
            return Err(usage("--proc-root cannot be used with -- CMD: a command runs live"));
        }
        let run = command::follow(&t.command, &sampler, options, args.interval)
            .map_err(|e| usage(format!("cannot run {:?}: {e}", t.command[0])))?;
        let status = run.exit_status();
        let mut accounting = match &run.peak {
            Some(snapshot) => account(snapshot, &Grouping::Roots(vec![run.pid])),
            None => account(
                &crate::model::Snapshot {
                    taken_at_unix: 0.0,
                    privileged: sampler.privileged(),
                    processes: Vec::new(),
                },
                &Grouping::Roots(vec![]),
            ),
        };
        // Orphans re-parented to memtree form trees of their own: keep them too.
        if let Some(snapshot) = &run.peak {
            let roots: Vec<u32> = snapshot
                .processes
                .iter()
                .filter(|p| p.ppid == std::process::id())
                .map(|p| p.pid)
                .collect();
            accounting = account(snapshot, &Grouping::Roots(roots));
        }
        accounting.set_peaks(&run.peaks);
        let meta =
            Meta { target: Target::Command(t.command.clone()), run: Some(run.outcome), source };
        (accounting, meta, status)
    } else if t.all {
        let self_pid = std::process::id();
        let mut processes = sampler.scan().context("cannot list processes")?;
        if !sampler.is_captured() {
            processes.retain(|p| p.pid != self_pid);
        }
        let snapshot = sampler.sample(&processes, options);
        let accounting = account(&snapshot, &Grouping::Machine);
        (accounting, Meta { target: Target::All, run: None, source }, 0)
    } else if !t.pids.is_empty() {
        let mut processes = sampler.descendants(&t.pids).map_err(|e| root_error(e, &t.pids))?;
        if !sampler.is_captured() {
            // memtree itself is not part of what it inspects.
            let self_pid = std::process::id();
            processes.retain(|p| p.pid != self_pid);
        }
        let snapshot = sampler.sample(&processes, options);
        let accounting = account(&snapshot, &Grouping::Roots(t.pids.clone()));
        (accounting, Meta { target: Target::Pids(t.pids.clone()), run: None, source }, 0)
    } else {
        bail!(UsageError("no target: give --pid PID, --all, or -- CMD [ARGS...]".into()));
    };
    report::write_report(&mut out, args.format, &accounting, &meta, style)?;
    out.flush()?;
    Ok(status)
}

fn capture_cmd(args: CaptureArgs) -> Result<i32> {
    let sampler = Sampler::live();
    let processes = sampler.descendants(&args.pids).map_err(|e| root_error(e, &args.pids))?;
    let count = capture::capture(&sampler, &processes, &args.out)
        .with_context(|| format!("cannot write the capture to {}", args.out.display()))?;
    eprintln!("memtree: captured {count} processes into {}", args.out.display());
    Ok(0)
}
