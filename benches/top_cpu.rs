//! `cargo bench --bench top_cpu`: CPU used by `memtree top` on a steady tree of WORKERS workers
//! sharing SIZE (default 32 × 1 GiB, 4 KiB pages) at a 1 s refresh, measured from the kernel's
//! utime + stime of each dashboard over the same window, beside metop (`cargo install metop`;
//! put it on PATH or name it in METOP) watching the same machine. Each dashboard runs in a tmux
//! session of its own.
//!
//! MEMTREE_BENCH_REGIMES picks what runs (default `x`): `x` that tree beside metop; `a` 8
//! workers sharing 256 MiB; `c` one tree of 1,000 small processes; `e` the whole machine with
//! 2,000 more processes (`top --all`); `r` `memtree record` at 1 s on the big tree beside
//! `top` on it, and the recording's bytes per sample per process.
//!
//! Environment: MEMTREE_BENCH_REGIMES (x), MEMTREE_BENCH_SIZE_MIB (1024),
//! MEMTREE_BENCH_WORKERS (32), MEMTREE_BENCH_SECONDS (120), MEMTREE_BENCH_WARMUP (15), METOP,
//! MEMTREE_BENCH_BASELINE (another memtree binary, e.g. an earlier commit's: in a, c and e its
//! `top` runs beside this one over the same window, the ratio's baseline).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[path = "support/sleepers.rs"]
mod sleepers;

use memtree::runner::spawn::RunningWorkload;
use memtree::runner::spec::{Spec, Touch, Variant};
use sleepers::Sleepers;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

struct Dash {
    label: String,
    session: String,
}

impl Dash {
    fn start(label: &str, command: &str) -> Dash {
        let session = format!("cpu-{}-{}", label.replace(' ', "-"), std::process::id());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "50"])
            .arg(format!("exec {command}"))
            .status()
            .expect("tmux runs");
        assert!(status.success());
        Dash { label: label.to_string(), session }
    }

    fn pid(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.session, "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Dash {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

/// CPU of each dashboard over `seconds` after `warmup`, printed as a table.
fn measure(title: &str, dashes: Vec<Dash>, warmup: u64, seconds: u64) {
    std::thread::sleep(Duration::from_secs(warmup));
    let before: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let after: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
    println!("\n{title}, 1 s refresh, {seconds} s measured after {warmup} s of warm-up");
    println!("| dashboard | CPU seconds | % of one core |");
    println!("| --- | ---: | ---: |");
    for ((dash, b), a) in dashes.iter().zip(before).zip(after) {
        let cpu = (a - b) as f64 / hz;
        println!("| {} | {cpu:.2} | {:.2} % |", dash.label, 100.0 * cpu / seconds as f64);
    }
}

fn main() {
    let seconds = env("MEMTREE_BENCH_SECONDS", 120);
    let warmup = env("MEMTREE_BENCH_WARMUP", 15);
    let memtree = env!("CARGO_BIN_EXE_memtree");
    let regimes = std::env::var("MEMTREE_BENCH_REGIMES").unwrap_or_else(|_| "x".into());
    let baseline = std::env::var("MEMTREE_BENCH_BASELINE").ok();
    // This memtree's dashboard on `target`, and the baseline's beside it when there is one.
    let top = |label: &str, target: &str| {
        let mut dashes = vec![Dash::start(label, &format!("{memtree} top {target} --interval 1s"))];
        if let Some(other) = &baseline {
            let label = format!("baseline ({other}): {label}");
            dashes.push(Dash::start(&label, &format!("{other} top {target} --interval 1s")));
        }
        dashes
    };
    for regime in regimes.chars() {
        match regime {
            // (a) 8 workers sharing 256 MiB.
            'a' => {
                let spec = Spec {
                    variant: Variant::Fork,
                    size_bytes: 256 << 20,
                    workers: 8,
                    touch: Touch::Read,
                };
                let workload =
                    RunningWorkload::start_with(Path::new(memtree), spec).expect("workload");
                let dashes = top("memtree top --pid ROOT", &format!("--pid {}", workload.root));
                measure("(a) 8 workers sharing 256 MiB", dashes, warmup, seconds);
                workload.stop().unwrap();
            }
            // (c) one tree of 1,000 small processes.
            'c' => {
                let tree = Sleepers::spawn(1000);
                let dashes = top("memtree top --pid ROOT", &format!("--pid {}", tree.0.id()));
                measure("(c) one tree of 1,000 processes", dashes, warmup, seconds);
            }
            // (e) the whole machine with 2,000 more processes.
            'e' => {
                let _tree = Sleepers::spawn(2000);
                let dashes = top("memtree top --all", "--all");
                measure("(e) the whole machine, 2,000 processes more", dashes, warmup, seconds);
            }
            // The steady 32 × 1 GiB tree, beside metop.
            'x' => big(memtree, seconds, warmup),
            // `record` at 1 s on the 32 × 1 GiB tree, beside `top` on it.
            'r' => record(memtree, seconds, warmup),
            other => panic!("unknown regime {other:?} (a, c, e, r, x)"),
        }
    }
}

fn big(memtree: &str, seconds: u64, warmup: u64) {
    let size = env("MEMTREE_BENCH_SIZE_MIB", 1024);
    let workers = env("MEMTREE_BENCH_WORKERS", 32) as usize;
    let spec = Spec { variant: Variant::Fork, size_bytes: size << 20, workers, touch: Touch::Read };
    let workload = RunningWorkload::start_with(Path::new(memtree), spec).expect("workload");
    let root = workload.root;
    let metop = std::env::var("METOP").ok().or_else(|| {
        Command::new("sh")
            .args(["-c", "command -v metop"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    let mut dashes = vec![
        Dash::start("memtree top", &format!("{memtree} top --pid {root} --interval 1s")),
        Dash::start(
            "memtree top --no-exact",
            &format!("{memtree} top --pid {root} --interval 1s --no-exact"),
        ),
    ];
    match &metop {
        Some(metop) => dashes.push(Dash::start("metop", &format!("{metop} --pid {root}"))),
        None => println!("(metop not found: cargo install metop, or set METOP)"),
    }
    std::thread::sleep(Duration::from_secs(warmup));
    let before: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let after: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
    println!(
        "{workers} workers sharing {size} MiB, 1 s refresh, {seconds} s measured after {warmup} s of warm-up"
    );
    println!("| dashboard | CPU seconds | % of one core |");
    println!("| --- | ---: | ---: |");
    for ((dash, b), a) in dashes.iter().zip(before).zip(after) {
        let cpu = (a - b) as f64 / hz;
        println!("| {} | {cpu:.2} | {:.2} % |", dash.label, 100.0 * cpu / seconds as f64);
    }
    drop(dashes);
    workload.stop().unwrap();
}

fn record(memtree: &str, seconds: u64, warmup: u64) {
    let size = env("MEMTREE_BENCH_SIZE_MIB", 1024);
    let workers = env("MEMTREE_BENCH_WORKERS", 32) as usize;
    let spec = Spec { variant: Variant::Fork, size_bytes: size << 20, workers, touch: Touch::Read };
    let workload = RunningWorkload::start_with(Path::new(memtree), spec).expect("workload");
    let root = workload.root;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.mtr");
    let dashes = vec![
        Dash::start("memtree top", &format!("{memtree} top --pid {root} --interval 1s")),
        Dash::start(
            "memtree record",
            &format!("{memtree} record --pid {root} --interval 1s -o {}", file.display()),
        ),
    ];
    std::thread::sleep(Duration::from_secs(warmup));
    let before: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let after: Vec<u64> = dashes.iter().map(|d| cpu_ticks(d.pid())).collect();
    let recorder = dashes[1].pid();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(recorder as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    std::thread::sleep(Duration::from_secs(2));
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
    println!(
        "{workers} workers sharing {size} MiB ({} processes), 1 s interval, {seconds} s measured after {warmup} s of warm-up",
        workers + 1
    );
    println!("| process | CPU seconds | % of one core |");
    println!("| --- | ---: | ---: |");
    for ((dash, b), a) in dashes.iter().zip(before).zip(after) {
        let cpu = (a - b) as f64 / hz;
        println!("| {} | {cpu:.2} | {:.2} % |", dash.label, 100.0 * cpu / seconds as f64);
    }
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let reader = memtree::record::Reader::open(&file).expect("a recording");
    let samples: Vec<memtree::record::Sample> = memtree::record::Samples::new(reader).collect();
    let full: std::collections::BTreeSet<u64> = samples.iter().map(|s| s.offset).collect();
    let processes = samples.last().map_or(1, |s| s.accounting.totals.processes).max(1);
    let offsets: Vec<u64> = full.iter().copied().collect();
    let full_frame = offsets.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    println!(
        "recording: {bytes} bytes, {} samples ({} with new figures), {:.0} bytes a sample, {:.1} bytes a sample a process; a sample with new figures: {full_frame} bytes ({:.1} a process)",
        samples.len(),
        full.len(),
        bytes as f64 / samples.len().max(1) as f64,
        bytes as f64 / samples.len().max(1) as f64 / processes as f64,
        full_frame as f64 / processes as f64,
    );
    drop(dashes);
    workload.stop().unwrap();
}
