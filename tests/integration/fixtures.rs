//! `report --proc-root` on /proc files captured from real processes (tests/fixtures/proc).

use std::fs;

use super::support::{MIB, fixture, memtree, report_json, rollup_file, text};

fn pids_of(name: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = fs::read_dir(fixture(name))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

fn root_of(name: &str) -> u32 {
    // The root is the pid whose parent is not in the capture.
    let pids = pids_of(name);
    *pids
        .iter()
        .find(|pid| {
            let stat =
                fs::read_to_string(fixture(name).join(pid.to_string()).join("stat")).unwrap();
            let ppid: u32 =
                stat.rsplit_once(") ").unwrap().1.split(' ').nth(1).unwrap().parse().unwrap();
            !pids.contains(&ppid)
        })
        .unwrap()
}

#[test]
fn fork_tree_matches_the_captured_files() {
    let dir = fixture("fork-tree");
    let root = root_of("fork-tree");
    let root_arg = root.to_string();
    let report = report_json(&["--proc-root", dir.to_str().unwrap(), "--pid", &root_arg]);
    report.check_invariants();
    assert!(report.privileged, "captured as root");
    assert_eq!(report.moment, "now");
    assert_eq!(report.trees.len(), 1);
    let mut pids: Vec<u32> = report.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    assert_eq!(pids, pids_of("fork-tree"));
    for p in &report.processes {
        let kernel = rollup_file(&dir.join(p.pid.to_string()).join("smaps_rollup"));
        assert_eq!(p.rss, Some(kernel["Rss"]));
        assert_eq!(p.pss, Some(kernel["Pss"]));
        assert_eq!(p.uss, Some(kernel["Private_Clean"] + kernel["Private_Dirty"]));
        assert_eq!(p.shared, Some(kernel["Shared_Clean"] + kernel["Shared_Dirty"]));
        assert_eq!(p.pss_anon, Some(kernel["Pss_Anon"]));
        assert_eq!(p.pss_dirty, Some(kernel["Pss_Dirty"]));
        assert_eq!(p.swap_pss, Some(kernel["SwapPss"]));
        assert_eq!(p.depth, usize::from(p.pid != root));
        // Each worker maps the whole 16 MiB buffer but owns almost none of it.
        assert!(p.rss.unwrap() >= 16 * MIB, "{p:?}");
        if p.pid != root {
            assert!(p.uss.unwrap() < 4 * MIB, "{p:?}");
        }
    }
    // One copy of the buffer in all: PSS splits it four ways, the monitor counts it four times.
    let footprint = report.totals.footprint_bytes.unwrap();
    assert!(footprint > 16 * MIB && footprint < 40 * MIB, "footprint {footprint}");
    assert!(report.totals.overcount.unwrap() > 2.0);
}

#[test]
fn older_kernel_keys_are_absent_not_zero() {
    let dir = fixture("older-kernel");
    let root = root_of("older-kernel").to_string();
    let report = report_json(&["--proc-root", dir.to_str().unwrap(), "--pid", &root, "--mappings"]);
    report.check_invariants();
    for p in &report.processes {
        assert!(p.rss.is_some());
        assert_eq!(p.pss_dirty, None);
        assert_eq!(p.pss_anon, None);
        assert_eq!(p.pss_file, None);
        assert_eq!(p.pss_shmem, None);
        let mappings = p.mappings.as_ref().unwrap().as_ref().unwrap();
        assert!(mappings.iter().all(|m| m.pss_dirty.is_none() && m.rss.is_some()));
    }
    let out = memtree()
        .args(["report", "--proc-root", dir.to_str().unwrap(), "--pid", &root])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("n/a"), "rss/pss/uss/shared/swap are all there");
}

#[test]
fn kernel_threads_have_no_address_space() {
    let dir = fixture("kernel-thread");
    let report = report_json(&["--proc-root", dir.to_str().unwrap(), "--pid", "2"]);
    assert_eq!(report.processes.len(), pids_of("kernel-thread").len());
    for p in &report.processes {
        assert_eq!(p.rss, None);
        assert_eq!(p.uss, None);
        assert!(p.unreadable.as_deref().unwrap().starts_with("no address space"), "{p:?}");
        assert_eq!(p.cmdline.as_deref(), Some(&[][..]), "kernel threads have an empty cmdline");
    }
    assert_eq!(report.totals.kernel_threads, report.processes.len());
    assert_eq!(report.totals.unreadable_processes, 0);
    assert_eq!(report.totals.rss_sum_bytes, None, "nothing was read: absent, not 0");
    assert_eq!(report.totals.footprint_bytes, None);
}

#[test]
fn denied_capture_replays_permission_denied() {
    let dir = fixture("denied");
    let root = root_of("denied").to_string();
    let report = report_json(&["--proc-root", dir.to_str().unwrap(), "--pid", &root]);
    report.check_invariants();
    assert!(!report.privileged);
    assert_eq!(report.processes.len(), 3);
    for p in &report.processes {
        assert_eq!(p.rss, None);
        assert_eq!(p.pss, None);
        assert!(p.unreadable.as_deref().unwrap().starts_with("permission denied"), "{p:?}");
        assert_eq!(p.name, "python3", "stat stays readable");
    }
    assert_eq!(report.totals.unreadable_reasons.get("permission denied"), Some(&3));
    assert_eq!(report.totals.rss_sum_bytes, None);
    assert!(report.explanation.iter().any(|l| l.contains("Run memtree as root")));
}

#[test]
fn ten_thousand_mappings_parse_and_group() {
    let dir = fixture("many-mappings");
    let root = root_of("many-mappings");
    let smaps = fs::read_to_string(dir.join(root.to_string()).join("smaps")).unwrap();
    let headers = smaps.lines().filter(|l| l.split(' ').next().unwrap().contains('-')).count();
    assert!(headers > 10_000);
    let report = report_json(&[
        "--proc-root",
        dir.to_str().unwrap(),
        "--pid",
        &root.to_string(),
        "--mappings",
    ]);
    let p = report.process(root);
    let mappings = p.mappings.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(mappings.len(), headers);
    // The mappings add up to the rollup the kernel printed for the same (idle) process.
    let rss: u64 = mappings.iter().map(|m| m.rss.unwrap()).sum();
    let pss: u64 = mappings.iter().map(|m| m.pss.unwrap()).sum();
    assert_eq!(Some(rss), p.rss);
    assert!(pss.abs_diff(p.pss.unwrap()) < 64 * 1024, "pss {pss} vs {:?}", p.pss);
    let zero = report
        .mappings_by_name
        .as_ref()
        .unwrap()
        .iter()
        .find(|g| g.name == "/dev/zero (deleted)")
        .unwrap();
    // Python's mmap(-1, …) is MAP_SHARED|MAP_ANONYMOUS: shmem, named after /dev/zero.
    assert_eq!(zero.mappings, 10_000);
    assert_eq!(zero.processes, 1);
    // 5,000 touched single-page maps: at least 5,000 pages of anonymous RSS.
    assert!(zero.rss_sum_bytes >= 5_000 * 4096);
}

#[test]
fn markdown_and_table_carry_the_same_numbers() {
    let dir = fixture("fork-tree");
    let root = root_of("fork-tree").to_string();
    let args = ["report", "--proc-root", dir.to_str().unwrap(), "--pid", &root];
    let table = text(&memtree().args(args).output().unwrap().stdout);
    let markdown =
        text(&memtree().args(args).args(["--format", "markdown"]).output().unwrap().stdout);
    assert!(table.contains("TOTAL"));
    assert!(table.contains("A monitor adding RSS shows"));
    assert!(markdown.starts_with("### memtree report"));
    assert!(markdown.contains("| ---: |"));
    for pid in pids_of("fork-tree") {
        assert!(table.contains(&pid.to_string()) && markdown.contains(&pid.to_string()));
    }
    assert!(!table.contains('\u{1b}'), "no colour when stdout is not a terminal");
}
