//! Golden output: the table, markdown and JSON reports of the captured fixtures, compared with
//! the snapshots in `snapshots/` (insta). The capture's own time dates the report and the
//! fixture path is given relative to the repository, so the output is the same on every run.
//! After an intended change: `INSTA_UPDATE=always cargo test --release golden` (or
//! `cargo insta review`), then read the diff.

use super::support::{memtree, repo, text};

fn report(args: &[&str]) -> String {
    let out = memtree().current_dir(repo()).arg("report").args(args).output().unwrap();
    assert!(out.status.success(), "memtree report {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/proc/{name}")
}

#[test]
fn fork_tree_table_and_markdown() {
    let dir = fixture("fork-tree");
    insta::assert_snapshot!("fork_tree_table", report(&["--proc-root", &dir, "--pid", "5538"]));
    let markdown = report(&["--proc-root", &dir, "--pid", "5538", "--format", "markdown"]);
    insta::assert_snapshot!("fork_tree_markdown", markdown);
}

#[test]
fn fork_tree_json() {
    let dir = fixture("fork-tree");
    let json = report(&["--proc-root", &dir, "--pid", "5538", "--format", "json"]);
    insta::assert_snapshot!("fork_tree_json", json);
}

#[test]
fn denied_table_and_markdown() {
    let dir = fixture("denied");
    insta::assert_snapshot!("denied_table", report(&["--proc-root", &dir, "--pid", "5585"]));
    let markdown = report(&["--proc-root", &dir, "--pid", "5585", "--format", "markdown"]);
    insta::assert_snapshot!("denied_markdown", markdown);
}

#[test]
fn older_kernel_table_with_mappings() {
    let dir = fixture("older-kernel");
    let table = report(&["--proc-root", &dir, "--pid", "5538", "--mappings"]);
    insta::assert_snapshot!("older_kernel_mappings_table", table);
}

#[test]
fn kernel_threads_table() {
    let dir = fixture("kernel-thread");
    insta::assert_snapshot!("kernel_thread_all_table", report(&["--proc-root", &dir, "--all"]));
}

#[test]
fn many_mappings_markdown() {
    let dir = fixture("many-mappings");
    let markdown =
        report(&["--proc-root", &dir, "--pid", "5652", "--mappings", "--format", "markdown"]);
    insta::assert_snapshot!("many_mappings_markdown", markdown);
}
