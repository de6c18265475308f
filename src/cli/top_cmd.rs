//! CLI layer: `memtree top`: resolves the target (the built-in workloads when none is given),
//! starts a command when asked, and hands a paced shared-sampler session to the dashboard.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};

use super::target;
use super::{TopArgs, usage};
use crate::report::Target;
use crate::runner::command;
use crate::runner::spec::Spec;
use crate::sampler::{Cadence, SampleOptions, Sampler, Session};
use crate::tui::{self, app::App};
use crate::units::human_bytes;

/// `top` with no target: the three workloads at once, small enough to start in a blink.
const DEMO_SIZE: u64 = 64 << 20;
const DEMO_WORKERS: usize = 3;
/// The fastest refresh the dashboard takes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn describe(specs: &[Spec]) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.variant.as_str()).collect();
    format!(
        "workload {} ({} × {})",
        names.join(" + "),
        human_bytes(specs[0].size_bytes),
        crate::units::count(specs[0].workers, "worker", "workers")
    )
}

/// The dashboard's one-line name for what it watches.
pub(super) fn title(target: &Target) -> String {
    match target {
        Target::Command(argv) => format!("`{}` (its output is discarded)", argv.join(" ")),
        Target::All => "every process".to_string(),
        Target::Pids(pids) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("tree of {}", pids.join(", "))
        }
        Target::Workload(specs) => describe(specs),
    }
}

pub fn top(args: TopArgs) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "memtree top needs a terminal; for scripts and pipes use `memtree report` (same \
             targets, --format json)",
        ));
    }
    if std::env::var("TERM").is_ok_and(|t| t == "dumb") {
        return Err(usage(
            "memtree top needs a terminal that can move its cursor, and TERM=dumb says this one \
             cannot; use `memtree report` (same targets), or `watch -n 1 memtree report …`",
        ));
    }
    if let Some(file) = &args.replay {
        return super::record_cmd::replay(file);
    }
    let sampler = Sampler::live();
    let demo = Some((DEMO_SIZE, DEMO_WORKERS));
    let mut resolved = target::resolve(&args.target, &args.workload, &sampler, demo)?;
    let mut child = match resolved.command() {
        Some(argv) => Some(
            command::spawn_quiet(argv)
                .map_err(|e| usage(format!("cannot run {:?}: {e}", argv[0])))?,
        ),
        None => None,
    };
    let privileged = sampler.privileged();
    let options = SampleOptions {
        mappings: false,
        exact: privileged && !args.no_exact,
        // Without root, duplicated content is measured from the pages each process alone maps.
        dedup: !args.no_exact && !args.no_dedup,
    };
    let interval = args.interval.max(MIN_INTERVAL);
    let session = Session::new(sampler, resolved.watch.clone(), options)
        .with_cadence(Cadence::every(interval));
    let color = super::colored(true);
    let mut app = App::new(title(&resolved.described), interval, color);
    if let Target::Workload(specs) = &resolved.described {
        app.workloads =
            resolved.workloads.iter().map(|w| w.root).zip(specs.iter().copied()).collect();
    }
    if !privileged && !args.no_exact {
        app.exact_note = Some(
            "Exact figures need root (CAP_SYS_ADMIN): footprints are PSS estimates.".to_string(),
        );
    }
    let result = tui::run(session, app, || {
        child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_some())
    });
    if let Some(mut c) = child {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = c.wait();
    }
    resolved.stop()?;
    let status = result.context("the dashboard failed")?;
    Ok(status)
}
