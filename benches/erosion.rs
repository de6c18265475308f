//! `cargo bench --bench erosion`: the copy-on-write erosion pass against the exact pass it
//! builds on, on the same snapshot of a live fork tree (tests/helpers/forktree.py: a parent
//! with SIZE MiB of random bytes and WORKERS children that read every page), on 4 KiB pages and
//! on transparent huge pages (madvise, as numpy asks). Both are pure computations over pages
//! already read: the ratio is what erosion adds to an exact refresh. Needs root (frames).
//!
//! Environment: MEMTREE_BENCH_SIZE_MIB (256), MEMTREE_BENCH_WORKERS (8), MEMTREE_BENCH_RUNS (15).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memtree::model::erosion::{self, ParentFrames};
use memtree::model::exact::{self, Workspace};
use memtree::model::snapshot::PagesRaw;
use memtree::sampler::{SampleOptions, Sampler, Session, Target};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

struct Tree(Child, Vec<u32>);

impl Drop for Tree {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn fork_tree(size: u64, workers: u64, thp: bool) -> Tree {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helpers/forktree.py"))
        .args(["--size-mib", &size.to_string(), "--workers", &workers.to_string()])
        .stdout(Stdio::piped());
    if thp {
        cmd.arg("--thp");
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("python3 runs the fork-tree helper");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pids = line.split_whitespace().skip(1).map(|p| p.parse().unwrap()).collect();
    Tree(child, pids)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("erosion bench: needs root (physical frames); skipped");
        return;
    }
    let size = env("MEMTREE_BENCH_SIZE_MIB", 256);
    let workers = env("MEMTREE_BENCH_WORKERS", 8);
    let runs = env("MEMTREE_BENCH_RUNS", 15) as usize;
    println!("| regime | exact pass | erosion pass | erosion / exact |");
    println!("| --- | ---: | ---: | ---: |");
    for thp in [false, true] {
        let tree = fork_tree(size, workers, thp);
        let options = SampleOptions { exact: true, ..SampleOptions::default() };
        let session = Session::new(Sampler::live(), Target::Pids(vec![tree.1[0]]), options);
        let (infos, _) = session.discover().expect("the tree");
        let snapshot = session.read(&infos);
        let table = snapshot.pfn_table.as_ref().unwrap().as_ref().unwrap();
        let pages: Vec<(u32, u32, &PagesRaw)> = snapshot
            .processes
            .iter()
            .filter_map(|p| Some((p.pid, p.ppid, p.pages.as_ref()?.as_ref().ok()?)))
            .collect();
        let input: Vec<(u32, &PagesRaw)> = pages.iter().map(|(pid, _, p)| (*pid, *p)).collect();
        let parent = pages.iter().find(|p| p.0 == tree.1[0]).unwrap().2;
        let mut ws = Workspace::default();
        let (mut exact_t, mut erosion_t) = (Vec::new(), Vec::new());
        let mut copied = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let out = exact::exact(&input, table, snapshot.page_size, &mut ws, true);
            exact_t.push(start.elapsed());
            std::hint::black_box(out);
            let start = Instant::now();
            let mut frames = ParentFrames::default();
            frames.fill(parent, table);
            copied = 0;
            for (_, ppid, worker) in pages.iter().filter(|p| p.1 == tree.1[0]) {
                let e = erosion::exact(*ppid, worker, parent, &frames, table, snapshot.page_size);
                copied += e.copied_from_parent;
            }
            erosion_t.push(start.elapsed());
        }
        let (e, r) = (median(exact_t), median(erosion_t));
        let huge = if thp { "THP (madvise)" } else { "4 KiB pages" };
        println!(
            "| {workers} workers sharing {size} MiB, {huge} | {:.2} ms | {:.2} ms | {:.2}× |",
            e.as_secs_f64() * 1e3,
            r.as_secs_f64() * 1e3,
            r.as_secs_f64() / e.as_secs_f64()
        );
        std::hint::black_box(copied);
    }
}
