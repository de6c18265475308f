//! `report` on live process trees, checked against the kernel's own smaps_rollup.

use std::io::Read;
use std::process::Stdio;

use memtree::model::Unreadable;
use memtree::sampler::{SampleOptions, Sampler, Session, Target};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::support::{ForkTree, MIB, close, kernel_rollup, memtree, parse, report_json};

const SIZE_MIB: u64 = 64;

#[test]
fn fork_tree_figures_match_the_kernel() {
    let tree = ForkTree::spawn(SIZE_MIB, 3, "read");
    let before: Vec<_> = tree.all().iter().map(|&p| kernel_rollup(p)).collect();
    let report = report_json(&["--pid", &tree.parent.to_string()]);
    let after: Vec<_> = tree.all().iter().map(|&p| kernel_rollup(p)).collect();
    report.check_invariants();

    let mut pids: Vec<u32> = report.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    let mut expected = tree.all();
    expected.sort_unstable();
    assert_eq!(pids, expected, "the tree is the parent and its workers");
    assert_eq!(report.trees[0].root_pid, tree.parent);

    let slack = 256 * 1024; // an idle Python process moves a few pages at most
    for (i, &pid) in tree.all().iter().enumerate() {
        let p = report.process(pid);
        for (key, value) in [
            ("Rss", p.rss),
            ("Pss", p.pss),
            ("Shared_Clean", p.shared_clean),
            ("Private_Dirty", p.private_dirty),
            ("Pss_Anon", p.pss_anon),
        ] {
            let value = value.unwrap();
            let (lo, hi) = (before[i][key].min(after[i][key]), before[i][key].max(after[i][key]));
            assert!(
                value + slack >= lo && value <= hi + slack,
                "pid {pid} {key}: memtree {value}, kernel {lo}..{hi}"
            );
        }
        assert!(p.rss.unwrap() >= SIZE_MIB * MIB, "each process maps the whole buffer");
        if pid != tree.parent {
            assert_eq!(p.ppid, tree.parent);
            assert!(p.uss.unwrap() < SIZE_MIB * MIB / 8, "a worker owns little: {p:?}");
            assert!(p.shared.unwrap() >= SIZE_MIB * MIB);
        }
    }
    // One physical copy: Σ PSS ≈ size + interpreter overhead; Σ RSS ≈ 4 × size.
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint >= SIZE_MIB * MIB, "{footprint}");
    assert!(footprint < SIZE_MIB * MIB + 48 * MIB, "{footprint}");
    assert!(report.totals.rss_sum_bytes.unwrap() >= 4 * SIZE_MIB * MIB);
    assert!(report.totals.overcount.unwrap() > 3.0);
}

#[test]
fn every_process_tree_of_the_machine() {
    let tree = ForkTree::spawn(16, 2, "read");
    // Spawned by hand to know its pid: other memtree processes (the dashboard tests running
    // beside this one) may legitimately be in the report, this one must not.
    let child = memtree()
        .args(["report", "--format", "json", "--all"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let itself = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report = parse(&out.stdout);
    report.check_invariants();
    assert_eq!(report.target["kind"], "all");
    let parent = report.process(tree.parent);
    for &worker in &tree.workers {
        let w = report.process(worker);
        assert_eq!(w.tree, parent.tree, "workers are in their parent's tree");
    }
    assert!(report.trees.iter().any(|t| t.root_pid == parent.tree));
    assert!(
        report.processes.iter().all(|p| p.pid != 0 && p.pid != itself),
        "memtree leaves itself out"
    );
    // Trees add up to the machine totals.
    let tree_rss: u64 = report.trees.iter().filter_map(|t| t.totals.rss_sum_bytes).sum();
    assert_eq!(Some(tree_rss), report.totals.rss_sum_bytes);
}

#[test]
fn a_process_killed_mid_walk_is_vanished_not_zero() {
    let tree = ForkTree::spawn(16, 3, "read");
    let sampler = Sampler::live();
    let walked = sampler.descendants(&[tree.parent]).unwrap();
    assert_eq!(walked.len(), 4);
    // Killed after the walk found it, before its memory is read: the helper does not reap it,
    // so it stays a zombie without an address space.
    let victim = tree.workers[1];
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    while std::fs::read_to_string(format!("/proc/{victim}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let options = SampleOptions { mappings: true, ..SampleOptions::default() };
    let session = Session::new(sampler.clone(), Target::Pids(vec![tree.parent]), options);
    let snapshot = session.read(&walked);
    let dead = snapshot.processes.iter().find(|p| p.pid == victim).unwrap();
    match &dead.rollup {
        Err(Unreadable::Vanished(why)) => assert!(why.contains("zombie"), "{why}"),
        other => panic!("expected vanished, got {other:?}"),
    }
    assert!(matches!(dead.mappings, Some(Err(Unreadable::Vanished(_)))));
    let alive = snapshot.processes.iter().find(|p| p.pid == tree.workers[0]).unwrap();
    assert!(alive.rollup.as_ref().unwrap().rss.unwrap() >= 16 * MIB);

    // A pid that is gone altogether between the walk and the read.
    let mut gone = walked[0].clone();
    gone.pid = u32::MAX - 1;
    let sample = sampler.sample_one(&gone, SampleOptions::default());
    assert!(matches!(sample.rollup, Err(Unreadable::Vanished(ref why)) if why.contains("exited")));

    // Through the CLI: the zombie is listed with its reason, left out of the sums.
    let report = report_json(&["--pid", &tree.parent.to_string()]);
    report.check_invariants();
    let zombie = report.process(victim);
    assert!(zombie.unreadable.as_deref().unwrap().starts_with("vanished"), "{zombie:?}");
    assert_eq!(zombie.rss, None);
    assert_eq!(report.totals.unreadable_reasons.get("vanished"), Some(&1));
    assert_eq!(report.totals.readable_processes, 3);
}

#[test]
fn a_live_kernel_thread_has_no_address_space() {
    let sampler = Sampler::live();
    let kthread = sampler
        .scan()
        .unwrap()
        .into_iter()
        .find(|p| p.is_kernel_thread())
        .expect("a kernel thread exists on every Linux machine");
    let report = report_json(&["--pid", &kthread.pid.to_string()]);
    let p = report.process(kthread.pid);
    assert!(p.unreadable.as_deref().unwrap().starts_with("no address space"));
    assert_eq!(p.rss, None);
}

#[test]
fn a_closed_pipe_is_success() {
    let mut child = memtree()
        .args(["report", "--all", "--mappings", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "status {:?}", out.status);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn with_mappings_the_buffer_is_the_largest_shared_name() {
    let tree = ForkTree::spawn(32, 2, "read");
    let report = report_json(&["--pid", &tree.parent.to_string(), "--mappings"]);
    let groups = report.trees[0].mappings_by_name.as_ref().unwrap();
    let top = &groups[0];
    // Python's large bytes object lives in an anonymous mapping, or in the heap when glibc's
    // dynamic mmap threshold has grown past its size.
    assert!(top.name == "[anon]" || top.name == "[heap]", "{top:?}");
    assert_eq!(top.processes, 3);
    assert!(top.rss_sum_bytes >= 3 * 32 * MIB);
    for pid in tree.all() {
        let p = report.process(pid);
        let mappings = p.mappings.as_ref().unwrap().as_ref().unwrap();
        let rss: u64 = mappings.iter().map(|m| m.rss.unwrap()).sum();
        assert!(close(rss, p.rss.unwrap(), 512 * 1024), "smaps ≈ smaps_rollup");
    }
}

/// A paced session (the dashboard's, the exporter's) whose exact pass was taken while a process
/// was still growing refreshes it once its spacing allows, though nothing moves in the round
/// that allows it: the exact figures are not left describing a moment long gone.
#[test]
fn exact_figures_taken_mid_change_are_refreshed_once_the_tree_holds_still() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::Duration;
    if super::support::skip_unless_root("exact figures of a paced session") {
        return;
    }
    let grow = "import sys\nheld = []\nfor line in sys.stdin:\n    \
                held.append(b'x' * (32 << 20))\n    print('ok', flush=True)\n";
    let mut child = std::process::Command::new(super::support::python())
        .args(["-c", grow])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut grow_once = || {
        writeln!(stdin).unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    };
    grow_once();
    let cadence = memtree::sampler::Cadence {
        full_every: Duration::from_secs(3600),
        exact_every: Duration::from_millis(300),
        exact_budget: 1,
        exact_full_every: Duration::from_secs(3600),
        session_budget: 1,
        keep_moved_exact: false,
        walk_budget: 1,
    };
    let options = SampleOptions { exact: true, ..SampleOptions::default() };
    let mut session =
        Session::new(Sampler::live(), Target::Pids(vec![pid]), options).with_cadence(cadence);
    let first = session.round().unwrap();
    assert!(first.exact_fresh);
    // It grows by 32 MiB; the next round sees it, too soon for an exact pass.
    grow_once();
    let second = session.round().unwrap();
    assert!(!second.exact_fresh, "within the spacing");
    std::thread::sleep(Duration::from_millis(400));
    // Nothing moved since the second round, but since the exact pass it has.
    let third = session.round().unwrap();
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let _ = child.wait();
    assert!(third.exact_fresh, "the exact pass of a changed tree is refreshed");
    let row = third.accounting.processes().find(|p| p.pid == pid).unwrap();
    let exact_uss = row.exact.as_ref().unwrap().as_ref().unwrap().uss;
    let uss = row.figures.as_ref().unwrap().uss.unwrap();
    assert!(exact_uss.abs_diff(uss) < 8 * MIB, "exact {exact_uss} against the rollup's {uss}");
}
