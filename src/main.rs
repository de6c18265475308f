//! memtree's entry point: parses the command line, runs it, prints errors as one line and maps
//! them to exit statuses (2: bad input; 1: failure; a command's own status for `report -- CMD`).

use std::io;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use memtree::cli::{self, Cli, UsageError};

fn main() -> ExitCode {
    // The worker threads start now, beside parsing and target resolution, one per CPU memtree
    // may run on (without rayon's default probing of cgroup files).
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).count()
        })
        .unwrap_or(1)
        .max(1);
    let _ = rayon::ThreadPoolBuilder::new().num_threads(cpus).build_global();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("memtree: {}", one_line(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    match cli::run(cli) {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memtree: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// clap's multi-line error as one line: the message and any `[possible values: …]` or tip,
/// without the usage block.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("For more information"))
        .filter(|line| !line.is_empty() && !line.starts_with("Usage:"))
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
