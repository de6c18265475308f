//! `cargo bench --bench report`: memtree's report against its floor and against smem and
//! ps_mem, measured in the same run (ratios, because the machines are noisy).
//!
//! 1. A fork tree (tests/helpers/forktree.py: a parent with SIZE MiB of random bytes and
//!    WORKERS children that read every page, 4 KiB pages) is reported, in-process and as a
//!    command, against the floor: reading the same smaps_rollup files raw, no parsing.
//! 2. `memtree report --all` against `smem` and `ps_mem` on the whole machine, fork tree
//!    included.
//!
//! Environment: MEMTREE_BENCH_SIZE_MIB (256), MEMTREE_BENCH_WORKERS (8), MEMTREE_BENCH_RUNS (15).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memtree::report::{Format, Meta, Style, Target, write_report};
use memtree::sampler::{SampleOptions, Sampler, Session, Target as SessionTarget};
use rayon::prelude::*;

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

struct Tree {
    child: Child,
    pids: Vec<u32>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn fork_tree(size_mib: u64, workers: u64) -> Tree {
    let helper = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/forktree.py");
    let mut cmd = Command::new("python3");
    cmd.arg(helper)
        .args(["--size-mib", &size_mib.to_string(), "--workers", &workers.to_string()])
        .stdout(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("python3 runs the helper");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pids = line.split_whitespace().skip(1).map(|p| p.parse().unwrap()).collect();
    Tree { child, pids }
}

/// The floor: the kernel's work alone, each smaps_rollup read whole, no parsing.
fn floor(pids: &[u32], buf: &mut Vec<u8>) {
    for pid in pids {
        buf.clear();
        let mut f = std::fs::File::open(format!("/proc/{pid}/smaps_rollup")).unwrap();
        f.read_to_end(buf).unwrap();
    }
}

/// The floor of `--exact`: the same kernel reads memtree makes — smaps_rollup, maps, the
/// pagemap of every mapped range, kpagecount of every distinct frame in runs — with nothing
/// computed beyond collecting the frames.
fn exact_floor(pids: &[u32], buf: &mut Vec<u8>) {
    use std::os::unix::fs::FileExt;
    let mut frames = Vec::new();
    for pid in pids {
        floor(&[*pid], buf);
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).unwrap();
        for line in maps.lines() {
            let range = line.split(' ').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let (a, b) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
            if a >= 0x8000_0000_0000 {
                continue;
            }
            buf.resize(((b - a) / 4096 * 8) as usize, 0);
            let got = pagemap.read_at(buf, a / 4096 * 8).unwrap_or(0);
            for e in buf[..got].chunks_exact(8) {
                let e = u64::from_le_bytes(e.try_into().unwrap());
                if e >> 63 == 1 {
                    frames.push(e & ((1 << 55) - 1));
                }
            }
        }
    }
    frames.sort_unstable();
    frames.dedup();
    let counts = std::fs::File::open("/proc/kpagecount").unwrap();
    let mut i = 0;
    while i < frames.len() {
        let mut j = i + 1;
        while j < frames.len() && frames[j] - frames[j - 1] <= 16 && j - i < 65536 {
            j += 1;
        }
        buf.resize(((frames[j - 1] - frames[i] + 1) * 8) as usize, 0);
        counts.read_at(buf, frames[i] * 8).unwrap();
        i = j;
    }
}

/// memtree's whole report path, in-process: walk, sample, account, JSON.
fn memtree_report(root: u32, exact: bool) {
    let options = SampleOptions { exact, ..SampleOptions::default() };
    let mut session = Session::new(Sampler::live(), SessionTarget::Pids(vec![root]), options);
    let accounting = session.round().unwrap().accounting;
    if exact {
        assert!(accounting.totals.exact_ok().is_some(), "--exact needs root");
    }
    let meta = Meta {
        target: Target::Pids(vec![root]),
        run: None,
        source: "/proc".into(),
        live: true,
        recorded: None,
    };
    write_report(&mut std::io::sink(), Format::Json, &accounting, &meta, Style::default()).unwrap();
}

fn time_command(program: &str, args: &[String]) -> Option<Duration> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| start.elapsed())
}

fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let size = env("MEMTREE_BENCH_SIZE_MIB", 256);
    let workers = env("MEMTREE_BENCH_WORKERS", 8);
    let runs = env("MEMTREE_BENCH_RUNS", 15) as usize;
    let memtree = env!("CARGO_BIN_EXE_memtree");
    let tree = fork_tree(size, workers);
    let root = tree.pids[0];
    println!(
        "fork tree: {workers} workers sharing {size} MiB (pids {:?}), {} cores, {runs} runs each, medians",
        tree.pids,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 1a. In-process, interleaved so both see the same noise.
    let mut buf = Vec::new();
    floor(&tree.pids, &mut buf);
    memtree_report(root, false);
    let exact = nix::unistd::geteuid().is_root();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (mut floor_t, mut par_floor_t, mut lib_t, mut lib1_t) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut exact_t, mut exact1_t, mut exact_floor_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        floor(&tree.pids, &mut buf);
        floor_t.push(start.elapsed());
        let start = Instant::now();
        tree.pids.par_iter().for_each(|pid| floor(&[*pid], &mut Vec::new()));
        par_floor_t.push(start.elapsed());
        let start = Instant::now();
        memtree_report(root, false);
        lib_t.push(start.elapsed());
        let start = Instant::now();
        one_thread.install(|| memtree_report(root, false));
        lib1_t.push(start.elapsed());
        if exact {
            let start = Instant::now();
            exact_floor(&tree.pids, &mut buf);
            exact_floor_t.push(start.elapsed());
            let start = Instant::now();
            memtree_report(root, true);
            exact_t.push(start.elapsed());
            let start = Instant::now();
            one_thread.install(|| memtree_report(root, true));
            exact1_t.push(start.elapsed());
        }
    }
    let f = median(floor_t);
    let ratio = |d: Duration| format!("{:.2}×", d.as_secs_f64() / f.as_secs_f64());
    println!("| what | median | vs floor |");
    println!("| --- | ---: | ---: |");
    println!("| in-process: raw smaps_rollup reads, one thread (floor) | {} | 1.00× |", ms(f));
    let mut rows = vec![
        ("in-process: raw smaps_rollup reads, all cores", median(par_floor_t)),
        ("in-process: memtree walk + sample + account + JSON, one thread", median(lib1_t)),
        ("in-process: memtree walk + sample + account + JSON, all cores", median(lib_t)),
    ];
    if exact {
        rows.push((
            "in-process: memtree --exact (all exact figures), one thread",
            median(exact1_t),
        ));
        rows.push(("in-process: memtree --exact (all exact figures), all cores", median(exact_t)));
    } else {
        println!("(not root: --exact not measured)");
    }
    for (label, d) in rows {
        println!("| {label} | {} | {} |", ms(d), ratio(d));
    }
    if exact {
        let ef = median(exact_floor_t);
        println!("| --- | ---: | ---: |");
        println!(
            "| in-process: raw smaps_rollup + maps + pagemap + kpagecount reads, one thread (exact floor) | {} | {} |",
            ms(ef),
            ratio(ef)
        );
    }

    // 1b. As commands: `cat` of the same files versus `memtree report --pid`.
    let cat_args: Vec<String> =
        tree.pids.iter().map(|p| format!("/proc/{p}/smaps_rollup")).collect();
    let report_args: Vec<String> =
        ["report", "--pid", &root.to_string(), "--format", "json"].map(String::from).to_vec();
    let (mut cat_t, mut cmd_t) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        cat_t.push(time_command("cat", &cat_args).unwrap());
        cmd_t.push(time_command(memtree, &report_args).unwrap());
    }
    let (c, m) = (median(cat_t), median(cmd_t));
    println!("| --- | ---: | ---: |");
    println!("| command: cat of the same smaps_rollup files (floor) | {} | 1.00× |", ms(c));
    println!(
        "| command: memtree report --pid ROOT --format json | {} | {:.2}× |",
        ms(m),
        m.as_secs_f64() / c.as_secs_f64()
    );

    // 2. The whole machine, against smem and ps_mem.
    let all_args: Vec<String> = ["report", "--all", "--format", "json"].map(String::from).to_vec();
    let mut contenders: Vec<(&str, &str, Vec<String>)> =
        vec![("memtree report --all --format json", memtree, all_args)];
    for (label, program, args) in
        [("smem -t", "smem", vec!["-t".to_string()]), ("ps_mem", "ps_mem", vec![])]
    {
        if available(program) {
            contenders.push((label, program, args));
        } else {
            println!("({program} is not installed: skipped)");
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for _ in 0..runs {
        for (i, (_, program, args)) in contenders.iter().enumerate() {
            if let Some(t) = time_command(program, args) {
                times[i].push(t);
            }
        }
    }
    let base = median(times[0].clone());
    println!("| whole machine | median | vs memtree |");
    println!("| --- | ---: | ---: |");
    for ((label, ..), t) in contenders.iter().zip(times) {
        if t.is_empty() {
            println!("| {label} | failed | |");
            continue;
        }
        let t = median(t);
        println!("| {label} | {} | {:.2}× |", ms(t), t.as_secs_f64() / base.as_secs_f64());
    }
}
