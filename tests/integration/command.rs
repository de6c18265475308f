//! `report -- CMD`: runs a command, follows its tree, reports the peak.

use super::support::{MIB, memtree, parse, python, text};

/// A parent that forks a child holding 96 MiB of random bytes for 0.4 s, then exits 3.
const SHORT_PEAK: &str = r#"
import os, random, time
print("hello from the command", flush=True)
pid = os.fork()
if pid == 0:
    data = random.Random(1).randbytes(96 << 20)
    time.sleep(0.4)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.2)
raise SystemExit(3)
"#;

#[test]
fn catches_a_short_lived_childs_peak_and_passes_the_status_on() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = memtree()
        .args(["report", "--format", "json", "--output", json.to_str().unwrap(), "--"])
        .args([python(), "-c", SHORT_PEAK])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "memtree exits with CMD's status");
    assert_eq!(text(&out.stdout), "hello from the command\n", "CMD's stdout is untouched");
    let report = parse(&std::fs::read(&json).unwrap());
    report.check_invariants();
    assert_eq!(report.moment, "peak");
    assert_eq!(report.target["kind"], "command");
    let command = report.command.as_ref().unwrap();
    assert_eq!(command.exit_code, Some(3));
    assert_eq!(command.signal, None);
    assert!(command.samples >= 5, "sampled while it ran: {command:?}");
    // At the peak, the child held its 96 MiB and was one of the processes of the tree.
    assert_eq!(report.processes.len(), 2, "{:?}", report.processes);
    let child = report.processes.iter().find(|p| p.depth == 1).unwrap();
    assert!(child.rss.unwrap() >= 96 * MIB, "{child:?}");
    assert!(child.peak_rss_bytes.unwrap().unwrap() >= 96 * MIB);
    assert!(child.peak_pss_bytes.unwrap().unwrap() >= 90 * MIB);
    assert!(report.totals.footprint_bytes.unwrap() >= 96 * MIB);
}

#[test]
fn a_command_killed_by_a_signal_gives_128_plus_signal() {
    let out = memtree()
        .args(["report", "--format", "json", "--", "sh", "-c", "sleep 0.2; kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(143));
    let report = parse(&out.stdout);
    let command = report.command.unwrap();
    assert_eq!(command.signal, Some(15));
    assert_eq!(command.exit_code, None);
}

#[test]
fn table_of_a_run_shows_peaks() {
    let out = memtree()
        .args(["report", "--", python(), "-c", "import time; x = bytes(8 << 20); time.sleep(0.3)"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("at its peak footprint"), "{table}");
    assert!(table.contains("PEAK RSS"), "{table}");
}
