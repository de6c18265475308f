//! Running unprivileged: memtree as `nobody` (uid 65534), on root's processes and on its own.

use std::os::unix::process::CommandExt;

use super::support::{ForkTree, MIB, memtree, parse, skip_unless_root, text};

const NOBODY: u32 = 65534;

fn as_nobody(args: &[&str]) -> std::process::Output {
    let mut cmd = memtree();
    // std drops root's supplementary groups itself when it changes the uid.
    cmd.args(args).uid(NOBODY).gid(NOBODY);
    cmd.output().unwrap()
}

#[test]
fn unprivileged_on_roots_tree_says_permission_denied() {
    if skip_unless_root("dropping to uid 65534") {
        return;
    }
    let tree = ForkTree::spawn(16, 2, "read");
    let out = as_nobody(&["report", "--format", "json", "--pid", &tree.parent.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    report.check_invariants();
    assert!(!report.privileged);
    assert_eq!(report.processes.len(), 3, "stat is world-readable: the tree is still found");
    for p in &report.processes {
        assert_eq!(p.rss, None, "never 0");
        assert_eq!(p.uss, None);
        let reason = p.unreadable.as_deref().unwrap();
        assert!(reason.starts_with("permission denied"), "{reason}");
        assert!(reason.contains("smaps_rollup"), "{reason}");
    }
    assert_eq!(report.totals.rss_sum_bytes, None);
    assert_eq!(report.totals.unreadable_reasons.get("permission denied"), Some(&3));
    assert!(report.explanation.iter().any(|l| l.contains("Run memtree as root")));

    let table = as_nobody(&["report", "--pid", &tree.parent.to_string()]);
    let table = text(&table.stdout);
    assert!(table.contains("n/a") && table.contains("permission denied"), "{table}");
}

#[test]
fn unprivileged_on_its_own_tree_reads_everything() {
    if skip_unless_root("dropping to uid 65534") {
        return;
    }
    let tree = ForkTree::spawn_with(16, 2, "read", |cmd| {
        cmd.uid(NOBODY).gid(NOBODY);
    });
    let out = as_nobody(&["report", "--format", "json", "--pid", &tree.parent.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    report.check_invariants();
    assert!(!report.privileged);
    for p in &report.processes {
        assert_eq!(p.uid, Some(NOBODY));
        assert!(p.rss.unwrap() >= 16 * MIB, "{p:?}");
    }
    assert_eq!(report.totals.unreadable_processes, 0);
}
