//! `cargo bench --bench regimes`: `memtree report` in every regime users meet, as commands
//! (process start included), each against `cat` of the same smaps_rollup files — the kernel's
//! page-table walks, which nothing reading smaps can avoid — measured in the same run,
//! interleaved, medians:
//!
//! - (a) a fork tree: 8 workers sharing 256 MiB, 4 KiB pages;
//! - (b) the same on transparent huge pages (madvise, as numpy's large arrays are);
//! - (c) one tree of 1,000 small processes (a shell and 1,000 `sleep`: a prefork server's shape);
//! - (d) one process with 10,000 mappings;
//! - (e) the whole machine with at least 2,000 processes (`report --all`), beside `smem -t`
//!   and `ps_mem` (`apt-get install smem`, `pip install ps_mem`).
//!
//! Run as root for `--exact`. Environment: MEMTREE_BENCH_RUNS (11), MEMTREE_BENCH_REGIMES
//! (`abcde`), MEMTREE_BENCH_SIZE_MIB (256), MEMTREE_BENCH_WORKERS (8),
//! MEMTREE_BENCH_MACHINE_PROCESSES (2000).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A helper process group, killed on drop.
struct Group {
    child: Child,
    root: u32,
}

impl Drop for Group {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Starts `cmd` in a process group of its own and waits for its first line (`ready PID…`, or
/// `ready`).
fn start(mut cmd: Command) -> Group {
    cmd.stdout(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().expect("the helper starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "helper said {line:?}");
    let root =
        line.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or_else(|| child.id());
    Group { child, root }
}

fn helper(name: &str) -> String {
    format!("{}/tests/helpers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `n` sleeping children of one shell, every one exec'd.
fn sleepers(n: u64) -> Group {
    let script = format!("for i in $(seq {n}); do sleep 3600 & done; echo ready; wait");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let group = start(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_children_named(group.root, "sleep") < n as usize {
        assert!(Instant::now() < deadline, "the sleeps did not all start");
        std::thread::sleep(Duration::from_millis(100));
    }
    group
}

fn count_children_named(parent: u32, name: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (comm, rest) = stat.split_once(") ")?;
            let ppid: u32 = rest.split(' ').nth(1)?.parse().ok()?;
            (ppid == parent && comm.ends_with(&format!("({name}"))).then_some(())
        })
        .count()
}

/// The pids of the tree under `root` (by ppid), root first.
fn tree_pids(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        if let Some(ppid) = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

/// Every process whose smaps_rollup this user can read.
fn readable_rollups() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| format!("/proc/{pid}/smaps_rollup"))
        .filter(|path| std::fs::read(path).is_ok_and(|b| !b.is_empty()))
        .collect()
}

/// Wall time of one run of `program args`, the bytes it printed and its peak resident size
/// (KiB, from wait4's rusage).
fn time_command(program: &str, args: &[String]) -> (Duration, usize, u64) {
    use std::io::Read;
    let start = Instant::now();
    let Ok(mut child) =
        Command::new(program).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()
    else {
        return (start.elapsed(), 0, 0);
    };
    let mut out = Vec::new();
    let _ = child.stdout.take().unwrap().read_to_end(&mut out);
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child just spawned.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid std gave; `child` is not waited for again.
    unsafe { nix::libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    (start.elapsed(), out.len(), usage.ru_maxrss as u64)
}

/// One regime: contenders timed interleaved, `runs` times each; the first is the floor.
fn measure(title: &str, contenders: &[(String, String, Vec<String>)], runs: usize) {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    let mut bytes = vec![0usize; contenders.len()];
    let mut peak = vec![0u64; contenders.len()];
    for (_, program, args) in contenders {
        let _ = time_command(program, args); // warm-up
    }
    for _ in 0..runs {
        for (i, (_, program, args)) in contenders.iter().enumerate() {
            let (t, b, rss) = time_command(program, args);
            times[i].push(t);
            bytes[i] = b;
            peak[i] = peak[i].max(rss);
        }
    }
    let base = median(times[0].clone());
    println!("\n{title}");
    println!("| what | median | vs {} | output | peak RSS |", contenders[0].0);
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (((label, ..), (t, b)), rss) in
        contenders.iter().zip(times.into_iter().zip(bytes)).zip(peak)
    {
        let t = median(t);
        let ratio = t.as_secs_f64() / base.as_secs_f64();
        println!("| {label} | {} | {ratio:.2}× | {b} B | {:.1} MiB |", ms(t), rss as f64 / 1024.0);
    }
}

fn report_contenders(
    memtree: &str,
    target: &[String],
    rollups: Vec<String>,
    exact: bool,
) -> Vec<(String, String, Vec<String>)> {
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(target.iter().cloned());
    args.extend(["--format".into(), "json".into()]);
    let mut contenders = vec![
        (format!("cat of the {} smaps_rollup files (floor)", rollups.len()), "cat".into(), rollups),
        (format!("memtree {}", args.join(" ")), memtree.to_string(), args.clone()),
    ];
    if exact {
        let mut exact_args = args.clone();
        exact_args.push("--exact".into());
        contenders.push((format!("memtree {}", exact_args.join(" ")), memtree.into(), exact_args));
    }
    contenders
}

fn main() {
    let runs = env("MEMTREE_BENCH_RUNS", 11) as usize;
    let regimes = std::env::var("MEMTREE_BENCH_REGIMES").unwrap_or_else(|_| "abcde".into());
    let size = env("MEMTREE_BENCH_SIZE_MIB", 256);
    let workers = env("MEMTREE_BENCH_WORKERS", 8);
    let memtree = env!("CARGO_BIN_EXE_memtree");
    let root_user = nix::unistd::geteuid().is_root();
    println!(
        "{} cores, {runs} runs each, interleaved, medians; {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if root_user { "as root" } else { "not root: --exact not measured" }
    );
    let rollups_of = |pids: &[u32]| -> Vec<String> {
        pids.iter().map(|p| format!("/proc/{p}/smaps_rollup")).collect()
    };
    for regime in regimes.chars() {
        let (title, group) = match regime {
            'a' | 'b' => {
                let mut cmd = Command::new("python3");
                cmd.arg(helper("forktree.py")).args([
                    "--size-mib",
                    &size.to_string(),
                    "--workers",
                    &workers.to_string(),
                ]);
                if regime == 'b' {
                    cmd.arg("--thp");
                }
                let pages = if regime == 'b' { "transparent huge pages" } else { "4 KiB pages" };
                (format!("({regime}) {workers} workers sharing {size} MiB, {pages}"), start(cmd))
            }
            'c' => ("(c) one tree of 1,000 small processes".to_string(), sleepers(1000)),
            'd' => {
                let mut cmd = Command::new("python3");
                cmd.args([helper("many_mappings.py"), "10000".into(), "3600".into()]);
                ("(d) one process with 10,000 mappings".to_string(), start(cmd))
            }
            'e' => {
                let extra = env("MEMTREE_BENCH_MACHINE_PROCESSES", 2000);
                let group = sleepers(extra);
                let all = std::fs::read_dir("/proc")
                    .unwrap()
                    .filter(|e| {
                        e.as_ref().is_ok_and(|e| {
                            e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok())
                        })
                    })
                    .count();
                let mut contenders =
                    report_contenders(memtree, &["--all".into()], readable_rollups(), false);
                for (label, program, args) in
                    [("smem -t", "smem", vec!["-t".to_string()]), ("ps_mem", "ps_mem", vec![])]
                {
                    if Command::new(program).arg("--help").output().is_ok() {
                        contenders.push((label.to_string(), program.to_string(), args));
                    } else {
                        println!("({program} is not installed: skipped)");
                    }
                }
                measure(&format!("(e) the whole machine, {all} processes"), &contenders, runs);
                drop(group);
                continue;
            }
            'm' => {
                // memtree's own memory: --mappings of 60,000 mappings, and the whole machine
                // with every pass.
                let mut cmd = Command::new("python3");
                cmd.args([helper("many_mappings.py"), "60000".into(), "3600".into()]);
                let group = start(cmd);
                let pid = group.root.to_string();
                let contenders = vec![
                    (
                        "cat of its smaps (floor)".to_string(),
                        "cat".to_string(),
                        vec![format!("/proc/{pid}/smaps")],
                    ),
                    (
                        "memtree report --mappings".to_string(),
                        memtree.to_string(),
                        ["report", "--pid", &pid, "--mappings", "--format", "json"]
                            .map(String::from)
                            .to_vec(),
                    ),
                    (
                        "memtree report --all --exact --dedup".to_string(),
                        memtree.to_string(),
                        ["report", "--all", "--exact", "--dedup", "--format", "json"]
                            .map(String::from)
                            .to_vec(),
                    ),
                ];
                measure(
                    "(m) memtree's own memory: one process with 60,000 mappings",
                    &contenders,
                    runs.min(5),
                );
                drop(group);
                continue;
            }
            other => panic!("unknown regime {other:?} (abcdem)"),
        };
        let pids = tree_pids(group.root);
        let target = ["--pid".to_string(), group.root.to_string()];
        let contenders = report_contenders(memtree, &target, rollups_of(&pids), root_user);
        measure(&format!("{title}: {} processes", pids.len()), &contenders, runs);
        drop(group);
    }
}
