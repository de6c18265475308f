//! `memtree top` end to end, in a real terminal: tmux runs it, capture-pane reads the screen,
//! send-keys types. Also: quitting by SIGTERM and by a panic restores the terminal.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::support::memtree;

/// tmux on a server of the tests' own, so a user's sessions are never touched.
fn tmux() -> Command {
    let mut cmd = Command::new("tmux");
    cmd.args(["-L", "memtree-tests"]);
    cmd
}

/// tmux must be there in CI (.ci/run installs it); elsewhere the test says so and skips.
fn have_tmux() -> bool {
    let ok = tmux().arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must have tmux (.ci/run installs it)");
        eprintln!("skipped: tmux is not installed");
    }
    ok
}

struct Session {
    name: String,
    dir: tempfile::TempDir,
}

impl Session {
    /// Runs `memtree ARGS` in a new 120×40 tmux session; afterwards the shell writes the exit
    /// status and `stty -a` (the terminal's modes) to files.
    fn start(name: &str, args: &str, env: &str) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let bin = memtree().get_program().to_string_lossy().into_owned();
        let exit = dir.path().join("exit");
        let stty = dir.path().join("stty");
        let script = format!(
            "{env} {bin} {args}; echo $? > {}; stty -a > {}; sleep 60",
            exit.display(),
            stty.display()
        );
        let name = format!("memtree-{name}-{}", std::process::id());
        let status = tmux()
            .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "40", "sh", "-c", &script])
            .status()
            .unwrap();
        assert!(status.success());
        Session { name, dir }
    }

    fn screen(&self) -> String {
        let out = tmux().args(["capture-pane", "-p", "-t", &self.name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            tmux().args(["send-keys", "-t", &self.name, key]).status().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(Instant::now() < deadline, "the screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn exit_status(&self) -> (i32, String) {
        let path = self.dir.path().join("exit");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !Path::new(&path).exists()
            || std::fs::read_to_string(&path).unwrap().trim().is_empty()
        {
            assert!(Instant::now() < deadline, "memtree top did not exit:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        let status = std::fs::read_to_string(&path).unwrap().trim().parse().unwrap();
        let stty = std::fs::read_to_string(self.dir.path().join("stty")).unwrap_or_default();
        (status, stty)
    }

    /// The pid of memtree (the shell's child in the pane).
    fn memtree_pid(&self) -> i32 {
        let out = tmux()
            .args(["display-message", "-p", "-t", &self.name, "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .ok()
            .or_else(|| {
                let out = Command::new("pgrep").args(["-P", &shell]).output().ok()?;
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            })
            .unwrap();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = tmux()
            .args(["kill-session", "-t", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The terminal is back in cooked mode with echo (raw mode left).
fn assert_cooked(stty: &str) {
    let words: Vec<&str> = stty.split_whitespace().collect();
    assert!(words.contains(&"icanon") && words.contains(&"echo"), "terminal left raw: {stty}");
}

fn worker_pids(screen: &str) -> Vec<u32> {
    screen
        .lines()
        .filter(|l| l.contains("fork_cow-w"))
        .filter_map(|l| l.trim_start_matches('│').split_whitespace().next()?.parse().ok())
        .collect()
}

fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn top_shows_the_tree_and_quits_cleanly() {
    if !have_tmux() {
        return;
    }
    let s = Session::start("quit", "top --workload fork --size 32MiB --workers 2", "");
    let screen = s.wait_for("fork_cow-w1");
    assert!(screen.contains("memtree top · workload fork (32 MiB × 2 workers)"), "{screen}");
    assert!(screen.contains("Monitor (Σ RSS)") && screen.contains("Really uses"), "{screen}");
    assert!(screen.contains("Overcount"), "{screen}");
    let root = screen.lines().find(|l| l.contains("fork_cow ")).expect("the parent's row");
    assert!(root.contains("MiB"), "{root}");
    let workers = worker_pids(&screen);
    assert_eq!(workers.len(), 2, "{screen}");
    for line in screen.lines().filter(|l| l.contains("fork_cow-w")) {
        // Each worker maps the whole 32 MiB buffer.
        assert!(line.contains(" 32") || line.contains(" 33") || line.contains(" 34"), "{line}");
    }
    s.keys(&["e"]);
    assert!(s.wait_for("Explain (Esc closes)").contains("A monitor adding RSS shows"));
    s.keys(&["Escape", "?"]);
    s.wait_for("Keys (Esc closes)");
    s.keys(&["Escape", "q"]);
    let (status, stty) = s.exit_status();
    assert_eq!(status, 0);
    assert_cooked(&stty);
    for pid in workers {
        assert!(gone(pid), "worker {pid} left behind");
    }
}

#[test]
fn top_measures_duplicated_content_without_being_asked() {
    if !have_tmux() || super::support::skip_unless_root("duplicated content in top") {
        return;
    }
    let s = Session::start("dedup", "top --workload serialize --size 16MiB --workers 2", "");
    let screen = s.wait_for("serialize-w1");
    // Two workers each received a copy of the parent's 16 MiB: 32 MiB duplicated.
    let screen = if screen.contains("Duplicated 3") { screen } else { s.wait_for("Duplicated 3") };
    let header = screen.lines().find(|l| l.contains("Duplicated")).unwrap();
    assert!(header.contains("Duplicated 31") || header.contains("Duplicated 32"), "{header}");
    // The content pass draws nothing under the dashboard (the sampler never writes; only
    // `report` draws its progress events, on stderr).
    assert!(!screen.contains("hashing page contents"), "{screen}");
    assert!(screen.starts_with("memtree top"), "the header is intact: {screen}");
    s.keys(&["q"]);
    assert_eq!(s.exit_status().0, 0);
}

#[test]
fn sigterm_and_a_panic_restore_the_terminal() {
    if !have_tmux() {
        return;
    }
    let s = Session::start("term", "top --workload fork --size 16MiB --workers 2", "");
    let screen = s.wait_for("fork_cow-w1");
    let workers = worker_pids(&screen);
    let pid = s.memtree_pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let (status, stty) = s.exit_status();
    assert_eq!(status, 143, "128 + SIGTERM");
    assert_cooked(&stty);
    assert!(!s.screen().contains("Monitor (Σ RSS)"), "the alternate screen was left");
    for pid in workers {
        assert!(gone(pid), "worker {pid} left behind");
    }

    let s = Session::start(
        "panic",
        "top --workload fork --size 16MiB --workers 2 2>/dev/null",
        "MEMTREE_TEST_PANIC_IN_TOP=1",
    );
    let (status, stty) = s.exit_status();
    assert_eq!(status, 101, "a panic");
    assert_cooked(&stty);
    assert!(!s.screen().contains("Monitor (Σ RSS)"), "the alternate screen was left");
}

#[test]
fn closing_the_terminal_ends_top_and_its_workload() {
    if !have_tmux() {
        return;
    }
    let s = Session::start("hangup", "top --workload fork --size 16MiB --workers 2", "");
    let screen = s.wait_for("fork_cow-w1");
    let workers = worker_pids(&screen);
    let pid = s.memtree_pid();
    // The window closes: the terminal hangs up under memtree (crossterm alone would spin on it
    // at 100 % CPU forever).
    tmux().args(["kill-session", "-t", &s.name]).status().unwrap();
    assert!(gone(pid as u32), "memtree top outlived its terminal");
    for worker in workers {
        assert!(gone(worker), "worker {worker} left behind");
    }
}

#[test]
fn a_recording_replays_with_the_arrow_keys() {
    if !have_tmux() {
        return;
    }
    let tree = super::support::ForkTree::spawn(8, 2, "read");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.mtr");
    let f = file.to_str().unwrap();
    let pid = tree.parent.to_string();
    let out = memtree()
        .args(["record", "--pid", &pid, "-o", f, "--interval", "100ms", "--duration", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(tree);
    let top = Session::start("replay", &format!("top --replay {f}"), "");
    let screen = top.wait_for("replay of tree of");
    let at = |screen: &str| -> (usize, usize) {
        let rest = screen.split("· sample ").nth(1).expect("the sample shown");
        let (i, n) = rest.split_once('/').unwrap();
        let n: String = n.chars().take_while(char::is_ascii_digit).collect();
        (i.parse().unwrap(), n.parse().unwrap())
    };
    let (first, n) = at(&screen);
    assert!(n >= 5, "a sample every 100 ms for 1 s: {n}\n{screen}");
    assert!(screen.contains(&pid), "the recorded tree, after its processes exited:\n{screen}");
    // How old each sample's costly figures were when it was taken (carried between passes):
    // the first sample ran the pass itself; a later one carries figures at most that old.
    let age = |screen: &str| -> f64 {
        let rest = screen
            .split(" (exact ")
            .nth(1)
            .or_else(|| screen.split(" (content ").nth(1))
            .unwrap_or_else(|| panic!("the age of the costly figures:\n{screen}"));
        rest.split_once("s old)").expect("an age").0.parse().unwrap()
    };
    assert_eq!(age(&screen), 0.0, "the first sample ran the pass:\n{screen}");
    top.keys(&["End", "Home"]);
    top.keys(&["S-Right"]);
    let later = at(&top.screen()).0;
    assert_eq!(later, (first + 10).min(n), "Shift-→: ten samples on");
    top.keys(&["Left"]);
    let screen = top.screen();
    assert_eq!(at(&screen).0, later - 1, "←: one back");
    // A later sample's figures are at most as old as the recording at that sample.
    let seconds: f64 = screen
        .split(&format!("{}/{n} at ", later - 1))
        .nth(1)
        .unwrap()
        .split_once('s')
        .unwrap()
        .0
        .parse()
        .unwrap();
    assert!((0.0..=seconds + 0.05).contains(&age(&screen)), "{screen}");
    // The help lists the keys a replay has, not pausing a sampling it does not do.
    top.keys(&["?"]);
    let help = top.wait_for("Keys (Esc closes)");
    assert!(help.contains("the sample before or after"), "{help}");
    assert!(!help.contains("pause or resume"), "{help}");
    top.keys(&["Escape", "q"]);
    let (status, stty) = top.exit_status();
    assert_eq!(status, 0);
    assert_cooked(&stty);
}
