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

/// Whether `python3` can import `modules` (`"numpy, pandas"`); CI, which installs
/// workloads/requirements.txt, must be able to.
fn have_modules(modules: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have {modules}: pip install -r workloads/requirements.txt"
        );
        eprintln!("skipped: {modules} missing (pip install -r workloads/requirements.txt)");
    }
    ok
}

/// numpy and pandas, for the Python workloads.
fn have_pandas() -> bool {
    have_modules("numpy, pandas")
}

/// One Python workload at a time: four busy interpreters per test on a 2-core machine would
/// otherwise starve each other and blur the moment every worker holds its data.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_workload(program: &str, extra: &[&str]) -> Report {
    let (report, status, said) = run_workload_with(&[], program, extra);
    assert_eq!(status, Some(0), "{program}: {said}");
    report
}

/// `memtree report --format json REPORT_ARGS -- python3 workloads/PROGRAM …`: the report, the
/// exit status and what both said.
fn run_workload_with(
    report_args: &[&str],
    program: &str,
    extra: &[&str],
) -> (Report, Option<i32>, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let script = repo().join("workloads").join(program);
    let (rows, cols, workers) = (ROWS.to_string(), COLS.to_string(), WORKERS.to_string());
    let out = memtree()
        .args(["report", "--format", "json", "--output", json.to_str().unwrap()])
        .args(report_args)
        .arg("--")
        .args(["python3", script.to_str().unwrap()])
        .args(["--rows", &rows, "--cols", &cols, "--workers", &workers, "--hold", "2"])
        .args(extra)
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let report = parse(&std::fs::read(&json).unwrap_or_else(|e| panic!("{e}: {said}")));
    report.check_invariants();
    assert_eq!(report.moment, "peak");
    (report, out.status.code(), said)
}

/// The processes Python's multiprocessing started as workers, with how.
fn workers_started(report: &Report) -> Vec<&Process> {
    report.processes.iter().filter(|p| p.python_role.as_deref() == Some("worker")).collect()
}

fn roles(report: &Report) -> Vec<&str> {
    let mut roles: Vec<&str> =
        report.processes.iter().filter_map(|p| p.python_role.as_deref()).collect();
    roles.sort_unstable();
    roles.dedup();
    roles
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
        // SIGTERM, not SIGKILL: multiprocessing's resource tracker ignores it and, once the
        // main process is gone, unlinks the named semaphores (/dev/shm/sem.mp-*) of the spawn
        // and forkserver pools; a SIGKILL of the whole group left them behind.
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let _ = child.wait();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while nix::sys::signal::kill(group, None).is_ok() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
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

#[test]
fn the_start_method_decides_how_many_copies_of_a_module_level_frame_there_are() {
    if !have_pandas() {
        return;
    }
    for method in ["fork", "forkserver", "spawn"] {
        let extra = ["--start-method", method];
        let (report, status, said) =
            run_workload_with(&["--dedup"], "pool_module_global.py", &extra);
        assert_eq!(status, Some(0), "{method}: {said}");
        let workers = workers_started(&report);
        assert_eq!(workers.len(), WORKERS, "{method}: {:#?}", report.processes);
        let duplicated = report.totals.duplicated_bytes.unwrap();
        for w in &workers {
            assert_eq!(w.python_start_method.as_deref(), Some(method), "{w:?}");
        }
        let explanation = report.explanation.join(" ");
        match method {
            "fork" => {
                for w in &workers {
                    let uss = w.peak_uss_bytes.unwrap().unwrap();
                    assert!(uss < DATA / 4, "fork: one copy, shared: {w:?}");
                }
                assert!(duplicated < DATA / 4, "fork: nothing copied: {duplicated}");
                assert_eq!(roles(&report), ["worker"], "fork needs no helper");
                assert!(explanation.contains("3 Python workers were forked"), "{explanation}");
            }
            _ => {
                for w in &workers {
                    let uss = w.peak_uss_bytes.unwrap().unwrap();
                    assert!(uss >= DATA * 9 / 10, "{method}: a rebuilt copy: {w:?}");
                }
                // The parent's copy, and one identical copy in every worker.
                let copies = WORKERS as u64 * DATA;
                assert!(duplicated >= copies * 9 / 10, "{method}: {duplicated} < {copies}");
                let helpers = if method == "forkserver" {
                    vec!["fork_server", "resource_tracker", "worker"]
                } else {
                    vec!["resource_tracker", "worker"]
                };
                assert_eq!(roles(&report), helpers, "{method}");
            }
        }
        if method == "forkserver" {
            // What the explanation says of such a tree, figures included.
            let sentence = explanation
                .split(". ")
                .find(|s| s.contains("Python workers were started by a fork server"))
                .unwrap_or_else(|| panic!("{explanation}"));
            assert!(
                sentence.starts_with(
                    "3 Python workers were started by a fork server: they inherited nothing of \
                     the parent's data, so what they hold is their own, built or received in \
                     each (each holds "
                ),
                "{sentence}"
            );
            assert!(
                sentence.contains(
                    "of it is the same content as elsewhere in the tree: copies, not shared"
                ),
                "{sentence}"
            );
        }
    }
}

#[test]
fn the_seeds_main_built_global_fails_in_forkserver_workers_and_the_status_says_so() {
    if !have_pandas() {
        return;
    }
    let extra = ["--start-method", "forkserver"];
    let (report, status, said) = run_workload_with(&[], "pool_global.py", &extra);
    assert_eq!(status, Some(1), "the program's own status: {said}");
    assert!(said.contains("name 'DF' is not defined"), "{said}");
    // The tree was still measured, helpers named.
    assert_eq!(report.command.as_ref().unwrap().exit_code, Some(1));
    assert!(roles(&report).contains(&"fork_server"), "{:#?}", report.processes);
}

#[test]
fn shared_memory_with_copy_false_is_one_copy_under_every_start_method() {
    if !have_pandas() {
        return;
    }
    for method in ["fork", "forkserver", "spawn"] {
        let extra = ["--copy", "false", "--start-method", method];
        let (report, status, said) =
            run_workload_with(&["--dedup"], "pool_shared_array.py", &extra);
        assert_eq!(status, Some(0), "{method}: {said}");
        let workers = workers_started(&report);
        assert_eq!(workers.len(), WORKERS, "{method}: {:#?}", report.processes);
        for w in &workers {
            assert!(w.shared.unwrap() >= DATA, "{method}: the array is mapped shared: {w:?}");
        }
        // Interpreters started anew hold some identical heap (a few MiB each, pandas'
        // imports), never a frame's worth: a copy per worker would be WORKERS frames.
        let duplicated = report.totals.duplicated_bytes.unwrap();
        assert!(duplicated < DATA, "{method}: no copy of the frame: {duplicated}");
    }
}

#[test]
fn compare_python_puts_the_start_methods_side_by_side() {
    if !have_pandas() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = memtree()
        .args(["compare", "--python", "--size", "32MiB", "--workers", "2", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "memtree.compare/v1");
    assert_eq!(doc["kind"], "python");
    let variants = doc["variants"].as_array().unwrap();
    let by_name = |name: &str| {
        variants.iter().find(|v| v["variant"] == name).unwrap_or_else(|| panic!("{name}: {doc}"))
    };
    let copies = |name: &str| by_name(name)["copies"].as_f64().unwrap();
    assert!(copies("global, fork") < 1.5, "{doc}");
    // Two workers, each with a rebuilt copy, beside the parent's.
    assert!(copies("global, forkserver") > 2.5, "{doc}");
    assert!(copies("global, spawn") > 2.5, "{doc}");
    assert!(copies("shared memory, forkserver") < 1.5, "{doc}");
    let seed = by_name("main() global, forkserver");
    assert_eq!(seed["exit_status"], 1, "{seed}");
    assert!(seed["verdict"].as_str().unwrap().contains("name 'DF' is not defined"), "{seed}");
    assert_eq!(
        by_name("global, forkserver")["helpers"],
        serde_json::json!(["fork server", "resource tracker"])
    );
    // Bad input: one line, status 2.
    let out = memtree()
        .args(["compare", "--python", "--interpreter", "/nonexistent/python"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).lines().count(), 1, "{}", text(&out.stderr));
}

#[test]
fn referencing_the_global_frame_copies_a_few_mib_per_worker_not_the_frame() {
    if !have_pandas() || super::support::skip_unless_root("exact erosion") {
        return;
    }
    // The seed's claim, settled with its own numbers: what each worker copied since the fork.
    let (report, status, said) = run_workload_with(&["--exact"], "pool_global.py", &[]);
    assert_eq!(status, Some(0), "{said}");
    for w in pool_workers(&report) {
        let copied = w.copied_from_parent_bytes.flatten().unwrap_or_else(|| panic!("{w:?} {said}"));
        let shared = w.shared_with_parent_bytes.flatten().unwrap();
        assert!(copied < DATA / 4, "a few MiB of object headers, not the frame: {copied}");
        assert!(shared >= DATA, "the frame's pages are still the parent's: {shared}");
        assert_eq!(w.erosion_estimated.flatten(), Some(false));
    }
}

/// A gunicorn --preload master serving workloads/gunicorn_app.py on loopback, stopped (its
/// whole process group) on drop.
struct Gunicorn {
    child: std::process::Child,
    port: u16,
}

impl Gunicorn {
    fn start(frozen: bool) -> Gunicorn {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "gunicorn", "--preload", "-w", "2", "-b"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--chdir")
            .arg(repo().join("workloads"))
            .arg("gunicorn_app:app")
            .env("MEMTREE_APP_MIB", "48")
            .env("MEMTREE_GC_FREEZE", if frozen { "1" } else { "0" })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child =
            cmd.spawn().expect("python3 -m gunicorn (pip install -r workloads/requirements.txt)");
        let g = Gunicorn { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while g.get().is_none() {
            assert!(std::time::Instant::now() < deadline, "gunicorn never answered");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        g
    }

    /// One request, its body.
    fn get(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.contains("200 OK").then_some(text)
    }

    /// Σ copied from parent over the workers, exact.
    fn copied(&self) -> u64 {
        let report =
            super::support::report_json(&["--pid", &self.child.id().to_string(), "--exact"]);
        let workers: Vec<&Process> =
            report.processes.iter().filter(|p| p.ppid == self.child.id()).collect();
        assert_eq!(workers.len(), 2, "two workers: {:?}", report.processes);
        workers.iter().map(|w| w.copied_from_parent_bytes.flatten().unwrap()).sum()
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn have_gunicorn() -> bool {
    have_modules("gunicorn")
}

#[test]
fn gc_freeze_in_a_preloading_gunicorn_master_keeps_its_workers_sharing() {
    if !have_gunicorn() || super::support::skip_unless_root("exact erosion") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut copied = Vec::new();
    for frozen in [false, true] {
        let server = Gunicorn::start(frozen);
        // Enough requests for full collections in both workers.
        for _ in 0..150 {
            server.get().expect("an answer");
        }
        copied.push(server.copied());
    }
    let (plain, frozen) = (copied[0], copied[1]);
    // 48 MiB of objects built in the master: without the freeze, full collections in each
    // worker write to every object's header and copy most of them.
    assert!(plain > 30 << 20, "the collector copies the master's objects: {plain}");
    assert!(frozen * 3 < plain, "gc.freeze() copies clearly less: {frozen} vs {plain}");
}
