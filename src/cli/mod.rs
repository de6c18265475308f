//! CLI layer, the top: the command line (clap derive) and what each subcommand does. It may
//! use every layer below (faces, runner, sampler, model); nothing uses it but `main`. The
//! target of a command is resolved in [`target`]; each command's file wires a shared-sampler
//! session to its face. Bad input becomes a [`UsageError`]: one line, exit status 2.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

mod record_cmd;
mod report_cmd;
mod serve_cmd;
pub mod target;
mod top_cmd;
mod workload_cmd;

use crate::report::{Format, Style};
use crate::runner::spec::{Spec, Touch, Variant};
use crate::runner::workload::EventFormat;
use crate::sampler::{Sampler, capture};
use crate::units;

/// Bad input: printed as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
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
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, or never.
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    pub color: ColorChoice,
}

/// When memtree colours its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless the NO_COLOR environment variable is set.
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Whether output going to a terminal (`terminal`) or not is coloured, by `--color` and
/// `NO_COLOR` (https://no-color.org: set and not empty).
pub(crate) fn colored(terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The live dashboard: which memory is shared, private and duplicated, and how far a
    /// monitor's number is from the truth. Without a target it runs the built-in workloads.
    Top(TopArgs),
    /// Print a one-shot report of a process tree: RSS, PSS, USS, shared, swap, and what the
    /// tree really uses.
    Report(ReportArgs),
    /// Run a built-in workload: fill SIZE bytes and hand them to N workers by fork, by
    /// serialization through pipes, or through shared memory; then hold so any tool can look.
    Run(RunArgs),
    /// Run the fork, serialize and shared workloads one after another with the same data and
    /// compare them side by side.
    Compare(CompareArgs),
    /// Copy the /proc files of a process tree into a directory, for a bug report or a test
    /// fixture; `report --proc-root DIR` reads it back.
    Capture(CaptureArgs),
    /// Export the figures to Prometheus: an HTTP server of /metrics (OpenMetrics), per tree or
    /// per process name. Without a target, the whole machine.
    Serve(ServeArgs),
    /// Record the figures of a target over time into a file (a sample every interval, until
    /// --duration, the target's end or Ctrl-C): `report --from FILE` and `top --replay FILE`
    /// read it back, `plot FILE` draws it.
    Record(RecordArgs),
    /// Draw a recording: Σ RSS (what a monitor shows) against the footprint and Σ PSS over
    /// time, and what each forked worker copied from its parent, as SVG or PNG.
    Plot(PlotArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print memtree's man page (roff) to stdout: `memtree man > ~/.local/share/man/man1/memtree.1`.
    Man,
}

/// Which built-in workload a report inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadChoice {
    Fork,
    Serialize,
    Shared,
    /// The three at once, as three trees (sizes scaled down to fit in memory).
    All,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Report the tree rooted at PID (repeatable: one tree per PID).
    #[arg(long = "pid", value_name = "PID", allow_negative_numbers = true)]
    pub pids: Vec<u32>,
    /// Report every process on the machine, grouped by tree.
    #[arg(long, conflicts_with = "pids")]
    pub all: bool,
    /// Start a built-in workload, look at it once every worker holds its data (a recording
    /// starts then), and stop it at the end (see `memtree run`; sized by --size, --workers,
    /// --touch).
    #[arg(long, value_enum, value_name = "VARIANT", conflicts_with_all = ["pids", "all"])]
    pub workload: Option<WorkloadChoice>,
    /// Run CMD and follow its tree: `report` prints the tree at its peak footprint once CMD
    /// exits (with CMD's status); `top` shows it live (CMD's output discarded, CMD stopped when
    /// the dashboard quits); `serve` exports it and `record` records it until CMD exits (with
    /// CMD's status).
    #[arg(last = true, value_name = "CMD", conflicts_with_all = ["pids", "all", "workload"])]
    pub command: Vec<String>,
}

/// How big a built-in workload is.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Bytes of pseudo-random data the parent fills (256MiB, 1G, 512k…) [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, allow_hyphen_values = true)]
    pub size: Option<u64>,
    /// Worker processes that get the data [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024), allow_negative_numbers = true)]
    pub workers: Option<u16>,
    /// What each worker does with the data: none, read (every page), write (one byte in every
    /// page) or write=F (in a fraction F of the pages) [default: read].
    #[arg(long, value_name = "HOW", value_parser = parse_touch, allow_hyphen_values = true)]
    pub touch: Option<Touch>,
    /// Run even when the projected memory exceeds what the machine has available.
    #[arg(long)]
    pub force: bool,
}

impl WorkloadArgs {
    pub fn spec(&self, variant: Variant, default_size: u64, default_workers: usize) -> Spec {
        Spec {
            variant,
            size_bytes: self.size.unwrap_or(default_size),
            workers: self.workers.map_or(default_workers, usize::from),
            touch: self.touch.unwrap_or(Touch::Read),
        }
    }
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    let bytes = units::parse_size(text)?;
    if bytes < 4096 {
        return Err(format!("{text:?} is too small: at least 4KiB"));
    }
    Ok(bytes)
}

fn parse_touch(text: &str) -> Result<Touch, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also read every mapping (`/proc/PID/smaps`) and group them by name across the tree.
    #[arg(long)]
    pub mappings: bool,
    /// Exact accounting from physical pages (pagemap + kpagecount; needs root): the real
    /// footprint, what exiting frees, who shares with whom.
    #[arg(long)]
    pub exact: bool,
    /// Duplicated content (implies --exact): read every distinct anonymous/shmem page once and
    /// find identical copies, also at other offsets. Only hashes are kept.
    #[arg(long)]
    pub dedup: bool,
    /// Write the report to FILE instead of stdout (with `-- CMD`, keeps it apart from CMD's
    /// own output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Read a /proc captured with `memtree capture` instead of the live one.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["workload", "command"])]
    pub proc_root: Option<PathBuf>,
    /// With `-- CMD`: how often to sample the running tree (it never takes more than half of
    /// one core).
    #[arg(long, value_name = "DURATION", default_value = "25ms", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub interval: Duration,
    /// With `-- CMD`: also draw the run (Σ RSS, footprint, Σ PSS and each worker's copies over
    /// time) into FILE, SVG or PNG by its extension.
    #[arg(long, value_name = "FILE", requires = "command")]
    pub plot: Option<PathBuf>,
    /// Report a moment of a recording (`memtree record`) instead of live processes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "all", "workload", "command", "proc_root", "exact", "dedup", "mappings"])]
    pub from: Option<PathBuf>,
    /// With --from: which moment: `peak` (the highest footprint), `end` (the last sample), or a
    /// time since the recording started (`90s`, `2m`, `15.5`): the last sample at or before it.
    #[arg(
        long,
        value_name = "WHEN",
        default_value = "peak",
        requires = "from",
        value_parser = parse_at,
        // `--at -5s` reaches parse_at, which says what a moment is, instead of clap's
        // "unexpected argument".
        allow_hyphen_values = true
    )]
    pub at: At,
}

/// A moment of a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Peak,
    End,
    Seconds(f64),
}

fn parse_at(text: &str) -> Result<At, String> {
    match text {
        "peak" => Ok(At::Peak),
        "end" => Ok(At::End),
        _ => units::parse_duration(text).map(|d| At::Seconds(d.as_secs_f64())).map_err(|_| {
            format!(
                "{text:?} is not a moment: peak, end, or a time since the recording started, \
                 such as 90s or 2m"
            )
        }),
    }
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The file to write (replaced if it exists).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// How often to take a sample (processes whose memory did not change are not read again,
    /// and a sample that did not change takes a few bytes).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub interval: Duration,
    /// Stop after this long [default: when the target ends, or on Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Do not read physical pages even as root (exact figures, copy-on-write erosion and
    /// duplicated content are on by default when privileged).
    #[arg(long)]
    pub no_exact: bool,
    /// Do not measure duplicated content.
    #[arg(long)]
    pub no_dedup: bool,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A recording made by `memtree record`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The picture to write: SVG or PNG, by its extension.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// How often to refresh (processes whose memory did not change are not read again).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub interval: Duration,
    /// Do not read physical pages even as root (exact figures, and duplicated content, are on
    /// by default when privileged).
    #[arg(long)]
    pub no_exact: bool,
    /// Do not measure duplicated content (on by default when privileged: every distinct
    /// anonymous page is read at each exact refresh, on the same cost-based cadence).
    #[arg(long)]
    pub no_dedup: bool,
    /// Measure duplicated content (the default when privileged; kept for scripts).
    #[arg(long, hide = true, conflicts_with_all = ["no_exact", "no_dedup"])]
    pub dedup: bool,
    /// Show a recording (`memtree record`) instead of live processes; ← and → move in time.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pids", "all", "workload", "command"])]
    pub replay: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// fork: workers inherit the buffer copy-on-write; serialize: each worker receives its own
    /// copy through a pipe; shared: one memfd mapped by every worker.
    #[arg(value_enum)]
    pub variant: Variant,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// How long to hold once every worker has its data (500ms, 30s, 2m) [default: until
    /// Ctrl-C].
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub hold: Option<Duration>,
    /// How to print progress: for people, or one JSON object a line (for programs).
    #[arg(long, value_enum, default_value = "human", hide = true)]
    pub events: EventFormat,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Exact footprints from physical pages (the default as root; asked for without root, the
    /// reason they are missing is given).
    #[arg(long, conflicts_with = "no_exact")]
    pub exact: bool,
    /// Measure duplicated content (the default as root; implies --exact).
    #[arg(long, conflicts_with_all = ["no_exact", "no_dedup"])]
    pub dedup: bool,
    /// Neither exact figures nor duplicated content, even as root.
    #[arg(long)]
    pub no_exact: bool,
    /// No duplicated content, even as root (exact figures stay).
    #[arg(long)]
    pub no_dedup: bool,
    /// Compare Python's start methods instead, with the real programs of workloads/: a Pool
    /// whose workers read a module-level pandas DataFrame under fork, forkserver and spawn; the
    /// seed's structure (a frame built in main(), read through a global) under forkserver; and
    /// the shared-memory fix. --size is the frame's [default: 64MiB], --workers the Pool's
    /// [default: 2]. Needs numpy and pandas.
    #[arg(long, conflicts_with = "touch")]
    pub python: bool,
    /// The interpreter `--python` runs.
    #[arg(long, value_name = "PROGRAM", default_value = "python3", requires = "python")]
    pub interpreter: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// How `serve` groups the processes it exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One group per process tree (label `group` is the root's name, `root_pid` its pid).
    Tree,
    /// One group per process name, whatever the parents (process-exporter's groups).
    Name,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The address to serve /metrics on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9797", value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,
    /// One group per process tree or per process name.
    #[arg(long, value_enum, default_value = "tree")]
    pub group_by: GroupBy,
    /// How often to sample (a scrape serves the last sample; processes whose memory did not
    /// change are not read again).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub interval: Duration,
    /// Physical pages (and page contents) are read no more often than this, and never for more
    /// than 1 % of a core; their age is exported.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = units::parse_duration, allow_hyphen_values = true)]
    pub exact_interval: Duration,
    /// Do not read physical pages even as root (footprints become PSS estimates).
    #[arg(long)]
    pub no_exact: bool,
    /// Do not measure duplicated content.
    #[arg(long)]
    pub no_dedup: bool,
    /// Export at most N groups, the largest first (the rest are counted in
    /// memtree_groups_omitted).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_groups: u32,
    /// Also export per-process series (labels pid and name) for the N largest processes by RSS.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub per_process: Option<u32>,
}

fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("{text:?} is not an address and port (127.0.0.1:9797, [::1]:9797, 0.0.0.0:9797)")
    })
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Capture the tree rooted at PID (repeatable).
    #[arg(long = "pid", value_name = "PID", required = true, allow_negative_numbers = true)]
    pub pids: Vec<u32>,
    /// The directory to write (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs a parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> Result<i32> {
    let _ = COLOR.set(cli.color);
    match cli.command {
        Cmd::Top(args) => top_cmd::top(args),
        Cmd::Report(args) => report_cmd::report(args),
        Cmd::Run(args) => workload_cmd::run(args),
        Cmd::Compare(args) => workload_cmd::compare(args),
        Cmd::Capture(args) => capture_cmd(args),
        Cmd::Serve(args) => serve_cmd::serve(args),
        Cmd::Record(args) => record_cmd::record(args),
        Cmd::Plot(args) => record_cmd::plot(args),
        Cmd::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a failed write (a closed pipe, a full
            // disk), which is a broken pipe or one line here, as for every other command.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "memtree", &mut script);
            let mut out = io::stdout().lock();
            out.write_all(&script)
                .and_then(|()| out.flush())
                .context("cannot write the completions to stdout")?;
            Ok(0)
        }
        Cmd::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("cannot write the man page to stdout")?;
            Ok(0)
        }
    }
}

/// Where a report goes: stdout (coloured as [`colored`] says) or a file (never coloured),
/// written whole or not at all: into a temporary file beside it, renamed over it by
/// [`Output::finish`] (a textfile collector never reads half a report; a failed run leaves the
/// old file). Opened before any work, so a path that cannot be written fails first.
pub(crate) struct Output {
    pub writer: io::BufWriter<Box<dyn Write>>,
    pub style: Style,
    /// The temporary file being written, and the regular file it replaces.
    file: Option<(tempfile::TempPath, PathBuf)>,
    /// Where the report goes, as messages name it.
    name: String,
}

/// The width of the terminal stdout is, or 80 when it is not one.
fn terminal_width() -> usize {
    if !io::stdout().is_terminal() {
        return 80;
    }
    crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w).max(40))
}

fn shown(path: &std::path::Path) -> String {
    units::visible(&path.display().to_string()).into_owned()
}

impl Output {
    pub fn open(path: Option<&PathBuf>) -> Result<Output> {
        let Some(path) = path else {
            let color = colored(io::stdout().is_terminal());
            let writer = io::BufWriter::new(Box::new(io::stdout().lock()) as Box<dyn Write>);
            return Ok(Output {
                writer,
                style: Style { color, width: terminal_width() },
                file: None,
                name: "stdout".into(),
            });
        };
        let cannot = |e: &dyn std::fmt::Display| {
            usage(format!(
                "cannot write the report to {}: {e}",
                units::visible(&path.display().to_string())
            ))
        };
        if path.is_dir() {
            return Err(cannot(&"it is a directory"));
        }
        // Only a regular file (or a new one) is replaced whole; a device, a FIFO or a terminal
        // (`/dev/stdout`, `/dev/full`) is written to as it is. A symlink to a regular file is
        // followed: the file it names is replaced, the link stays.
        let target = match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                let file =
                    std::fs::OpenOptions::new().write(true).open(path).map_err(|e| cannot(&e))?;
                let writer = io::BufWriter::new(Box::new(file) as Box<dyn Write>);
                return Ok(Output {
                    writer,
                    style: Style::default(),
                    file: None,
                    name: shown(path),
                });
            }
            Ok(_) => std::fs::canonicalize(path).map_err(|e| cannot(&e))?,
            Err(_) => path.clone(),
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            // The error without the temporary file's name (the user never gave it).
            .map_err(|e| {
                let text = e.to_string();
                cannot(&text.split(" at path \"").next().unwrap_or(&text).to_string())
            })?;
        let (file, temp_path) = temp.into_parts();
        let writer = io::BufWriter::new(Box::new(file) as Box<dyn Write>);
        Ok(Output {
            writer,
            style: Style::default(),
            file: Some((temp_path, target)),
            name: shown(path),
        })
    }

    /// Where the report goes, for a message.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Flushes the report and puts the file in place.
    pub fn finish(mut self) -> Result<()> {
        let name = self.name();
        self.writer.flush().with_context(|| format!("cannot write the report to {name}"))?;
        if let Some((temp, path)) = self.file.take() {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            // A file replaced keeps its mode and, where memtree may, its owner (a 0640 file
            // for node_exporter's group stays one); a new one is made as `>` would make it.
            let old = std::fs::metadata(&path).ok();
            let mode = match &old {
                Some(meta) => meta.mode() & 0o7777,
                None => {
                    let mask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
                    nix::sys::stat::umask(mask);
                    0o666 & !mask.bits()
                }
            };
            if let Some(meta) = &old {
                let _ = std::os::unix::fs::chown(&temp, Some(meta.uid()), Some(meta.gid()));
            }
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
                .and_then(|()| temp.persist(&path).map_err(|e| e.error))
                .with_context(|| format!("cannot write the report to {name}"))?;
        }
        Ok(())
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

fn capture_cmd(args: CaptureArgs) -> Result<i32> {
    let sampler = Sampler::live();
    let processes =
        sampler.descendants(&args.pids).map_err(|e| target::root_error(e, &args.pids))?;
    let count = capture::capture(&sampler, &processes, &args.out)
        .with_context(|| format!("cannot write the capture to {}", args.out.display()))?;
    eprintln!(
        "memtree: captured {} into {}",
        units::count(count, "process", "processes"),
        units::visible(&args.out.display().to_string())
    );
    Ok(0)
}
