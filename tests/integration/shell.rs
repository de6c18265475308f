//! The command line in its ecosystem: shell completions and the man page.

use super::support::{memtree, text};

/// What bash's completion function offers for `words` (the last one being completed).
fn complete(words: &[&str]) -> Vec<String> {
    let script = memtree().args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memtree.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _memtree memtree '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
        if cword > 0 { words[cword - 1] } else { "" },
    );
    let out = std::process::Command::new("bash").args(["--norc", "-c", &program]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    assert_eq!(complete(&["memtree", "se"]), ["serve"]);
    let top = complete(&["memtree", "r"]);
    assert!(top.contains(&"report".to_string()) && top.contains(&"run".to_string()), "{top:?}");
    assert_eq!(complete(&["memtree", "serve", "--gr"]), ["--group-by"]);
    let formats = complete(&["memtree", "report", "--format", ""]);
    for f in ["table", "json", "markdown", "openmetrics"] {
        assert!(formats.contains(&f.to_string()), "{formats:?}");
    }
}

#[test]
fn the_man_page_names_every_command() {
    let out = memtree().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.contains(".TH memtree 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in ["top", "report", "run", "compare", "capture", "serve", "completions", "man"] {
        assert!(page.contains(&format!("memtree\\-{command}(1)")), "{command} missing:\n{page}");
    }
}

/// Completions and the man page written where they cannot go: one line and status 1 into a full
/// disk, nothing and status 0 into a closed pipe — never a panic (clap_complete panics on a
/// failed write of its own).
#[test]
fn completions_and_the_man_page_fail_to_write_in_one_line() {
    use std::process::Stdio;
    for args in [&["completions", "bash"][..], &["completions", "zsh"], &["man"]] {
        let full = std::fs::File::create("/dev/full").unwrap();
        let out = memtree().args(args).stdout(full).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("No space left on device"), "{args:?}: {stderr}");
        // A reader that is gone before memtree writes.
        let mut child =
            memtree().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}
