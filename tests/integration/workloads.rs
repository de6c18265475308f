//! The built-in workloads, end to end: each variant's truth through the sampler, `compare`,
//! the memory guard, and nothing left behind whatever ends memtree.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::support::{MIB, is_root, memtree, report_json, text};

const SIZE_MIB: u64 = 64;
const WORKERS: usize = 3;

fn workload_report(variant: &str, touch: &str) -> super::schema::Report {
    let size = format!("{SIZE_MIB}MiB");
    let workers = WORKERS.to_string();
    let report = report_json(&[
        "--workload",
        variant,
        "--size",
        &size,
        "--workers",
        &workers,
        "--touch",
        touch,
    ]);
    report.check_invariants();
    assert_eq!(report.processes.len(), WORKERS + 1, "{:?}", report.processes);
    assert_eq!(report.target["kind"], "workload");
    report
}

fn workers(report: &super::schema::Report) -> Vec<&super::schema::Process> {
    report.processes.iter().filter(|p| p.depth == 1).collect()
}

const SIZE: u64 = SIZE_MIB * MIB;

#[test]
fn fork_read_is_one_shared_copy() {
    let report = workload_report("fork", "read");
    assert_eq!(report.processes[0].name, "fork_cow");
    for w in workers(&report) {
        assert!(w.name.starts_with("fork_cow-w"), "{}", w.name);
        assert!(w.rss.unwrap() >= SIZE, "a worker maps the whole buffer: {w:?}");
        assert!(w.uss.unwrap() < SIZE / 16, "but owns almost none of it: {w:?}");
    }
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!((SIZE..SIZE + 8 * MIB).contains(&footprint), "one copy in all: {footprint}");
    assert!(report.totals.rss_sum_bytes.unwrap() >= (WORKERS as u64 + 1) * SIZE);
}

#[test]
fn fork_write_gives_every_worker_its_own_copy() {
    let report = workload_report("fork", "write");
    for w in workers(&report) {
        assert!(w.uss.unwrap() >= SIZE, "copy-on-write made a private copy: {w:?}");
    }
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint >= (WORKERS as u64 + 1) * SIZE, "N+1 copies: {footprint}");
}

#[test]
fn fork_write_fraction_copies_that_fraction() {
    let report = workload_report("fork", "write=0.25");
    for w in workers(&report) {
        let uss = w.uss.unwrap();
        assert!((SIZE / 4..SIZE / 4 + 4 * MIB).contains(&uss), "a quarter copied: {uss}");
    }
}

#[test]
fn the_verdict_on_a_written_fork_says_what_the_writes_copied() {
    // Half of the buffer written by each worker: 2.5 copies' worth, not "a copy each".
    let mut args = vec!["--workload", "fork", "--size", "64MiB", "--workers", "3"];
    args.extend(["--touch", "write=0.5"]);
    if is_root() {
        args.push("--exact");
    }
    // The verdict is in the text report's paragraph of the workload's tree.
    let out = memtree().arg("report").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    let verdict = said.split("Verdict: ").nth(1).unwrap_or_else(|| panic!("{said}"));
    assert!(!verdict.contains("every worker holds its own"), "{verdict}");
    let (copies, rest) = verdict.split_once(" copies' worth of the 64 MiB: ").unwrap();
    let copies: f64 = copies.parse().unwrap();
    // The parent's whole buffer and half of it in each of three workers (and each process's
    // own few hundred KiB).
    assert!((2.45..2.75).contains(&copies), "{verdict}");
    assert!(rest.starts_with("inherited copy-on-write, then "), "{verdict}");
    if is_root() {
        // Each copied 32 MiB (the exact figure from its pages; a few pages more or less).
        assert!(verdict.contains("then each worker's writes copied 32"), "{verdict}");
    } else {
        assert!(verdict.contains("then copied by the workers' writes"), "{verdict}");
    }
}

#[test]
fn serialize_gives_every_worker_its_own_copy() {
    let report = workload_report("serialize", "read");
    for w in workers(&report) {
        assert!(w.name.starts_with("serialize-w"), "{}", w.name);
        assert!(w.uss.unwrap() >= SIZE, "its received copy is private: {w:?}");
        // …and it still maps the parent's original, inherited at fork as a Pool's workers do.
        assert!(w.rss.unwrap() >= 2 * SIZE, "{w:?}");
    }
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint >= (WORKERS as u64 + 1) * SIZE, "N+1 copies: {footprint}");
}

#[test]
fn shared_is_one_segment_split_between_all() {
    let report = workload_report("shared", "read");
    let n = WORKERS as u64 + 1;
    for p in &report.processes {
        assert!(p.shared.unwrap() >= SIZE, "every process maps the segment: {p:?}");
        let shmem = p.pss_shmem.unwrap();
        assert!(shmem.abs_diff(SIZE / n) < MIB, "PSS splits it {n} ways: {shmem} vs {}", SIZE / n);
    }
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!((SIZE..SIZE + 8 * MIB).contains(&footprint), "one copy: {footprint}");
}

#[test]
fn shared_untouched_is_not_in_the_workers() {
    // A MAP_SHARED mapping is not populated in a forked child's page tables.
    let report = workload_report("shared", "none");
    for w in workers(&report) {
        assert!(w.rss.unwrap() < SIZE / 4, "{w:?}");
    }
}

#[test]
fn all_runs_three_trees() {
    let report = report_json(&["--workload", "all", "--size", "16MiB", "--workers", "2"]);
    report.check_invariants();
    let names: Vec<&str> = report.trees.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fork_cow", "serialize_copy", "shm_shared"]);
    assert_eq!(report.processes.len(), 9);
}

#[test]
fn compare_puts_the_three_side_by_side() {
    let out = memtree()
        .args(["compare", "--size", "32MiB", "--workers", "2", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "memtree.compare/v1");
    assert_eq!(doc["size_bytes"], 32 * MIB);
    let variants = doc["variants"].as_array().unwrap();
    let names: Vec<&str> = variants.iter().map(|v| v["variant"].as_str().unwrap()).collect();
    assert_eq!(names, ["fork", "serialize", "shared"]);
    let copies: Vec<f64> = variants.iter().map(|v| v["copies"].as_f64().unwrap()).collect();
    assert!(copies[0] < 1.2 && copies[2] < 1.2, "fork and shared: one copy, {copies:?}");
    assert!(copies[1] > 2.9, "serialize: parent + 2 workers, {copies:?}");
    for v in variants {
        if is_root() {
            // As root duplicated content is measured without being asked for.
            assert_eq!(v["duplicated_method"], "content", "{v}");
        } else {
            assert!(v["duplicated_bytes"].is_null(), "not measured is null, never 0");
            assert_eq!(v["duplicated_method"], "not_measured");
        }
        assert!(v["handoff_seconds"].as_f64().unwrap() > 0.0);
        assert!(v["totals"]["footprint_bytes"].as_u64().unwrap() >= 32 * MIB);
        let root = v["root_pid"].as_u64().unwrap();
        assert!(gone(root as u32, Duration::from_secs(2)), "workload {root} was stopped");
    }
    assert!(variants[1]["verdict"].as_str().unwrap().contains("every worker holds its own"));
    if is_root() {
        let duplicated = |i: usize| variants[i]["duplicated_bytes"].as_u64().unwrap();
        // Two received copies of the parent's 32 MiB: ≥ 90 % found, whatever the offsets.
        assert!(duplicated(1) >= 2 * 32 * MIB * 9 / 10, "serialize: {}", duplicated(1));
        assert!(duplicated(0) < 4 * MIB && duplicated(2) < 4 * MIB, "fork, shared: one copy");
    }

    let table = memtree()
        .args(["compare", "--size", "16MiB", "--workers", "2", "--no-dedup"])
        .output()
        .unwrap();
    let table = text(&table.stdout);
    assert!(table.contains("VARIANT") && table.contains("not measured"), "{table}");
}

/// `memtree run` started in the background, ready when this returns.
struct Run {
    child: Child,
    workers: Vec<u32>,
}

// The child is waited on by the caller; on a failed assertion it dies with its stdout pipe.
#[allow(clippy::zombie_processes)]
fn start_run(variant: &str, env: &[(&str, &str)]) -> Run {
    let mut child = memtree()
        .args(["run", variant, "--size", "32MiB", "--workers", "3", "--events", "json"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "run ended before ready");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "ready" {
            let workers = event["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_u64().unwrap() as u32)
                .collect();
            // Keep reading so the run never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return Run { child, workers };
        }
    }
}

/// `pid` no longer exists (reaped) within `limit`.
fn gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Processes holding the memfd of the run with parent `pid` open, and memtree files in
/// /dev/shm.
fn leftover_segments(pid: u32) -> Vec<String> {
    let name = format!("memtree-shared-{pid}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && target.to_string_lossy().contains(&name)
            {
                found.push(format!("{} -> {}", fd.path().display(), target.display()));
            }
        }
    }
    if let Ok(shm) = std::fs::read_dir("/dev/shm") {
        found.extend(
            shm.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("memtree")),
        );
    }
    found
}

fn assert_nothing_left(run: &Run, what: &str) {
    for &worker in &run.workers {
        assert!(gone(worker, Duration::from_secs(3)), "{what}: worker {worker} left behind");
    }
    let leftovers = leftover_segments(run.child.id());
    assert!(leftovers.is_empty(), "{what}: segments left: {leftovers:?}");
}

#[test]
fn signals_leave_nothing_behind() {
    for variant in ["fork", "serialize", "shared"] {
        for (signal, status) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
            let mut run = start_run(variant, &[]);
            if variant == "shared" {
                // The detector sees the segment while the workload runs.
                assert!(!leftover_segments(run.child.id()).is_empty());
            }
            kill(Pid::from_raw(run.child.id() as i32), signal).unwrap();
            let code = run.child.wait().unwrap().code();
            assert_eq!(code, Some(status), "{variant} {signal}");
            assert_nothing_left(&run, &format!("{variant} {signal}"));
        }
        let mut run = start_run(variant, &[]);
        run.child.kill().unwrap(); // SIGKILL: no cleanup code runs; PR_SET_PDEATHSIG does it
        run.child.wait().unwrap();
        assert_nothing_left(&run, &format!("{variant} SIGKILL"));
    }
}

#[test]
fn a_panic_leaves_nothing_behind() {
    for variant in ["fork", "shared"] {
        let mut child = memtree()
            .args(["run", variant, "--size", "16MiB", "--workers", "2", "--events", "json"])
            .env("MEMTREE_TEST_PANIC_WHEN_READY", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(101), "a panic exits 101");
        let ready = stdout.lines().find(|l| l.contains("\"ready\"")).expect("was ready");
        let event: serde_json::Value = serde_json::from_str(ready).unwrap();
        let run = Run {
            child,
            workers: event["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_u64().unwrap() as u32)
                .collect(),
        };
        assert_nothing_left(&run, &format!("{variant} panic"));
    }
}

#[test]
fn the_memory_guard_refuses_before_allocating() {
    let start = Instant::now();
    let out =
        memtree().args(["run", "serialize", "--size", "1TiB", "--workers", "4"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("needs about 5 TiB") && stderr.contains("MemAvailable"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing started: {}", text(&out.stdout));
    assert!(start.elapsed() < Duration::from_secs(5), "refused before filling 1 TiB");

    let out = memtree()
        .args(["report", "--workload", "fork", "--size", "64TiB", "--touch", "write"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--workload fork needs about"), "{}", text(&out.stderr));

    let out = memtree().args(["compare", "--size", "1TiB"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_prints_what_it_does_and_ends_cleanly() {
    let out = memtree()
        .args(["run", "serialize", "--size", "16MiB", "--workers", "2", "--hold", "200ms"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("received its own copy through a pipe"), "{stdout}");
    assert!(stdout.contains("ready: every worker holds its data"), "{stdout}");
    assert!(stdout.contains("memtree report --pid"), "{stdout}");
    assert!(stdout.trim_end().ends_with("nothing left behind"), "{stdout}");
}
