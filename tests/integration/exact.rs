//! `--exact`: physical-page accounting on real trees, cross-checked against smaps, and its
//! unprivileged fallback.

use std::os::unix::process::CommandExt;

use super::schema::Report;
use super::support::{MIB, memtree, parse, report_json, skip_unless_root, text};

const SIZE_MIB: u64 = 64;
const SIZE: u64 = SIZE_MIB * MIB;
const WORKERS: u64 = 3;

fn exact_workload(variant: &str, touch: &str) -> Report {
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
        "--exact",
    ]);
    report.check_invariants();
    assert_eq!(report.totals.footprint_method, "pagemap", "{:?}", report.totals);
    assert_eq!(report.exact_taken_at_unix, Some(report.taken_at_unix), "read with the sample");
    report
}

fn bucket(report: &Report, mappers: usize) -> u64 {
    let histogram = report.totals.sharing_histogram.as_ref().unwrap();
    histogram.iter().find(|b| b.mappers == mappers).map_or(0, |b| b.bytes)
}

/// The exact per-process figures agree with the kernel's smaps figures.
fn agrees_with_smaps(report: &Report) {
    for p in &report.processes {
        let (rss, pss, uss) = (p.rss.unwrap(), p.pss.unwrap(), p.uss.unwrap());
        let exact_rss = p.exact_rss_bytes.unwrap().unwrap();
        let exact_pss = p.exact_pss_bytes.unwrap().unwrap();
        let exact_uss = p.exact_uss_bytes.unwrap().unwrap();
        // Two reads of a live process, moments apart: a few pages may move.
        let slack = |x: u64| x / 50 + 512 * 1024;
        assert!(exact_rss.abs_diff(rss) <= slack(rss), "pid {} rss {rss} vs {exact_rss}", p.pid);
        assert!(exact_pss.abs_diff(pss) <= slack(pss), "pid {} pss {pss} vs {exact_pss}", p.pid);
        assert!(exact_uss.abs_diff(uss) <= slack(uss), "pid {} uss {uss} vs {exact_uss}", p.pid);
    }
}

#[test]
fn fork_read_is_one_copy_mapped_by_every_process() {
    if skip_unless_root("exact accounting") {
        return;
    }
    let report = exact_workload("fork", "read");
    agrees_with_smaps(&report);
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!((SIZE..SIZE + 8 * MIB).contains(&footprint), "one copy: {footprint}");
    assert!(bucket(&report, WORKERS as usize + 1) >= SIZE, "the buffer is in the k = N+1 bucket");
    let exclusive = report.totals.exclusive_bytes.unwrap();
    assert!(exclusive >= SIZE && exclusive <= footprint, "the buffer is the tree's alone");
    let tree = &report.trees[0];
    let pairs = tree.pairs.as_ref().unwrap();
    assert_eq!(pairs.len(), 6, "4 processes: 6 pairs");
    assert!(pairs.iter().all(|p| p.shared_bytes >= SIZE), "{pairs:?}");
    let anon = tree.mappings_sharing.as_ref().unwrap().iter().find(|n| n.name == "[anon]").unwrap();
    assert!(anon.shared_in_tree_bytes >= SIZE, "{anon:?}");
    assert!(report.explanation.iter().any(|l| l.contains("one physical copy mapped by all 4")));
}

#[test]
fn fork_write_makes_n_plus_one_copies() {
    if skip_unless_root("exact accounting") {
        return;
    }
    let report = exact_workload("fork", "write");
    agrees_with_smaps(&report);
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint >= (WORKERS + 1) * SIZE, "N+1 copies: {footprint}");
    assert!(bucket(&report, 1) >= (WORKERS + 1) * SIZE, "every copy is one process's alone");
}

#[test]
fn serialize_copies_are_distinct_frames() {
    if skip_unless_root("exact accounting") {
        return;
    }
    let report = exact_workload("serialize", "read");
    agrees_with_smaps(&report);
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint >= (WORKERS + 1) * SIZE, "N+1 copies: {footprint}");
    // The parent's original is still mapped by every worker (inherited at fork).
    assert!(bucket(&report, WORKERS as usize + 1) >= SIZE);
}

#[test]
fn shared_is_one_shmem_copy() {
    if skip_unless_root("exact accounting") {
        return;
    }
    let report = exact_workload("shared", "read");
    agrees_with_smaps(&report);
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!((SIZE..SIZE + 8 * MIB).contains(&footprint), "one copy: {footprint}");
    let tree = &report.trees[0];
    let memfd = tree
        .mappings_sharing
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.name.starts_with("/memfd:memtree-shared"))
        .unwrap();
    assert_eq!(memfd.processes, WORKERS as usize + 1);
    assert_eq!(memfd.shared_in_tree_bytes, SIZE, "the whole segment, once");
    assert_eq!(memfd.private_bytes, 0);
}

#[test]
fn unprivileged_exact_falls_back_with_its_reason() {
    if skip_unless_root("exact accounting") {
        return;
    }
    // memtree as nobody, on a tree of its own (so smaps is readable and only PFNs are not).
    let mut cmd = memtree();
    cmd.args(["report", "--format", "json", "--exact", "--", "sleep", "0.5"]).uid(65534).gid(65534);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    report.check_invariants();
    assert!(!report.privileged);
    assert_eq!(report.totals.footprint_method, "pss_estimate");
    // The passes ran (and gave reasons): when is still said.
    assert!(report.exact_taken_at_unix.is_some());
    assert_eq!(report.totals.exclusive_bytes, None);
    assert_eq!(report.totals.sharing_histogram.as_ref().map(Vec::len), None);
    let reason = report.totals.exact_unavailable.as_deref().unwrap();
    assert!(reason.contains("CAP_SYS_ADMIN"), "{reason}");
    for p in &report.processes {
        assert_eq!(p.exact_pss_bytes.flatten(), None, "absent (null), not 0");
        assert!(p.exact_unreadable.as_ref().unwrap().as_deref().unwrap().contains("CAP_SYS_ADMIN"));
    }
    let said = report.explanation.iter().filter(|l| l.contains("CAP_SYS_ADMIN")).count();
    assert_eq!(said, 1, "said once, in words: {:?}", report.explanation);

    let mut table = memtree();
    table.args(["report", "--exact", "--", "sleep", "0.3"]).uid(65534).gid(65534);
    let table = text(&table.output().unwrap().stdout);
    assert!(table.contains("No exact figures") && table.contains("pss estimate"), "{table}");
}
