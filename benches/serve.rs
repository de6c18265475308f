//! `cargo bench --bench serve`: what `memtree serve` costs, scraped as Prometheus scrapes it.
//!
//! CPU: `memtree serve --interval 15s` (exact figures and duplicated content on, as root) on
//! a steady tree, scraped every 15 s, measured from the kernel's utime + stime over the same
//! window as a baseline in the same run: a loop that reads every smaps_rollup of the tree
//! every 15 s (what an exporter that walks each process at each scrape costs at least:
//! process-exporter's way). Latency: then SCRAPES scrapes of /metrics back to back
//! (OpenMetrics), p50 and p99, beside the same number of requests for `/` (a static page:
//! the HTTP round trip alone).
//!
//! MEMTREE_BENCH_REGIMES picks the trees (default `x`): `x` 32 workers sharing 1 GiB (33
//! processes, 4 KiB pages); `c` one tree of 1,000 small processes; `e` the whole machine with
//! 2,000 more processes (`serve --all`).
//!
//! Environment: MEMTREE_BENCH_REGIMES (x), MEMTREE_BENCH_SIZE_MIB (1024),
//! MEMTREE_BENCH_WORKERS (32), MEMTREE_BENCH_SECONDS (600), MEMTREE_BENCH_WARMUP (30),
//! MEMTREE_BENCH_SCRAPES (1000).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "support/sleepers.rs"]
mod sleepers;

use memtree::runner::spawn::RunningWorkload;
use memtree::runner::spec::{Spec, Touch, Variant};
use sleepers::Sleepers;

const SCRAPE: Duration = Duration::from_secs(15);
const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// utime + stime of `pid` (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
    ticks as f64 / hz
}

/// This thread's own CPU time, in seconds (the baseline runs in a thread of the bench).
fn thread_cpu() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_THREAD).unwrap();
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    tv(u.user_time()) + tv(u.system_time())
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn serve(memtree: &str, target: &[String]) -> (Served, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(memtree)
        .args(["serve", "--interval", "15s", "--listen", &format!("127.0.0.1:{port}")])
        .args(target)
        .stderr(Stdio::piped())
        .spawn()
        .expect("memtree serve starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("serving"), "{line}");
    // Whatever serve says later goes on the bench's stderr (a closed pipe would fail its writes).
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
        }
    });
    (Served(child), port)
}

fn get(port: u16, path: &str) -> usize {
    ureq::get(format!("http://127.0.0.1:{port}{path}"))
        .header("Accept", OPENMETRICS)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
        .len()
}

/// The smaps_rollup of every process of the tree under `root` (all of them for 0), every 15 s
/// until `stop`: its CPU seconds.
fn rollup_floor(root: u32, stop: Arc<AtomicBool>) -> f64 {
    let pids = |root: u32| -> Vec<u32> {
        let all: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        if root == 0 {
            return all;
        }
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let children = format!("/proc/{p}/task/{p}/children", p = tree[i]);
            let text = std::fs::read_to_string(children).unwrap_or_default();
            tree.extend(text.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            i += 1;
        }
        tree
    };
    let start = thread_cpu();
    while !stop.load(Ordering::SeqCst) {
        let next = Instant::now() + SCRAPE;
        for pid in pids(root) {
            let _ = std::fs::read(format!("/proc/{pid}/smaps_rollup"));
        }
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    thread_cpu() - start
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(title: &str, memtree: &str, root: u32, target: &[String]) {
    let seconds = env("MEMTREE_BENCH_SECONDS", 600);
    let warmup = env("MEMTREE_BENCH_WARMUP", 30);
    let scrapes = env("MEMTREE_BENCH_SCRAPES", 1000) as usize;
    let (mut served, port) = serve(memtree, target);
    std::thread::sleep(Duration::from_secs(warmup));
    let stop = Arc::new(AtomicBool::new(false));
    let floor = {
        let stop = stop.clone();
        std::thread::spawn(move || rollup_floor(root, stop))
    };
    let before = cpu_seconds(served.0.id());
    let started = Instant::now();
    let mut bytes = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let next = Instant::now() + SCRAPE;
        if let Ok(Some(status)) = served.0.try_wait() {
            panic!("serve ended: {status}");
        }
        bytes = get(port, "/metrics");
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let window = started.elapsed().as_secs_f64();
    let serve_cpu = cpu_seconds(served.0.id()) - before;
    stop.store(true, Ordering::SeqCst);
    let floor_cpu = floor.join().unwrap();

    let time = |path: &str| -> Vec<Duration> {
        let mut times: Vec<Duration> = (0..scrapes)
            .map(|_| {
                let t = Instant::now();
                get(port, path);
                t.elapsed()
            })
            .collect();
        times.sort_unstable();
        times
    };
    let page = time("/");
    let metrics = time("/metrics");
    drop(served);

    println!("\n{title}: {window:.0} s at a 15 s scrape interval, after {warmup} s of warm-up");
    println!("| what | CPU seconds | % of one core | × the floor |");
    println!("| --- | ---: | ---: | ---: |");
    let pct = |cpu: f64| 100.0 * cpu / window;
    println!(
        "| memtree serve (exact + dedup) | {serve_cpu:.2} | {:.3} % | {:.2}× |",
        pct(serve_cpu),
        serve_cpu / floor_cpu.max(1e-9)
    );
    println!(
        "| floor: every smaps_rollup each scrape | {floor_cpu:.2} | {:.3} % | 1.00× |",
        pct(floor_cpu)
    );
    println!("\n{scrapes} requests back to back ({bytes} bytes of OpenMetrics a scrape)");
    println!("| request | p50 | p99 | p50 × `/` |");
    println!("| --- | ---: | ---: | ---: |");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| GET /metrics | {:.3} ms | {:.3} ms | {:.2}× |",
        ms(percentile(&metrics, 0.5)),
        ms(percentile(&metrics, 0.99)),
        percentile(&metrics, 0.5).as_secs_f64() / percentile(&page, 0.5).as_secs_f64()
    );
    println!(
        "| GET / (static page) | {:.3} ms | {:.3} ms | 1.00× |",
        ms(percentile(&page, 0.5)),
        ms(percentile(&page, 0.99))
    );
}

fn main() {
    let memtree = env!("CARGO_BIN_EXE_memtree");
    let regimes = std::env::var("MEMTREE_BENCH_REGIMES").unwrap_or_else(|_| "x".into());
    for regime in regimes.chars() {
        match regime {
            'x' => {
                let size = env("MEMTREE_BENCH_SIZE_MIB", 1024);
                let workers = env("MEMTREE_BENCH_WORKERS", 32) as usize;
                let spec = Spec {
                    variant: Variant::Fork,
                    size_bytes: size << 20,
                    workers,
                    touch: Touch::Read,
                };
                let workload =
                    RunningWorkload::start_with(Path::new(memtree), spec).expect("workload");
                let root = workload.root;
                let title = format!("(x) {workers} workers sharing {size} MiB");
                measure(&title, memtree, root, &["--pid".into(), root.to_string()]);
                workload.stop().unwrap();
            }
            'c' => {
                let tree = Sleepers::spawn(1000);
                let root = tree.0.id();
                measure(
                    "(c) one tree of 1,000 processes",
                    memtree,
                    root,
                    &["--pid".into(), root.to_string()],
                );
            }
            'e' => {
                let _tree = Sleepers::spawn(2000);
                measure(
                    "(e) the whole machine, 2,000 processes more",
                    memtree,
                    0,
                    &["--all".into()],
                );
            }
            other => panic!("unknown regime {other:?} (x, c, e)"),
        }
    }
}
