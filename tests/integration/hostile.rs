//! Hostile input, one regression test per case found (issue: reliability): names that try to
//! reach root's terminal, captures that are not what they claim, figures that do not parse or
//! overflow, processes that exit at the wrong moment, signals, and bad command lines.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::schema::Report;
use super::support::{fixture, memtree, parse, python, report_json, skip_unless_root, text};

/// A copy of a captured fixture in a temporary directory, to be spoiled.
fn spoilt_capture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let copy = Command::new("cp").arg("-r").arg(fixture(name)).arg(&out).status().unwrap();
    assert!(copy.success());
    (dir, out)
}

/// `memtree report ARGS --format json` with a time bound (a hang fails the test, it does not
/// hold the suite).
fn report_bounded(args: &[&str]) -> (i32, String, String) {
    let mut child = memtree()
        .args(["report", "--format", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("memtree report {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A process that names itself `name` (prctl PR_SET_NAME) and waits.
struct Named(std::process::Child, u32);

impl Named {
    fn spawn(name: &[u8]) -> Named {
        let literal: String = name.iter().map(|b| format!("\\x{b:02x}")).collect();
        let script = format!(
            "import ctypes, time\nctypes.CDLL(None).prctl(15, b'{literal}', 0, 0, 0)\n\
             print('ready', flush=True)\ntime.sleep(60)"
        );
        let mut child =
            Command::new(python()).args(["-c", &script]).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let pid = child.id();
        Named(child, pid)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_hostile_name_never_reaches_the_terminal_raw() {
    let named = Named::spawn(b"a b\nc\x1b[31mR\x07\x1b]0;");
    let pid = named.1.to_string();
    for format in ["table", "markdown"] {
        let out = memtree().args(["report", "--pid", &pid, "--format", format]).output().unwrap();
        let shown = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(!shown.contains('\x1b') && !shown.contains('\x07'), "{format}: {shown:?}");
        assert!(shown.contains(r"a b\nc\x1b[31mR\x07\x1b]0"), "{format}: {shown}");
        // The name's newline did not break the row: one line holds the pid and the name.
        assert!(shown.lines().any(|l| l.contains(&pid) && l.contains(r"a b\nc")), "{shown}");
    }
    // JSON keeps the name as it is, escaped by JSON itself.
    let report = report_json(&["--pid", &pid]);
    assert_eq!(report.processes[0].name, "a b\nc\x1b[31mR\x07\x1b]0");
    // A name that is not UTF-8 (fuzzing found the stat parser memtree used panicking on one).
    let named = Named::spawn(b"\xe3((kthreadd");
    let report = report_json(&["--pid", &named.1.to_string()]);
    assert_eq!(report.processes[0].name, "\u{fffd}((kthreadd");
}

#[test]
fn a_capture_of_symlinks_and_fifos_is_refused_file_by_file() {
    let (_dir, root) = spoilt_capture("fork-tree");
    let pid = root.join("5580");
    fs::remove_file(pid.join("smaps_rollup")).unwrap();
    symlink("/dev/zero", pid.join("smaps_rollup")).unwrap();
    fs::remove_file(pid.join("cmdline")).unwrap();
    symlink("/dev/urandom", pid.join("cmdline")).unwrap();
    let other = root.join("5581");
    fs::remove_file(other.join("smaps_rollup")).unwrap();
    nix::unistd::mkfifo(&other.join("smaps_rollup"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, json, stderr) =
        report_bounded(&["--proc-root", root.to_str().unwrap(), "--pid", "5538"]);
    assert_eq!(code, 0, "{stderr}");
    let report = parse(json.as_bytes());
    report.check_invariants();
    for pid in [5580, 5581] {
        let p = report.process(pid);
        let why = p.unreadable.as_deref().unwrap_or("");
        assert!(why.contains("smaps_rollup"), "{pid}: {why}");
        assert_eq!(p.rss, None);
    }
    assert_eq!(report.process(5580).cmdline, None, "the /dev/urandom cmdline is not read");
    assert_eq!(report.totals.readable_processes, 2);
}

/// The fork-tree capture with `from` replaced by `to` in one process's smaps_rollup.
fn capture_with_rollup(from: &str, to: &str) -> (tempfile::TempDir, Report) {
    let (dir, root) = spoilt_capture("fork-tree");
    let path = root.join("5580/smaps_rollup");
    let rollup = fs::read_to_string(&path).unwrap();
    assert!(rollup.contains(from));
    fs::write(&path, rollup.replacen(from, to, 1)).unwrap();
    let report = report_json(&["--proc-root", root.to_str().unwrap(), "--pid", "5538"]);
    (dir, report)
}

#[test]
fn a_figure_that_does_not_parse_makes_the_process_unreadable_and_leaves_every_sum() {
    let pss = fs::read_to_string(fixture("fork-tree").join("5580/smaps_rollup")).unwrap();
    let line = pss.lines().find(|l| l.starts_with("Pss:")).unwrap().to_string();
    let rss = pss.lines().find(|l| l.starts_with("Rss:")).unwrap().to_string();
    for (from, to, says) in [
        (line.as_str(), "Pss:          abc kB", "cannot parse Pss"),
        (line.as_str(), "Pss:          -5 kB", "cannot parse Pss"),
        (line.as_str(), "Pss:          99999999999999999999999 kB", "cannot parse Pss"),
        (line.as_str(), "Pss:          12 MB", "cannot parse Pss"),
        (line.as_str(), "Pss:          12 kB\r", "cannot parse Pss"),
        (rss.as_str(), "Rss:          9007199254740992 kB", "cannot parse Rss"),
        (line.as_str(), "", "no Pss line"),
    ] {
        let (_dir, report) = capture_with_rollup(from, to);
        report.check_invariants();
        let p = report.process(5580);
        let why = p.unreadable.as_deref().unwrap_or("");
        assert!(why.starts_with("failed") && why.contains(says), "{to:?}: {why:?}");
        assert_eq!((p.rss, p.pss), (None, None), "{to:?}: absent, not a guess");
        // Every sum over the same three processes: Σ RSS / footprint is the tree's overcount.
        assert_eq!(report.totals.readable_processes, 3, "{to:?}");
        assert_eq!(report.totals.unreadable_reasons.get("failed"), Some(&1));
    }
}

#[test]
fn figures_too_large_for_a_machine_never_wrap_the_totals() {
    // 2^53 kB (2^63 bytes) in every process: two of them used to wrap Σ RSS to 0 B. No machine
    // holds more than 4 PiB: such a figure is not the kernel's, and the process is unreadable.
    let (_dir, root) = spoilt_capture("fork-tree");
    for pid in ["5538", "5580", "5581", "5582"] {
        let path = root.join(pid).join("smaps_rollup");
        let rollup = fs::read_to_string(&path).unwrap();
        let rss = rollup.lines().find(|l| l.starts_with("Rss:")).unwrap();
        fs::write(&path, rollup.replacen(rss, "Rss: 9007199254740992 kB", 1)).unwrap();
    }
    let report = report_json(&["--proc-root", root.to_str().unwrap(), "--pid", "5538"]);
    assert_eq!(report.totals.rss_sum_bytes, None, "absent, never a wrapped 0");
    assert_eq!(report.totals.readable_processes, 0);
    let out = memtree()
        .args(["report", "--proc-root", root.to_str().unwrap(), "--pid", "5538"])
        .output()
        .unwrap();
    assert!(!text(&out.stdout).contains(" 0 B  "), "{}", text(&out.stdout));
}

#[test]
fn an_inconsistent_capture_is_reported_not_dropped() {
    let (_dir, root) = spoilt_capture("fork-tree");
    // 5580 and 5581 name each other as parents; 5582's stat is garbage; 5538 lost its rollup
    // and 5538's status has an error memtree does not know.
    let stat = |pid: &str, ppid: &str| {
        let path = root.join(pid).join("stat");
        let text = fs::read_to_string(&path).unwrap();
        let (head, tail) = text.split_once(") ").unwrap();
        let mut fields: Vec<&str> = tail.split(' ').collect();
        fields[1] = ppid;
        fs::write(&path, format!("{head}) {}", fields.join(" "))).unwrap();
    };
    stat("5580", "5581");
    stat("5581", "5580");
    fs::write(root.join("5582/stat"), "garbage\n").unwrap();
    fs::remove_file(root.join("5538/smaps_rollup")).unwrap();
    let (code, json, stderr) = report_bounded(&["--proc-root", root.to_str().unwrap(), "--all"]);
    assert_eq!(code, 0, "{stderr}");
    let report = parse(json.as_bytes());
    let mut pids: Vec<u32> = report.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    assert_eq!(pids, [5538, 5580, 5581, 5582], "every process of the capture is reported");
    assert!(report.explanation.iter().any(|s| s.contains("name each other as parents")));
    let garbage = report.process(5582).unreadable.as_deref().unwrap_or("");
    assert!(garbage.contains("stat"), "{garbage}");
    let missing = report.process(5538).unreadable.as_deref().unwrap_or("");
    assert!(missing.contains("missing from the capture"), "not 'vanished': {missing}");
    fs::write(root.join("5538/smaps_rollup.error"), "EBANANA\n").unwrap();
    let report = report_json(&["--proc-root", root.to_str().unwrap(), "--pid", "5538"]);
    let unknown = report.process(5538).unreadable.as_deref().unwrap_or("");
    assert!(unknown.contains("does not know") && unknown.contains("EBANANA"), "{unknown}");
}

#[test]
fn a_command_too_short_to_sample_is_reported_with_its_time_and_why() {
    for _ in 0..10 {
        let out = memtree().args(["report", "--format", "json", "--", "true"]).output().unwrap();
        assert!(out.status.success());
        let report = parse(&out.stdout);
        assert!(
            report.taken_at_unix > 1.7e9,
            "a real time, not the epoch: {}",
            report.taken_at_unix
        );
        if report.processes.is_empty() {
            assert!(
                report.explanation.iter().any(|s| s.contains("exited before memtree could read")),
                "{:?}",
                report.explanation
            );
        }
    }
}

/// A zombie: a child a sleeping Python parent never waits for.
#[test]
fn a_tree_with_no_readable_pages_has_no_exact_figures_not_zeros() {
    if skip_unless_root("exact accounting of a zombie") {
        return;
    }
    let script = "import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n\
                  print('ready', pid, flush=True)\ntime.sleep(60)";
    let mut parent =
        Command::new(python()).args(["-c", script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let zombie = line.split_whitespace().nth(1).unwrap().to_string();
    while !fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap().contains(") Z ") {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = report_json(&["--pid", &zombie, "--exact"]);
    let _ = parent.kill();
    let _ = parent.wait();
    assert_eq!(report.totals.footprint_bytes, None, "{:?}", report.totals);
    assert_eq!(report.totals.exclusive_bytes, None);
    assert!(report.totals.exact_unavailable.as_deref().unwrap_or("").contains("vanished"));
}

#[test]
fn sigterm_to_a_followed_command_stops_its_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "import os, time\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n\
         \x20       time.sleep(120)\n        os._exit(0)\n    kids.append(pid)\n\
         open('{}', 'w').write(' '.join(map(str, kids)))\ntime.sleep(120)",
        pids.display()
    );
    let out = dir.path().join("report.json");
    let mut memtree = memtree()
        .args(["report", "--format", "json", "--output", out.to_str().unwrap(), "--"])
        .args([python(), "-c", &script])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pids.exists() || fs::read_to_string(&pids).unwrap().split_whitespace().count() < 3 {
        assert!(Instant::now() < deadline, "the children did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kids: Vec<u32> =
        fs::read_to_string(&pids).unwrap().split_whitespace().map(|p| p.parse().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(memtree.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = memtree.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "CMD's status: killed by SIGTERM");
    for kid in kids {
        assert!(!Path::new(&format!("/proc/{kid}")).exists(), "child {kid} left running");
    }
    let report = parse(&fs::read(&out).unwrap());
    assert_eq!(report.processes.len(), 4, "the report shows what was seen");
}

#[test]
fn write_errors_name_the_file_and_workload_errors_are_one_line() {
    let out = memtree().args(["report", "--all", "--output", "/dev/full"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/dev/full"), "{stderr}");
    // A device is written to, never replaced by a file (the report is replaced whole only
    // where it is a regular file).
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::metadata("/dev/full").unwrap().file_type().is_char_device());
    // A symlink to a report is followed: the file it names is replaced, the link stays.
    let dir = tempfile::tempdir().unwrap();
    let (real, link) = (dir.path().join("real.json"), dir.path().join("link.json"));
    fs::write(&real, "old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = memtree()
        .args(["report", "--pid", "1", "--format", "json", "-o"])
        .arg(&link)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(fs::read_to_string(&real).unwrap().contains("memtree.report/v1"));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
    let out = memtree()
        .args(["report", "--workload", "fork", "--size", "100TiB", "--force"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line, nothing repeated: {stderr}");
    assert!(stderr.contains("cannot start the fork workload"), "{stderr}");
}

#[test]
fn sizes_out_of_range_or_negative_are_refused_plainly() {
    for (size, says) in [("18446744073709551616", "out of range"), ("-5MiB", "cannot be negative")]
    {
        let out = memtree().args(["run", "fork", "--size", size]).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{size}: {stderr}");
        assert!(stderr.contains(says), "{size}: {stderr}");
        assert!(!stderr.contains("-- "), "no tip to start a command: {stderr}");
    }
}
