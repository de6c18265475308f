//! `cargo bench --bench handoff`: how long each workload takes to hand SIZE bytes to its
//! workers, against what the machine can do in the same run: a memcpy into fresh memory, and
//! a raw pipe between two processes into fresh memory (the floor of `serialize`).
//!
//! Environment: MEMTREE_BENCH_SIZE_MIB (256), MEMTREE_BENCH_WORKERS (4), MEMTREE_BENCH_RUNS (5).

use std::process::Command;
use std::time::Instant;

use memtree::runner::memory::{Region, fill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork, pipe, read, write};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// memcpy of `len` bytes into memory mapped for it (page faults included, as a worker's).
fn memcpy_seconds(src: &Region) -> f64 {
    let start = Instant::now();
    let mut dst = Region::anonymous(src.bytes().len()).unwrap();
    dst.bytes_mut().copy_from_slice(src.bytes());
    std::hint::black_box(dst.bytes()[0]);
    start.elapsed().as_secs_f64()
}

/// A child reads `len` bytes from a pipe into fresh memory while the parent writes them.
fn pipe_seconds(src: &Region) -> f64 {
    let len = src.bytes().len();
    let (r, w) = pipe().unwrap();
    let _ = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let start = Instant::now();
    // SAFETY: the bench is single-threaded here.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(w);
            let mut dst = Region::anonymous(len).unwrap();
            let mut got = 0;
            while got < len {
                got += read(&r, &mut dst.bytes_mut()[got..]).unwrap();
            }
            // SAFETY: end the child at once.
            unsafe { nix::libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(r);
            let mut sent = 0;
            while sent < len {
                sent += write(&w, &src.bytes()[sent..]).unwrap();
            }
            drop(w);
            waitpid(child, None).unwrap();
        }
    }
    start.elapsed().as_secs_f64()
}

/// Runs `memtree run VARIANT` once; returns (hand-off seconds, per-worker seconds).
fn workload(variant: &str, size_mib: u64, workers: u64) -> (f64, Vec<f64>) {
    let out = Command::new(env!("CARGO_BIN_EXE_memtree"))
        .args(["run", variant, "--size", &format!("{size_mib}MiB")])
        .args(["--workers", &workers.to_string(), "--hold", "0s", "--events", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut handoff = 0.0;
    let mut each = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        match event["event"].as_str() {
            Some("worker") => each.push(event["seconds"].as_f64().unwrap()),
            Some("ready") => handoff = event["handoff_seconds"].as_f64().unwrap(),
            _ => {}
        }
    }
    (handoff, each)
}

fn main() {
    let size = env("MEMTREE_BENCH_SIZE_MIB", 256);
    let workers = env("MEMTREE_BENCH_WORKERS", 4);
    let runs = env("MEMTREE_BENCH_RUNS", 5) as usize;
    let mut src = Region::anonymous((size << 20) as usize).unwrap();
    fill(src.bytes_mut(), 1);
    let (mut memcpy, mut pipe_t) = (Vec::new(), Vec::new());
    let mut variants: Vec<(&str, Vec<f64>, Vec<f64>)> =
        ["fork", "serialize", "shared"].iter().map(|v| (*v, Vec::new(), Vec::new())).collect();
    for _ in 0..runs {
        memcpy.push(memcpy_seconds(&src));
        pipe_t.push(pipe_seconds(&src));
        for (variant, handoff, each) in &mut variants {
            let (h, e) = workload(variant, size, workers);
            handoff.push(h);
            each.extend(e);
        }
    }
    let (memcpy, pipe_t) = (median(memcpy), median(pipe_t));
    let rate = |s: f64| format!("{:.0} MiB/s", size as f64 / s);
    println!("{size} MiB × {workers} workers, {runs} runs, medians");
    println!("| what | seconds | per worker | vs baseline |");
    println!("| --- | ---: | ---: | ---: |");
    println!("| memcpy into fresh memory (one copy) | {memcpy:.3} | {} | 1.00× |", rate(memcpy));
    println!(
        "| raw pipe, process to process, into fresh memory (one copy) | {pipe_t:.3} | {} | 1.00× |",
        rate(pipe_t)
    );
    for (variant, handoff, each) in variants {
        let (h, e) = (median(handoff), median(each));
        let (base, name) =
            if variant == "serialize" { (pipe_t, "raw pipe") } else { (memcpy, "memcpy") };
        println!(
            "| memtree run {variant}: whole hand-off (per worker) | {h:.3} ({e:.3}) | {} | {:.2}× {name} |",
            rate(e),
            e / base
        );
    }
}
