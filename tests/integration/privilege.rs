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

/// A program that pickles 64 MiB to three Pool workers, each holding its copy; says `ready
/// PID` once all three do (they mark it with a file of their own in DIR, argv[1]).
const PICKLE_TO_THREE: &str = r#"import multiprocessing as mp, os, sys, time
def hold(data):
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
    time.sleep(60)
if __name__ == '__main__':
    data = os.urandom(64 << 20)
    with mp.get_context('fork').Pool(3) as pool:
        for _ in range(3):
            pool.apply_async(hold, (data,))
        while len(os.listdir(sys.argv[1])) < 3:
            time.sleep(0.05)
        print('ready', os.getpid(), flush=True)
        time.sleep(60)
"#;

#[test]
fn without_root_duplicated_content_is_found_in_the_pages_memtree_may_read() {
    if skip_unless_root("dropping to uid 65534") {
        return;
    }
    // Three pickled copies of the parent's 64 MiB: found from the pages each process alone
    // maps, and the parent's original from the pages it shares with its workers.
    let dir = tempfile::tempdir().unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), mode).unwrap();
    let mut program = std::process::Command::new(super::support::python());
    program
        .args(["-c", PICKLE_TO_THREE, dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .uid(NOBODY)
        .gid(NOBODY)
        .process_group(0);
    let mut child = program.spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let parent = line.split_whitespace().nth(1).expect("ready PID").to_string();
    let out = as_nobody(&["report", "--format", "json", "--dedup", "--pid", &parent]);
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    assert!(!report.privileged);
    assert_eq!(report.totals.dedup_method.as_deref(), Some("exclusive_pages"));
    let duplicated = report.totals.duplicated_bytes.unwrap();
    assert!(duplicated >= 3 * 64 * MIB * 9 / 10, "3 redundant copies: {duplicated}");
    assert!(report.totals.exact_unavailable.as_deref().unwrap().contains("CAP_SYS_ADMIN"));
    assert!(report.explanation.iter().any(|s| s.contains("measured without root")));

    // A fork tree that only reads: one copy, nothing duplicated. (memtree's own workload: a
    // Python parent keeps the freed chunks it built its buffer from, a real second copy that
    // root's method finds too.)
    let out = as_nobody(&[
        "report",
        "--format",
        "json",
        "--dedup",
        "--workload",
        "fork",
        "--size",
        "32MiB",
        "--workers",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    let duplicated = report.totals.duplicated_bytes.unwrap();
    assert!(duplicated < 2 * MIB, "shared, not copied: {duplicated}");
    assert!(report.totals.content_scanned_bytes.unwrap() >= 32 * MIB, "the original is read");
}

#[test]
fn without_root_a_process_outside_the_tree_is_read_or_refused_with_the_reason() {
    if skip_unless_root("dropping to uid 65534") {
        return;
    }
    // A same-user process memtree did not start.
    let tree = ForkTree::spawn_with(8, 1, "read", |cmd| {
        cmd.uid(NOBODY).gid(NOBODY);
    });
    let out =
        as_nobody(&["report", "--format", "json", "--dedup", "--pid", &tree.parent.to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = parse(&out.stdout);
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok();
    let p = report.process(tree.parent);
    match scope.as_deref().map(str::trim) {
        // Yama lets a user read only their own descendants' memory: said so, never 0.
        Some("1") => {
            assert_eq!(p.duplicated_bytes, Some(None), "{p:?}");
            assert!(
                report.totals.dedup_unavailable.as_deref().unwrap_or("").contains("ptrace_scope 1")
            );
        }
        // Without Yama (this project's machines), a user may read all their own processes.
        _ => {
            assert!(matches!(p.duplicated_bytes, Some(Some(_))), "{p:?}");
            assert_eq!(report.totals.dedup_method.as_deref(), Some("exclusive_pages"));
        }
    }
    // compare, unprivileged, measures the serialize workers' copies without being asked.
    let out = as_nobody(&["compare", "--size", "16MiB", "--workers", "2", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let serialize = &doc["variants"][1];
    assert_eq!(serialize["duplicated_method"], "exclusive_pages");
    let duplicated = serialize["duplicated_bytes"].as_u64().unwrap();
    assert!(duplicated >= 2 * 16 * MIB * 9 / 10, "{serialize}");
}
