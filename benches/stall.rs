//! `cargo bench --bench stall`: what reading a process costs the process. Reading smaps,
//! smaps_rollup and pagemap walks its page tables holding its mmap lock; a process that maps or
//! unmaps memory meanwhile (an allocator, a JIT, a server) waits. The target here holds SIZE of
//! touched memory in 4 KiB pages and maps and unmaps 4 KiB in a loop, timing every pair; for
//! each phase the bench reports the slowest pair and the 99.9th percentile, with nothing
//! reading it (the baseline), under `memtree report` (plain, `--exact`, `--mappings`) run back to
//! back, under `memtree top` at its default 1 s refresh, and under `smem` (which reads every
//! process's smaps).
//!
//! Environment: MEMTREE_BENCH_SIZE_MIB (1024), MEMTREE_BENCH_SECONDS (8 per phase).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

static REPORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: i32) {
    REPORT.store(true, Ordering::SeqCst);
}

/// The target: SIZE MiB touched, then mmap+munmap of 4 KiB in a loop; on SIGUSR1 it prints
/// `max_us p999_us pairs` for the pairs since the last report.
fn target(size_mib: usize) -> ! {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
    use std::num::NonZeroUsize;
    let mut data = vec![0u8; size_mib << 20];
    for page in data.chunks_mut(4096) {
        page[0] = 1;
    }
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_usr1),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGUSR1, &action) }.unwrap();
    println!("ready {}", std::process::id());
    let mut times: Vec<u32> = Vec::with_capacity(1 << 24);
    let len = NonZeroUsize::new(4096).unwrap();
    loop {
        let start = Instant::now();
        // SAFETY: a fresh private mapping, unmapped at once; nothing else refers to it.
        unsafe {
            let p = mmap_anonymous(None, len, ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE).unwrap();
            munmap(p, 4096).unwrap();
        }
        times.push(start.elapsed().as_micros() as u32);
        if REPORT.swap(false, Ordering::SeqCst) {
            times.sort_unstable();
            let max = times.last().copied().unwrap_or(0);
            let p999 = times.get(times.len() * 999 / 1000).copied().unwrap_or(0);
            println!("{max} {p999} {}", times.len());
            std::io::stdout().flush().unwrap();
            times.clear();
        }
        std::hint::black_box(&data);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("target") {
        target(args[2].parse().unwrap());
    }
    let size = env("MEMTREE_BENCH_SIZE_MIB", 1024);
    let seconds = env("MEMTREE_BENCH_SECONDS", 8);
    let memtree = env!("CARGO_BIN_EXE_memtree");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["target", &size.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: u32 =
        lines.next().unwrap().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut phase = |label: &str, reader: &mut dyn FnMut() -> usize| {
        // Reset the target's figures, then read it for the phase.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .unwrap();
        lines.next().unwrap().unwrap();
        let until = Instant::now() + Duration::from_secs(seconds);
        let mut reads = 0;
        while Instant::now() < until {
            reads += reader();
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .unwrap();
        let line = lines.next().unwrap().unwrap();
        let f: Vec<u64> = line.split_whitespace().map(|v| v.parse().unwrap()).collect();
        println!("| {label} | {reads} | {} µs | {} µs | {} |", f[0], f[1], f[2]);
    };
    let run = |program: &str, args: &[String]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()) as usize
    };
    let report = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "report".into(),
            "--pid".into(),
            pid.to_string(),
            "--format".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    println!(
        "target: {size} MiB touched in 4 KiB pages, mmap+munmap of 4 KiB in a loop; {seconds} s a phase"
    );
    println!("| reader | reads | slowest mmap+munmap | 99.9th percentile | pairs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    phase("nothing (baseline)", &mut || {
        std::thread::sleep(Duration::from_millis(100));
        0
    });
    let plain = report(&[]);
    phase("memtree report, back to back", &mut || run(memtree, &plain));
    if nix::unistd::geteuid().is_root() {
        let exact = report(&["--exact"]);
        phase("memtree report --exact, back to back", &mut || run(memtree, &exact));
    }
    let mappings = report(&["--mappings"]);
    phase("memtree report --mappings, back to back", &mut || run(memtree, &mappings));
    // The dashboard: started in tmux for the phase.
    let session = format!("stall-{}", std::process::id());
    let top = format!("exec {memtree} top --pid {pid}");
    if Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &top])
        .status()
        .is_ok_and(|s| s.success())
    {
        std::thread::sleep(Duration::from_secs(2));
        phase("memtree top (1 s refresh)", &mut || {
            std::thread::sleep(Duration::from_millis(100));
            0
        });
        let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();
    }
    if Command::new("smem").arg("--help").stdout(Stdio::null()).status().is_ok() {
        let smem =
            vec!["-P".to_string(), format!("^{}", std::env::current_exe().unwrap().display())];
        phase("smem -P TARGET (its smaps), back to back", &mut || run("smem", &smem));
    }
    let _ = child.kill();
    let _ = child.wait();
}
