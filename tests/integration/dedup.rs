//! `--dedup`: duplicated and zero-filled content on real trees, copies at shifted offsets, and
//! the unprivileged fallback.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::schema::Report;
use super::support::{MIB, memtree, parse, python, repo, report_json, skip_unless_root, text};

const SIZE_MIB: u64 = 32;
const SIZE: u64 = SIZE_MIB * MIB;
const WORKERS: u64 = 3;

fn dedup_workload(variant: &str, touch: &str) -> Report {
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
        "--dedup",
    ]);
    report.check_invariants();
    assert_eq!(report.totals.footprint_method, "pagemap", "--dedup implies --exact");
    report
}

fn duplicated(report: &Report) -> u64 {
    report.totals.duplicated_bytes.expect("measured")
}

#[test]
fn serialize_copies_are_duplicated_content() {
    if skip_unless_root("--dedup") {
        return;
    }
    let report = dedup_workload("serialize", "read");
    let dup = duplicated(&report);
    assert!(dup >= WORKERS * SIZE * 95 / 100, "3 redundant copies: {dup}");
    assert!(dup <= WORKERS * SIZE + 2 * MIB, "{dup}");
    let workers: Vec<_> = report.processes.iter().filter(|p| p.depth == 1).collect();
    for w in &workers {
        let d = w.duplicated_bytes.flatten().unwrap();
        assert!(d >= SIZE * 95 / 100, "each worker's copy is the duplicate: {w:?}");
    }
    let parent = report.processes.iter().find(|p| p.depth == 0).unwrap();
    assert!(parent.duplicated_bytes.flatten().unwrap() < MIB, "the parent holds the original");
    let scanned = report.totals.content_scanned_bytes.unwrap();
    assert!(scanned >= (WORKERS + 1) * SIZE, "every copy was read once: {scanned}");
    assert!(report.explanation.iter().any(|l| l.contains("identical copies")));
}

#[test]
fn shared_pages_are_not_duplicates() {
    if skip_unless_root("--dedup") {
        return;
    }
    for variant in ["fork", "shared"] {
        let dup = duplicated(&dedup_workload(variant, "read"));
        assert!(dup < MIB, "{variant}: one copy, mapped many times, is not duplicated: {dup}");
    }
}

#[test]
fn copy_on_write_copies_that_differ_are_not_duplicates() {
    if skip_unless_root("--dedup") {
        return;
    }
    // Every page written once: N+1 copies in memory, each differing by one byte per page.
    let report = dedup_workload("fork", "write");
    assert!(report.totals.footprint_bytes.unwrap() >= (WORKERS + 1) * SIZE);
    let dup = duplicated(&report);
    assert!(dup < SIZE / 20, "near-copies are private memory, not identical content: {dup}");
}

#[test]
fn a_copy_at_a_shifted_offset_and_zero_filled_pages_are_found() {
    if skip_unless_root("--dedup") {
        return;
    }
    let mut child = Command::new(python())
        .arg(repo().join("tests/helpers/content.py"))
        .arg(SIZE_MIB.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    let report = report_json(&["--pid", &pid, "--dedup"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let dup = duplicated(&report);
    assert!(dup >= SIZE * 9 / 10, "the shifted copy is found: {dup} of {SIZE}");
    let zero = report.totals.zero_filled_bytes.unwrap();
    assert!(zero >= SIZE, "zero-filled pages counted apart: {zero}");
    assert!(dup < SIZE + 4 * MIB, "zero pages are not counted as duplicates: {dup}");
    let content = report.trees[0].mappings_content.as_ref().unwrap();
    assert!(content.iter().any(|n| n.duplicated_bytes >= SIZE / 2), "{content:?}");
}

#[test]
fn unprivileged_dedup_of_other_users_processes_says_why() {
    if skip_unless_root("--dedup") {
        return;
    }
    // Root's processes, read as nobody: no figure, and why (never 0). Its own are measured
    // without root: privilege.rs.
    let tree = super::support::ForkTree::spawn(8, 1, "read");
    let mut cmd = memtree();
    cmd.args(["report", "--format", "json", "--dedup", "--pid", &tree.parent.to_string()])
        .uid(65534)
        .gid(65534);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    assert_eq!(report.totals.duplicated_bytes, None, "absent, not 0");
    assert_eq!(report.totals.zero_filled_bytes, None);
    let reason = report.totals.dedup_unavailable.as_deref().unwrap();
    assert!(reason.contains("permission denied"), "{reason}");
}

#[test]
fn reading_contents_leaves_the_tree_as_it_was() {
    if skip_unless_root("--dedup") {
        return;
    }
    // A pinned read (process_vm_readv) of a shared copy-on-write page makes the kernel copy it
    // into the target: memtree must not. Measure the same running tree three times.
    let mut child = memtree()
        .args(["run", "serialize", "--size", "32MiB", "--workers", "3", "--events", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let root = loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "run ended before ready");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "ready" {
            break event["pid"].as_u64().unwrap().to_string();
        }
    };
    let shared_by_all = |r: &Report| {
        r.totals.sharing_histogram.as_ref().unwrap().iter().find(|b| b.mappers == 4).unwrap().bytes
    };
    let first = report_json(&["--pid", &root, "--dedup"]);
    let again: Vec<Report> = (0..2).map(|_| report_json(&["--pid", &root, "--dedup"])).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(shared_by_all(&first) >= SIZE, "the parent's original is mapped by all 4");
    for later in &again {
        assert_eq!(shared_by_all(later), shared_by_all(&first), "nothing was unshared");
        let (a, b) = (first.totals.footprint_bytes.unwrap(), later.totals.footprint_bytes.unwrap());
        assert!(a.abs_diff(b) < MIB, "footprint {a} then {b}");
    }
}
