//! `memtree record`, `report --from`, `plot` and `top --replay` on real trees and on files
//! that are not recordings.

use std::process::Output;

use super::schema::Report;
use super::support::{ForkTree, MIB, memtree, parse, skip_unless_root, text};

fn run(args: &[&str]) -> Output {
    memtree().args(args).output().unwrap()
}

/// The figures of a report that nothing outside the tree moves: its resident bytes and its
/// anonymous memory, and each worker's erosion. (How file pages split between shared and
/// private depends on who else maps them: a test running beside this one starts and stops
/// Python processes that map the same libpython.)
fn figures(report: &Report) -> Vec<(u32, String)> {
    report
        .processes
        .iter()
        .map(|p| {
            let f = &p.figures;
            let erosion =
                (p.shared_with_parent_bytes.flatten(), p.copied_from_parent_bytes.flatten());
            let anon = (f.rss, f.pss_anon, f.private_dirty, f.shared_dirty, f.swap);
            (p.pid, format!("{anon:?} {erosion:?}"))
        })
        .collect()
}

/// PSS and USS, live and recorded, within what other processes mapping the same files move.
fn close_enough(live: &Report, from: &Report) {
    for (a, b) in live.processes.iter().zip(&from.processes) {
        for (x, y) in [(a.pss, b.pss), (a.uss, b.uss)] {
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(x.abs_diff(y) < 256 << 10, "pid {}: {x} vs {y}", a.pid);
        }
    }
}

#[test]
fn a_recording_reports_what_the_live_report_says_of_the_same_moment() {
    if skip_unless_root("exact figures in the recording") {
        return;
    }
    // A tree that holds still: its figures now are its figures a second from now.
    let tree = ForkTree::spawn(32, 2, "write");
    let pid = tree.parent.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tree.mtr");
    let file = file.to_str().unwrap();
    let live = run(&["report", "--pid", &pid, "--exact", "--format", "json"]);
    assert!(live.status.success(), "{}", text(&live.stderr));
    let out =
        run(&["record", "--pid", &pid, "-o", file, "--interval", "200ms", "--duration", "1s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("recorded"), "{}", text(&out.stderr));
    let from = run(&["report", "--from", file, "--at", "end", "--format", "json"]);
    assert!(from.status.success(), "{}", text(&from.stderr));
    let (live, from) = (parse(&live.stdout), parse(&from.stdout));
    from.check_invariants();
    assert_eq!(from.schema, "memtree.report/v1");
    assert_eq!(figures(&from), figures(&live), "the same processes, the same bytes");
    close_enough(&live, &from);
    assert_eq!(from.totals.footprint_bytes, live.totals.footprint_bytes);
    assert_eq!(from.totals.footprint_method, "pagemap");
    // The workers' erosion came through the file too.
    let worker = from.processes.iter().find(|p| p.ppid == tree.parent).unwrap();
    let copied = worker.copied_from_parent_bytes.flatten().unwrap();
    // The helper's writer makes a new buffer (a bytearray of the data): no page of its
    // parent's is copied on write, and its parent's buffer is still shared.
    assert!(copied < 2 * MIB, "a new buffer, not copies: {copied}");
    assert!(worker.shared_with_parent_bytes.flatten().unwrap() >= 32 * MIB);
    // At the peak: a run of samples, each process's own peak.
    let peak = parse(&run(&["report", "--from", file, "--format", "json"]).stdout);
    assert_eq!(peak.moment, "peak");
    assert!(peak.command.as_ref().unwrap().samples >= 3);
    assert!(peak.processes.iter().all(|p| p.peak_rss_bytes.flatten().is_some()));
    // A picture of it.
    let svg = dir.path().join("tree.svg");
    let out = run(&["plot", file, "-o", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("Σ RSS (what a monitor shows)") && svg.contains("copied from its parent"));
}

#[test]
fn a_recording_cut_short_is_read_to_its_last_whole_sample() {
    let tree = ForkTree::spawn(8, 1, "read");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.mtr");
    let f = file.to_str().unwrap();
    let pid = tree.parent.to_string();
    let out = run(&[
        "record",
        "--pid",
        &pid,
        "-o",
        f,
        "--interval",
        "100ms",
        "--duration",
        "1s",
        "--no-exact",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&file).unwrap();
    // Killed mid-write: the last frame (the end) and part of a sample cut off.
    std::fs::write(&file, &bytes[..bytes.len() - 20]).unwrap();
    let out = run(&["report", "--from", f, "--at", "end", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cut short"), "said on stderr: {}", text(&out.stderr));
    let report = parse(&out.stdout);
    assert_eq!(report.process(tree.parent).pid, tree.parent);
    // It says which sample it is: the last whole one.
    assert_eq!(report.moment, "recorded");
    let end = report.recording.unwrap();
    assert_eq!(end.at, "end");
    assert_eq!(end.sample, end.samples);
    assert!(end.samples >= 5 && (0.4..3.0).contains(&end.seconds), "{end:?}");
    // `--at` a time: the last sample at or before it.
    let out = run(&["report", "--from", f, "--at", "0.15", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let at = parse(&out.stdout).recording.unwrap();
    assert_eq!(at.at, "seconds");
    assert!(at.seconds <= 0.15 && at.sample < end.sample, "{at:?} vs {end:?}");
    assert_eq!(at.samples, end.samples);
    // A moment that is not one: one line, status 2.
    let out = run(&["report", "--from", f, "--at", "-5s"]);
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("\"-5s\" is not a moment"), "{said}");
}

#[test]
fn files_that_are_not_recordings_get_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(path("report.json"), b"{\"schema\": \"memtree.report/v1\"}").unwrap();
    let mut newer = b"memtree-record\n\0".to_vec();
    newer.extend_from_slice(&9u16.to_le_bytes());
    newer.extend_from_slice(&[0; 8]);
    std::fs::write(path("newer.mtr"), &newer).unwrap();
    std::fs::write(path("header.mtr"), b"memtree-record\n\0\x01\x00\x10").unwrap();
    nix::unistd::mkfifo(dir.path().join("fifo.mtr").as_path(), nix::sys::stat::Mode::S_IRWXU)
        .unwrap();
    let cases = [
        (path("report.json"), "not a memtree recording"),
        (path("newer.mtr"), "newer than this memtree reads"),
        (path("header.mtr"), "header is cut short"),
        (path("missing.mtr"), "No such file"),
        (dir.path().to_str().unwrap().to_string(), "not a regular file"),
        // A FIFO no one writes to: refused, not waited on.
        (path("fifo.mtr"), "not a regular file"),
    ];
    for (file, says) in &cases {
        for args in [
            vec!["report", "--from", file.as_str()],
            vec!["plot", file.as_str(), "-o", "/dev/null.svg"],
        ] {
            let out = run(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        }
    }
    let out = run(&["record", "--pid", "1", "-o", "/nonexistent/dir/r.mtr"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A target that is not there: one line, and no recording left behind.
    let left = path("never.mtr");
    let out = run(&["record", "--pid", "4194304", "-o", &left]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no process with pid 4194304"), "{}", text(&out.stderr));
    assert!(!std::path::Path::new(&left).exists(), "nothing left behind");
    // A plot into a folder that does not exist: said before the command runs, which it does not.
    let marker = path("ran");
    let out = run(&["report", "--plot", "/nonexistent-dir/x.svg", "--", "touch", &marker]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!std::path::Path::new(&marker).exists(), "the command was not started");
}

#[test]
fn without_root_a_recording_holds_the_estimates_and_says_so() {
    if skip_unless_root("dropping privileges") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .unwrap();
    let file = dir.path().join("nobody.mtr");
    let f = file.to_str().unwrap();
    // memtree as nobody, recording a workload of its own (readable, frames hidden).
    let out = memtree()
        .args(["record", "--workload", "fork", "--size", "16MiB", "--workers", "2"])
        .args(["--touch", "write=0.5", "--duration", "1500ms", "--interval", "250ms", "-o", f])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["report", "--from", f, "--at", "end", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    assert!(!report.privileged, "recorded without privilege");
    assert_eq!(report.totals.footprint_method, "pss_estimate");
    let reason = report.totals.exact_unavailable.as_deref().unwrap_or_default();
    assert!(reason.contains("CAP_SYS_ADMIN"), "the reason travels in the file: {reason}");
    let root = report.trees[0].root_pid;
    let workers: Vec<_> = report.processes.iter().filter(|p| p.ppid == root).collect();
    assert_eq!(workers.len(), 2);
    for w in workers {
        assert_eq!(w.erosion_estimated.flatten(), Some(true));
        let copied = w.copied_from_parent_bytes.flatten().unwrap();
        assert!(copied.abs_diff(8 * MIB) < 2 * MIB, "about half of 16 MiB: {copied}");
    }
}

/// A recording memtree wrote in format 1 (a fork workload, 1 MiB, two workers writing half of
/// it, as root) still reads the same: a change of the encoding that does not raise the format
/// number fails here.
#[test]
fn a_format_1_recording_still_reads_as_written() {
    let file = super::support::repo().join("tests/fixtures/record/v1-fork.mtr");
    let out = run(&["report", "--from", file.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    report.check_invariants();
    assert_eq!(report.target["kind"], "workload");
    assert_eq!(report.moment, "peak");
    assert_eq!(report.command.as_ref().unwrap().samples, 5);
    assert_eq!(report.totals.footprint_method, "pagemap");
    assert_eq!(report.exact_taken_at_unix, None, "format 1 did not keep it: absent, not guessed");
    assert_eq!(report.processes.len(), 3);
    let root = report.trees[0].root_pid;
    for w in report.processes.iter().filter(|p| p.ppid == root) {
        let copied = w.copied_from_parent_bytes.flatten().unwrap();
        assert!((512 << 10..1 << 20).contains(&copied), "half of 1 MiB, and a few pages: {copied}");
        assert_eq!(w.erosion_estimated.flatten(), Some(false));
    }
}

/// A recording memtree wrote in format 2 (the fork workload, 1 MiB, two workers writing half
/// of it, a sample every 200 ms for 1 s, as root) still reads the same, and each sample says how
/// old the exact figures it carries were: the first sample ran the pass, the later ones carry
/// it (the tree did not move).
#[test]
fn a_format_2_recording_says_how_old_its_carried_figures_are() {
    let file = super::support::repo().join("tests/fixtures/record/v2-fork.mtr");
    let at = |when: &str| {
        let out =
            run(&["report", "--from", file.to_str().unwrap(), "--at", when, "--format", "json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report = parse(&out.stdout);
        report.check_invariants();
        assert_eq!(report.totals.footprint_method, "pagemap");
        let seconds = report.recording.as_ref().unwrap().seconds;
        (seconds, report.taken_at_unix - report.exact_taken_at_unix.expect("kept in format 2"))
    };
    let (first, age) = at("0");
    assert!(first < 0.1 && age == 0.0, "the first sample read them itself: {first} s, {age} s old");
    let (later, age) = at("0.65");
    assert!((0.3..0.7).contains(&later), "{later}");
    let carried = (later - first - 0.05..=later).contains(&age);
    assert!(carried, "carried from the first sample: {age} s old at {later} s");
}
