//! Bad input: exit status 2, one line on stderr, nothing on stdout, no panic.

use super::support::{memtree, text};

fn bad(args: &[&str], expect: &str) {
    let out = memtree().args(args).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr:?}");
    assert!(stderr.starts_with("memtree: "), "{stderr}");
    assert!(stderr.contains(expect), "{args:?}: {stderr:?} lacks {expect:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    assert!(out.stdout.is_empty(), "{args:?} printed {:?}", text(&out.stdout));
}

#[test]
fn bad_input_is_one_line_and_status_2() {
    bad(&["report", "--pid", "abc"], "invalid value 'abc'");
    bad(&["report", "--pid"], "--pid");
    bad(&["report", "--pid", "-5"], "invalid value '-5'");
    bad(&["report", "--pid", "999999999"], "no process with pid 999999999");
    bad(&["report", "--all", "--format", "yaml"], "possible values: table, json, markdown");
    bad(&["report", "--all", "--pid", "1"], "cannot be used with");
    bad(&["report", "--all", "--", "true"], "cannot be used with");
    bad(&["report"], "no target");
    bad(&["report", "--", "/nonexistent/command"], "cannot run \"/nonexistent/command\"");
    bad(&["report", "--proc-root", "/nonexistent", "--all"], "not a directory");
    bad(&["report", "--all", "--output", "/nonexistent/dir/report.json"], "cannot write");
    bad(&["frobnicate"], "unrecognized subcommand");
    bad(&["run", "fork", "--size", "12bananas"], "12bananas");
    bad(&["run", "fork", "--size", "12"], "too small");
    bad(&["run", "fork", "--workers", "0"], "--workers");
    bad(&["run", "fork", "--hold", "forever"], "forever");
    bad(&["run", "fork", "--touch", "scribble"], "scribble");
    bad(&["run", "fork", "--touch", "write=2"], "write=2");
    bad(&["run", "teleport"], "invalid value 'teleport'");
    bad(&["run"], "VARIANT");
    bad(&["report", "--workload", "teleport"], "invalid value 'teleport'");
    bad(&["report", "--workload", "fork", "--pid", "1"], "cannot be used with");
    bad(&["compare", "--workers", "0"], "--workers");
    // Not a terminal: the dashboard refuses and points to report.
    bad(&["top", "--all"], "memtree report");
    bad(&["top", "--pid", "abc"], "invalid value 'abc'");
}

#[test]
fn help_and_version_succeed() {
    let out = memtree().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("report"));
    let out = memtree().arg("--version").output().unwrap();
    assert!(text(&out.stdout).starts_with("memtree "));
}
