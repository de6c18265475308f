//! A tree of 1,000 processes, whose exact report must grow with the processes, not with their
//! pairs. A test binary of its own: binaries run one after another, so 1,000 extra mappers of
//! libc never change the PSS that the other tests compare with the kernel's.

#[path = "integration/schema.rs"]
mod schema;
#[path = "integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{memtree, parse, skip_unless_root, text};

/// A shell with 1,000 `sleep` children (the shape of a prefork server), killed on drop.
struct Thousand {
    child: Child,
    pid: u32,
}

impl Thousand {
    fn spawn(n: usize) -> Thousand {
        let script = format!("for i in $(seq {n}); do sleep 600 & done; echo ready; wait");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).stdout(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = child.id();
        // Every child has exec'd sleep (until then it is a copy of the shell).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let children: HashSet<String> = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| {
                    let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                    let (name, rest) = stat.split_once(") ")?;
                    let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
                    let open = name.find('(')?;
                    (ppid == child.id()).then(|| format!("{pid}{}", &name[open..]))
                })
                .collect();
            if children.iter().filter(|c| c.ends_with("(sleep")).count() == n {
                break;
            }
            assert!(Instant::now() < deadline, "{} children", children.len());
            std::thread::sleep(Duration::from_millis(100));
        }
        Thousand { child, pid }
    }
}

impl Drop for Thousand {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[test]
fn a_thousand_processes_report_in_size_linear_in_the_processes() {
    if skip_unless_root("exact accounting of 1,000 processes") {
        return;
    }
    let tree = Thousand::spawn(1000);
    let run = |extra: &[&str]| {
        let out = memtree()
            .args(["report", "--pid", &tree.pid.to_string(), "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        out.stdout
    };
    let plain = run(&[]);
    let exact = run(&["--exact"]);
    assert!(
        exact.len() <= 3 * plain.len(),
        "--exact JSON {} bytes against {} plain: it must not grow with the pairs",
        exact.len(),
        plain.len()
    );
    let report = parse(&exact);
    assert_eq!(report.processes.len(), 1001);
    let tree_json = &report.trees[0];
    assert!(tree_json.pairs.as_ref().unwrap().len() <= 10);
    let groups = tree_json.sharing_groups.as_ref().unwrap();
    // The sleeps share the pages of sleep and libc: one group holds all 1,000 of them.
    let sleeps = groups.iter().find(|g| g.processes >= 1000).expect("a group of every sleep");
    assert!(
        sleeps.members.iter().filter(|m| m.name == "sleep").count() == 1000,
        "{}",
        sleeps.bytes
    );
    assert!(sleeps.mappings.iter().any(|m| m.name.contains("libc") || m.name.contains("sleep")));
    let table = text(
        &memtree()
            .args(["report", "--pid", &tree.pid.to_string(), "--exact"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(table.contains("1000 × sleep"), "{table}");
}
