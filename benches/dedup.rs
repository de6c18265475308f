//! `cargo bench --bench dedup` (as root): `--dedup` throughput against reading the same pages
//! without hashing them, in the same run. The tree is `memtree run serialize` (SIZE of random
//! bytes, a copy in the parent and in each of WORKERS workers: (WORKERS + 1) × SIZE of distinct
//! content to read).
//!
//! Environment: MEMTREE_BENCH_SIZE_MIB (256), MEMTREE_BENCH_WORKERS (4), MEMTREE_BENCH_RUNS (5).

use std::path::Path;
use std::time::Instant;

use memtree::runner::spawn::RunningWorkload;
use memtree::runner::spec::{Spec, Touch, Variant};
use memtree::sampler::content::{RegionReader, WINDOW_BYTES, open_mem, plan};
use memtree::sampler::{SampleOptions, Sampler, Session, Target};
use rayon::prelude::*;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("--dedup needs root: not measured");
        return;
    }
    let size = env("MEMTREE_BENCH_SIZE_MIB", 256);
    let workers = env("MEMTREE_BENCH_WORKERS", 4);
    let runs = env("MEMTREE_BENCH_RUNS", 5) as usize;
    let spec = Spec {
        variant: Variant::Serialize,
        size_bytes: size << 20,
        workers: workers as usize,
        touch: Touch::Read,
    };
    let workload = RunningWorkload::start_with(Path::new(env!("CARGO_BIN_EXE_memtree")), spec)
        .expect("the serialize workload starts");
    let sampler = Sampler::live();
    let tree = sampler.descendants(&[workload.root]).unwrap();
    let exact = SampleOptions { exact: true, ..SampleOptions::default() };
    let session = Session::new(sampler.clone(), Target::Pids(vec![workload.root]), exact);
    let page = memtree::sampler::page_size() as usize;
    let (mut read_only, mut dedup) = (Vec::new(), Vec::new());
    let mut bytes = 0u64;
    for _ in 0..runs {
        // Both start from the same exact snapshot; only the content pass is timed.
        let mut snapshot = session.read(&tree);
        sampler.sample_exact(&mut snapshot, true); // with kpageflags, as --dedup reads them
        let Some(Ok(table)) = &snapshot.pfn_table else { panic!("no frames") };
        let plans = plan(&snapshot, table);
        bytes = plans.iter().flatten().map(|r| r.1).sum();

        let start = Instant::now();
        snapshot.processes.par_iter().zip(&plans).for_each(|(p, regions)| {
            let mut buf = vec![0u8; WINDOW_BYTES];
            let mut sink = 0u8;
            let Ok(mem) = open_mem(&sampler, p.pid) else { return };
            for &region in regions {
                let mut reader = RegionReader::new(&mem, region, page);
                while reader.read(&mut buf).unwrap() > 0 {
                    sink ^= buf[0];
                }
            }
            std::hint::black_box(sink);
        });
        read_only.push(start.elapsed().as_secs_f64());

        let start = Instant::now();
        sampler.sample_content(&mut snapshot, None);
        dedup.push(start.elapsed().as_secs_f64());
    }
    workload.stop().unwrap();
    let (r, d) = (median(read_only), median(dedup));
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "{mib:.0} MiB of distinct anonymous content ({workers} workers × {size} MiB + the parent's), {runs} runs, medians, all cores"
    );
    println!("| what | seconds | throughput | vs read-only |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| read the pages (/proc/PID/mem), no hashing | {r:.3} | {:.0} MiB/s | 100 % |",
        mib / r
    );
    println!(
        "| --dedup: read + content-defined chunking + xxh3 | {d:.3} | {:.0} MiB/s | {:.0} % |",
        mib / d,
        100.0 * r / d
    );
}
