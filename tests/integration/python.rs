//! The seed scenario as the real Python programs in workloads/, run under
//! `memtree report -- python3 …`: the truths must hold on the code users write.

use std::process::Command;

use super::schema::{Process, Report};
use super::support::{memtree, parse, repo, text};

const ROWS: u64 = 500_000;
const COLS: u64 = 8;
/// The DataFrame's data: ROWS × COLS float64.
const DATA: u64 = ROWS * COLS * 8;
const WORKERS: usize = 3;

/// numpy and pandas importable by `python3`; CI (which installs them) must have them.
fn have_pandas() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import numpy, pandas"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Python workloads: pip install -r workloads/requirements.txt"
        );
        eprintln!("skipped: numpy/pandas missing (pip install -r workloads/requirements.txt)");
    }
    ok
}

/// One Python workload at a time: four busy interpreters per test on a 2-core machine would
/// otherwise starve each other and blur the moment every worker holds its data.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_workload(program: &str, extra: &[&str]) -> Report {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let script = repo().join("workloads").join(program);
    let (rows, cols, workers) = (ROWS.to_string(), COLS.to_string(), WORKERS.to_string());
    let out = memtree()
        .args(["report", "--format", "json", "--output", json.to_str().unwrap(), "--"])
        .args(["python3", script.to_str().unwrap()])
        .args(["--rows", &rows, "--cols", &cols, "--workers", &workers, "--hold", "2"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{program}: {}{}", text(&out.stdout), text(&out.stderr));
    let report = parse(&std::fs::read(&json).unwrap());
    report.check_invariants();
    assert_eq!(report.moment, "peak");
    report
}

/// The Pool's worker processes at the peak: the main program's children.
fn pool_workers(report: &Report) -> Vec<&Process> {
    let workers: Vec<&Process> =
        report.processes.iter().filter(|p| p.depth == 1 && p.name.starts_with("python")).collect();
    assert_eq!(workers.len(), WORKERS, "every worker held its data at the peak: {workers:?}");
    workers
}

#[test]
fn global_dataframe_is_shared_not_copied() {
    if !have_pandas() {
        return;
    }
    let report = run_workload("pool_global.py", &[]);
    for w in pool_workers(&report) {
        assert!(w.rss.unwrap() >= DATA, "a monitor sees the whole frame: {w:?}");
        assert!(w.uss.unwrap() < DATA / 4, "but it is shared, not copied: {w:?}");
        assert!(w.peak_uss_bytes.unwrap().unwrap() < DATA / 4, "never copied: {w:?}");
    }
}

#[test]
fn partial_and_starmap_pickle_a_copy_per_worker() {
    if !have_pandas() {
        return;
    }
    for program in ["pool_partial.py", "pool_starmap.py"] {
        let report = run_workload(program, &[]);
        for w in pool_workers(&report) {
            // Its own peak: the tree's peak may fall while a worker is still unpickling.
            let peak_uss = w.peak_uss_bytes.unwrap().unwrap();
            assert!(peak_uss >= DATA * 9 / 10, "{program}: a private copy: {w:?}");
        }
    }
}

#[test]
fn shared_array_default_constructor_copies_and_copy_false_shares() {
    if !have_pandas() {
        return;
    }
    let copied = run_workload("pool_shared_array.py", &["--copy", "default"]);
    for w in pool_workers(&copied) {
        let peak_uss = w.peak_uss_bytes.unwrap().unwrap();
        assert!(peak_uss >= DATA * 9 / 10, "pandas copied the array: {w:?}");
    }
    let shared = run_workload("pool_shared_array.py", &["--copy", "false"]);
    for w in pool_workers(&shared) {
        assert!(w.uss.unwrap() < DATA / 4, "copy=False keeps it shared: {w:?}");
        assert!(w.peak_uss_bytes.unwrap().unwrap() < DATA / 4, "never copied: {w:?}");
        assert!(w.shared.unwrap() >= DATA, "{w:?}");
    }
    assert!(
        copied.totals.footprint_bytes.unwrap() > shared.totals.footprint_bytes.unwrap() + 2 * DATA,
        "the default constructor costs about one frame per worker"
    );
}

#[test]
fn each_worker_says_how_python_started_it() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    for method in ["fork", "forkserver", "spawn"] {
        let mut child = std::process::Command::new(super::support::python())
            .arg(super::support::repo().join("tests/helpers/startmethods.py"))
            .arg(method)
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let pid =
            line.trim().strip_prefix("ready ").unwrap_or_else(|| panic!("{line:?}")).to_string();
        let report = super::support::report_json(&["--pid", &pid]);
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        let workers: Vec<_> = report
            .processes
            .iter()
            .filter(|p| p.python_role.as_deref() == Some("worker"))
            .collect();
        assert_eq!(workers.len(), 2, "{method}: {:#?}", report.processes);
        for w in &workers {
            assert_eq!(w.python_start_method.as_deref(), Some(method), "{w:?}");
        }
        let helpers: Vec<&str> = report
            .processes
            .iter()
            .filter_map(|p| p.python_role.as_deref())
            .filter(|r| *r != "worker")
            .collect();
        match method {
            "fork" => assert!(helpers.is_empty(), "{helpers:?}"),
            "forkserver" => assert!(helpers.contains(&"fork_server"), "{helpers:?}"),
            _ => assert!(!helpers.contains(&"fork_server"), "{helpers:?}"),
        }
        let main = report.processes.iter().find(|p| p.pid.to_string() == pid).unwrap();
        assert_eq!(main.python_role, None, "the main process is not a worker");
    }
}
