//! Scale: sharing groups instead of every pair, and huge pages read and counted as huge pages
//! (checked against a page-by-page count of the test's own). The tree of 1,000 processes is in
//! `tests/crowd.rs`, a binary of its own, so that its processes do not change the figures
//! other tests compare with the kernel's.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::support::{ForkTree, MIB, memtree, report_json, skip_unless_root, text};

#[test]
fn sharing_groups_say_who_maps_the_same_pages() {
    if skip_unless_root("sharing groups") {
        return;
    }
    let tree = ForkTree::spawn(32, 3, "read");
    let report = report_json(&["--pid", &tree.parent.to_string(), "--exact"]);
    report.check_invariants();
    let groups = report.trees[0].sharing_groups.as_ref().expect("groups with --exact");
    let largest = &groups[0];
    let mut members: Vec<u32> = largest.members.iter().map(|m| m.pid).collect();
    members.sort_unstable();
    let mut all = tree.all();
    all.sort_unstable();
    assert_eq!(members, all, "the buffer is mapped by the whole tree: {largest:?}");
    assert!(largest.members.iter().all(|m| m.name.starts_with("python")), "{largest:?}");
    assert!(largest.bytes >= 32 * MIB, "{largest:?}");
    assert_eq!(largest.processes, 4);
    assert!(largest.mappings.iter().any(|m| m.name == "[anon]"), "{largest:?}");
    // Every frame mapped by two or more processes of the tree is in exactly one group.
    let shared: u64 = report
        .totals
        .sharing_histogram
        .as_ref()
        .unwrap()
        .iter()
        .filter(|b| b.mappers >= 2)
        .map(|b| b.bytes)
        .sum();
    let rest = report.trees[0].sharing_groups_rest.as_ref().unwrap();
    assert_eq!(groups.iter().map(|g| g.bytes).sum::<u64>() + rest.bytes, shared);
    assert!(groups.windows(2).all(|w| w[0].bytes >= w[1].bytes), "largest first");
    let pairs = report.trees[0].pairs.as_ref().unwrap();
    assert!(!pairs.is_empty() && pairs.len() <= 10, "{} pairs", pairs.len());
    assert!(pairs[0].shared_bytes >= largest.bytes);
    // The table names them too.
    let out = memtree().args(["report", "--pid", &tree.parent.to_string(), "--exact"]).output();
    let table = text(&out.unwrap().stdout);
    assert!(table.contains("Sharing groups"), "{table}");
    let row = table.lines().find(|l| l.contains("python3") && l.contains(" 4 ")).unwrap_or("");
    assert!(row.contains(&tree.parent.to_string()), "{table}");
}

/// The present pages of `pid`, page by page: (PFN, base pages) from /proc/PID/pagemap over
/// every mapping of /proc/PID/maps.
fn frames_page_by_page(pid: u32) -> Vec<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let pagemap = File::open(format!("/proc/{pid}/pagemap")).unwrap();
    let mut pfns = Vec::new();
    for line in maps.lines() {
        let range = line.split_whitespace().next().unwrap();
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        if start >= 0x8000_0000_0000 {
            continue; // [vsyscall]
        }
        let mut buf = vec![0u8; ((end - start) / 4096 * 8) as usize];
        let got = pagemap.read_at(&mut buf, start / 4096 * 8).unwrap_or(0);
        for entry in buf[..got].chunks_exact(8) {
            let raw = u64::from_le_bytes(entry.try_into().unwrap());
            if raw & (1 << 63) != 0 && raw & ((1 << 55) - 1) != 0 {
                pfns.push(raw & ((1 << 55) - 1));
            }
        }
    }
    pfns
}

/// A fork tree of 64 MiB in transparent huge pages (`--split`: each worker maps the first huge
/// page by its base pages), or `None` where this machine has no THP (never in CI).
fn thp_tree(split: bool) -> Option<ForkTree> {
    let tree = ForkTree::spawn_with(64, 2, "read", |cmd| {
        cmd.arg("--thp");
        if split {
            cmd.arg("--split");
        }
    });
    let rollup = super::support::kernel_rollup(tree.parent);
    if rollup.get("AnonHugePages").copied().unwrap_or(0) < 60 * MIB {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        assert!(std::env::var_os("CI").is_none(), "CI must have THP (madvise): {thp:?}");
        eprintln!("skipped: no transparent huge pages here ({thp:?})");
        return None;
    }
    Some(tree)
}

#[test]
fn huge_pages_count_once_and_agree_with_a_page_by_page_count() {
    if skip_unless_root("huge pages from physical frames") {
        return;
    }
    let Some(tree) = thp_tree(false) else { return };
    let report = report_json(&["--pid", &tree.parent.to_string(), "--exact"]);
    report.check_invariants();
    let thp = report.totals.thp_bytes.unwrap();
    assert!((60 * MIB..=66 * MIB).contains(&thp), "one copy in huge pages: {thp}");
    for p in &report.processes {
        assert!(p.thp.unwrap() >= 60 * MIB, "each maps the huge pages: {p:?}");
    }
    assert!(report.totals.thp_sum_bytes.unwrap() >= 3 * 60 * MIB);
    agrees_with_a_page_by_page_count(&tree, &report);
}

/// A huge page one process maps whole and others by its base pages is counted by base pages
/// (the frame counts read while the pages were read do not hold then, and are read again).
#[test]
fn a_huge_page_mapped_by_pages_elsewhere_agrees_with_a_page_by_page_count() {
    if skip_unless_root("huge pages from physical frames") {
        return;
    }
    let Some(tree) = thp_tree(true) else { return };
    let parent = super::support::kernel_rollup(tree.parent)["AnonHugePages"];
    let worker = super::support::kernel_rollup(tree.workers[0])["AnonHugePages"];
    assert!(worker + 2 * MIB <= parent, "the worker maps one huge page by pages");
    let report = report_json(&["--pid", &tree.parent.to_string(), "--exact"]);
    report.check_invariants();
    agrees_with_a_page_by_page_count(&tree, &report);
}

/// The report's footprint, exclusive bytes and each process's exact PSS agree with the same
/// figures counted page by page: every base page's frame and its own kpagecount.
fn agrees_with_a_page_by_page_count(tree: &ForkTree, report: &super::schema::Report) {
    // The same figures, page by page: every base page's frame and its own kpagecount.
    let kpagecount = File::open("/proc/kpagecount").unwrap();
    let count = |pfn: u64| {
        let mut b = [0u8; 8];
        kpagecount.read_exact_at(&mut b, pfn * 8).unwrap();
        u64::from_le_bytes(b)
    };
    let mut in_tree: HashMap<u64, u64> = HashMap::new();
    let mut pss: HashMap<u32, f64> = HashMap::new();
    for pid in tree.all() {
        for pfn in frames_page_by_page(pid) {
            let c = count(pfn);
            if c == 0 {
                continue; // the zero page
            }
            *in_tree.entry(pfn).or_default() += 1;
            *pss.entry(pid).or_default() += 4096.0 / c as f64;
        }
    }
    let footprint = in_tree.len() as u64 * 4096;
    let exclusive = in_tree.iter().filter(|&(&pfn, &n)| n >= count(pfn)).count() as u64 * 4096;
    // Idle processes: the frames are the same; the counts of libraries memtree and this test
    // map too differ between the two reads by a little.
    let (got, exclusive_got) =
        (report.totals.footprint_bytes.unwrap(), report.totals.exclusive_bytes.unwrap());
    assert!(got.abs_diff(footprint) <= 64 << 10, "footprint {got} vs page by page {footprint}");
    assert!(
        exclusive_got.abs_diff(exclusive) <= 512 << 10,
        "exclusive {exclusive_got} vs {exclusive}"
    );
    for p in &report.processes {
        let page_by_page = pss[&p.pid] as u64;
        let exact = p.exact_pss_bytes.unwrap().unwrap();
        assert!(
            exact.abs_diff(page_by_page) <= 512 << 10,
            "pid {}: {exact} vs {page_by_page}",
            p.pid
        );
    }
}
