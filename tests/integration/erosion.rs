//! Copy-on-write erosion on live fork trees: what each worker still shares with its parent and
//! what its writes copied, exact as root and estimated unprivileged.

use std::os::unix::process::CommandExt;

use super::schema::{Process, Report};
use super::support::{MIB, memtree, parse, report_json, skip_unless_root, text};

const SIZE_MIB: u64 = 64;
const SIZE: u64 = SIZE_MIB * MIB;

fn args(touch: &str) -> Vec<String> {
    ["--workload", "fork", "--size", &format!("{SIZE_MIB}MiB"), "--workers", "3"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--touch".to_string(), touch.to_string(), "--exact".to_string()])
        .collect()
}

fn workers(report: &Report) -> Vec<&Process> {
    let root = report.trees[0].root_pid;
    let root_row = report.process(root);
    let reason = root_row.erosion_unavailable.clone().flatten().unwrap_or_default();
    assert!(reason.contains("root of its tree"), "the root has no parent to copy: {reason}");
    assert_eq!(root_row.copied_from_parent_bytes.flatten(), None, "null, not 0");
    let list: Vec<&Process> = report.processes.iter().filter(|p| p.ppid == root).collect();
    assert_eq!(list.len(), 3);
    list
}

fn figures(p: &Process) -> (u64, u64) {
    let shared = p.shared_with_parent_bytes.flatten().unwrap_or_else(|| panic!("{p:?}"));
    let copied = p.copied_from_parent_bytes.flatten().unwrap();
    (shared, copied)
}

#[test]
fn a_worker_that_writes_a_fraction_copies_that_fraction() {
    if skip_unless_root("exact erosion") {
        return;
    }
    for fraction in [0.25, 0.5] {
        let report = report_json(
            &args(&format!("write={fraction}")).iter().map(String::as_str).collect::<Vec<_>>(),
        );
        for p in workers(&report) {
            let (shared, copied) = figures(p);
            assert_eq!(p.erosion_estimated, Some(Some(false)));
            let want_copied = (fraction * SIZE as f64) as u64;
            // The buffer's pages, and a few of the program's own (stack, libc's data).
            assert!(copied.abs_diff(want_copied) < 2 * MIB, "F={fraction}: copied {copied}");
            let want_shared = SIZE - want_copied;
            assert!(
                shared >= want_shared && shared < want_shared + 8 * MIB,
                "F={fraction}: shared {shared}, want ≈ {want_shared}"
            );
            let by = p.copied_by_mapping.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(by[0].name, "[anon]", "the copies are in the buffer: {by:?}");
        }
    }
}

#[test]
fn a_worker_that_only_reads_copies_nothing() {
    if skip_unless_root("exact erosion") {
        return;
    }
    let report = report_json(&args("read").iter().map(String::as_str).collect::<Vec<_>>());
    for p in workers(&report) {
        let (shared, copied) = figures(p);
        assert!(copied < MIB, "reading copies no page: {copied}");
        assert!(shared >= SIZE, "the whole buffer is its parent's: {shared}");
    }
}

#[test]
fn without_root_erosion_is_an_estimate_from_the_exclusive_bit() {
    if skip_unless_root("dropping privileges") {
        return;
    }
    // memtree as nobody, on a workload of its own (readable, but frames read as 0).
    let mut cmd = memtree();
    cmd.arg("report").arg("--format").arg("json").args(args("write=0.5")).uid(65534).gid(65534);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    assert!(!report.privileged);
    for p in workers(&report) {
        let (shared, copied) = figures(p);
        assert_eq!(p.erosion_estimated, Some(Some(true)), "said to be an estimate");
        assert!(copied.abs_diff(SIZE / 2) < 2 * MIB, "copied {copied}");
        assert!((SIZE / 2..SIZE / 2 + 8 * MIB).contains(&shared), "shared {shared}");
    }
}
