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

/// A churn of short-lived processes: 200 or more started and ended a second, some holding a
/// few MiB, until killed.
struct Churn(Child);

impl Churn {
    fn start() -> Churn {
        let script = "import os, time, random\n\
            start = time.time()\n\
            n = 0\n\
            while True:\n\
            \x20   pid = os.fork()\n\
            \x20   if pid == 0:\n\
            \x20       keep = bytearray(random.choice([0, 1, 4]) << 20)\n\
            \x20       for i in range(0, len(keep), 4096): keep[i] = 1\n\
            \x20       time.sleep(random.random() * 0.05)\n\
            \x20       os._exit(0)\n\
            \x20   n += 1\n\
            \x20   while True:\n\
            \x20       try:\n\
            \x20           done, _ = os.waitpid(-1, os.WNOHANG)\n\
            \x20       except ChildProcessError:\n\
            \x20           break\n\
            \x20       if done == 0: break\n\
            \x20   if n % 50 == 0:\n\
            \x20       print(n / (time.time() - start), flush=True)\n\
            \x20   time.sleep(0.003)\n";
        let mut cmd = Command::new(support::python());
        cmd.args(["-c", script]).stdout(Stdio::piped()).process_group(0);
        Churn(cmd.spawn().unwrap())
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// 60 s of `report --all` (plain and with every pass, in turn) and `top --all` while 200+
/// processes a second start and end: no error exit, no zero where a figure vanished,
/// consistent totals, and the dashboard still answers at the end.
#[test]
fn a_churn_of_200_processes_a_second_breaks_nothing() {
    let mut churn = Churn::start();
    let rates = BufReader::new(churn.0.stdout.take().unwrap());
    // The rate the churn holds, as it last said (processes started a second, since its start).
    let rate = std::sync::Arc::new(std::sync::Mutex::new(0.0f64));
    let said = rate.clone();
    std::thread::spawn(move || {
        for line in rates.lines().map_while(Result::ok) {
            if let Ok(r) = line.trim().parse::<f64>() {
                *said.lock().unwrap() = r;
            }
        }
    });
    let tmux =
        |args: &[&str]| Command::new("tmux").args(["-L", "memtree-crowd"]).args(args).output();
    let have_tmux = tmux(&["-V"]).is_ok_and(|o| o.status.success());
    assert!(have_tmux || std::env::var_os("CI").is_none(), "CI must have tmux");
    let session = format!("churn-{}", std::process::id());
    let bin = memtree().get_program().to_string_lossy().into_owned();
    if have_tmux {
        let top =
            format!("{bin} top --all 2>/dev/null; echo exit=$? > /tmp/{session}.exit; sleep 30");
        tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", "sh", "-c", &top])
            .unwrap();
    }
    let exact = support::is_root();
    let until = Instant::now() + Duration::from_secs(60);
    let mut runs = 0;
    while Instant::now() < until {
        let with_passes = exact && runs % 2 == 1;
        let mut args = vec!["report", "--all", "--format", "json"];
        if with_passes {
            args.extend(["--exact", "--dedup"]);
        }
        let out = memtree().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let report = parse(&out.stdout);
        report.check_invariants();
        for p in &report.processes {
            if let (Some(rss), Some(Some(exact_rss))) = (p.rss, p.exact_rss_bytes) {
                assert!(
                    exact_rss > 0 || rss == 0,
                    "pid {}: rss {rss} but exact rss 0 and no reason: {p:?}",
                    p.pid
                );
            }
        }
        if with_passes {
            assert!(report.totals.footprint_bytes.unwrap() > 0);
            assert_eq!(report.totals.footprint_method, "pagemap");
        }
        runs += 1;
    }
    let held = *rate.lock().unwrap();
    assert!(held >= 200.0, "the churn held {held:.0} processes a second");
    assert!(runs >= 10, "{runs} reports in 60 s");
    if have_tmux {
        let screen = text(&tmux(&["capture-pane", "-p", "-t", &session]).unwrap().stdout);
        assert!(screen.contains("memtree top") && screen.contains("every process"), "{screen}");
        tmux(&["send-keys", "-t", &session, "q"]).unwrap();
        let exit_file = format!("/tmp/{session}.exit");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&exit_file).exists() {
            assert!(Instant::now() < deadline, "top --all did not quit:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let exit = std::fs::read_to_string(&exit_file).unwrap();
        let _ = std::fs::remove_file(&exit_file);
        let _ = tmux(&["kill-session", "-t", &session]);
        assert_eq!(exit.trim(), "exit=0");
    }
    eprintln!("churn: {held:.0} processes a second, {runs} reports");
}
