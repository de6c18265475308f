//! CLI layer: `memtree top`: resolves the target (starting workloads or a command when asked,
//! the built-in workloads when no target is given), then hands over to the dashboard.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::workload_cmd::{self, DEFAULT_SIZE, DEFAULT_WORKERS};
use super::{TopArgs, WorkloadChoice, root_error, usage};
use crate::runner::workload::Spec;
use crate::sampler::Sampler;
use crate::tui::{self, app::App, collector};
use crate::units::human_bytes;

/// `top` with no target: the three workloads at once, small enough to start in a blink.
const DEMO_SIZE: u64 = 64 << 20;
const DEMO_WORKERS: usize = 3;

fn describe(specs: &[Spec]) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.variant.as_str()).collect();
    format!(
        "workload {} ({} × {} workers)",
        names.join(" + "),
        human_bytes(specs[0].size_bytes),
        specs[0].workers
    )
}

pub fn top(args: TopArgs) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "memtree top needs a terminal; for scripts and pipes use `memtree report` (same \
             targets, --format json)",
        ));
    }
    let sampler = Sampler::live();
    let t = &args.target;
    let mut workloads = Vec::new();
    let mut child = None;
    let (watch, title) = if !t.command.is_empty() {
        nix::sys::prctl::set_child_subreaper(true).ok();
        let mut cmd = Command::new(&t.command[0]);
        cmd.args(&t.command[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe: the command dies with memtree.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
        let spawned =
            cmd.spawn().map_err(|e| usage(format!("cannot run {:?}: {e}", t.command[0])))?;
        child = Some(spawned);
        (collector::Watch::Children, format!("`{}` (its output is discarded)", t.command.join(" ")))
    } else if t.all {
        (collector::Watch::Machine, "every process".to_string())
    } else if !t.pids.is_empty() {
        sampler.descendants(&t.pids).map_err(|e| root_error(e, &t.pids))?;
        let pids: Vec<String> = t.pids.iter().map(u32::to_string).collect();
        (collector::Watch::Pids(t.pids.clone()), format!("tree of {}", pids.join(", ")))
    } else {
        let (choice, size, workers) = match t.workload {
            Some(choice) => (choice, DEFAULT_SIZE, DEFAULT_WORKERS),
            None => (WorkloadChoice::All, DEMO_SIZE, DEMO_WORKERS),
        };
        let specs = workload_cmd::specs_for(choice, &args.workload, &sampler, size, workers)?;
        workloads = workload_cmd::start_all(&specs)?;
        let roots = workloads.iter().map(|w| w.root).collect();
        (collector::Watch::Pids(roots), describe(&specs))
    };
    let privileged = sampler.privileged();
    let config = collector::Config {
        watch,
        interval: args.interval.max(Duration::from_millis(100)),
        exact: privileged && !args.no_exact,
        dedup: privileged && args.dedup,
        full_every: Duration::from_secs(60),
        exact_every: args.interval.max(Duration::from_millis(100)),
        exact_full_every: Duration::from_secs(300),
    };
    let color = std::env::var_os("NO_COLOR").is_none();
    let mut app = App::new(title, config.interval, color);
    if !privileged && !args.no_exact {
        app.exact_note = Some(
            "Exact figures need root (CAP_SYS_ADMIN): footprints are PSS estimates.".to_string(),
        );
    }
    let result = tui::run(sampler, config, app, || {
        child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_some())
    });
    if let Some(mut c) = child {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = c.wait();
    }
    for workload in workloads {
        workload.stop().context("cannot stop a workload")?;
    }
    let status = result.context("the dashboard failed")?;
    Ok(status)
}
