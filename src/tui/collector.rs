//! TUI layer, background side: the thread that samples the target for the dashboard, so the
//! screen never waits on /proc. Sampling cost is controlled:
//!
//! - each tick, every process's `statm` (~10 µs) is compared with the last one; a process whose
//!   size and resident pages did not change keeps its last smaps_rollup figures (a rollup of a
//!   1 GiB process is a ~20 ms page-table walk under its mmap lock);
//! - every process is read in full at least every `full_every`, whatever statm says;
//! - exact figures (pagemap, kpagecount; root) are recomputed only when something changed, and
//!   then no sooner than `exact_every` nor than 50 times what the last exact pass cost (so they
//!   take at most ~2 % of a core), or when they are older than `exact_full_every`;
//! - the figures' ages travel with every update, so the screen can show them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use crate::model::tree::Grouping;
use crate::model::{Accounting, ProcessSample, Snapshot, account};
use crate::sampler::{SampleOptions, Sampler, StatInfo};

/// After a change, exact figures are recomputed once this many times their last cost has passed.
const EXACT_BUDGET: u32 = 50;

/// What the dashboard watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// The trees under these pids.
    Pids(Vec<u32>),
    /// Every process.
    Machine,
    /// Every descendant of this memtree (workloads and commands it started).
    Children,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub watch: Watch,
    pub interval: Duration,
    /// Read physical pages (needs root); `false` also when unprivileged.
    pub exact: bool,
    pub dedup: bool,
    /// Every process is read in full at least this often, changed or not.
    pub full_every: Duration,
    /// Exact figures are recomputed at most this often when something changed (and no sooner
    /// than 50 times their last cost)…
    pub exact_every: Duration,
    /// …and at least this often when nothing did.
    pub exact_full_every: Duration,
}

/// Wishes of the screen the collector follows.
#[derive(Debug, Default)]
pub struct Controls {
    pub quit: AtomicBool,
    pub paused: AtomicBool,
    /// Read the per-mapping smaps of every process (the mappings view).
    pub mappings: AtomicBool,
    /// Read the per-mapping smaps of this pid (the detail pane); 0 for none.
    pub focus: AtomicU32,
}

/// One round of figures for the screen.
#[derive(Debug, Clone)]
pub struct Update {
    pub accounting: Accounting,
    pub at: Instant,
    /// When the exact figures in `accounting` were computed.
    pub exact_at: Option<Instant>,
    /// Processes whose rollup was read this round, and processes reused from an earlier one.
    pub read: usize,
    pub reused: usize,
    pub cost: Duration,
    /// Every root of the target is gone: these are its last figures.
    pub target_gone: bool,
}

struct Cached {
    statm: Vec<u8>,
    sample: ProcessSample,
    read_at: Instant,
}

/// Runs until `controls.quit` is set or the receiver goes away.
pub fn run(sampler: Sampler, config: Config, controls: Arc<Controls>, tx: Sender<Update>) {
    let mut cache: HashMap<u32, Cached> = HashMap::new();
    let mut last_exact: Option<(Instant, Accounting)> = None;
    let mut last_exact_cost = Duration::ZERO;
    let self_pid = std::process::id();
    loop {
        if controls.quit.load(Ordering::Relaxed) {
            return;
        }
        let start = Instant::now();
        if controls.paused.load(Ordering::Relaxed) {
            if !sleep_until(start + config.interval, &controls) {
                return;
            }
            continue;
        }
        let (processes, grouping, gone) = discover(&sampler, &config.watch, self_pid);
        let focus = controls.focus.load(Ordering::Relaxed);
        let all_mappings = controls.mappings.load(Ordering::Relaxed);
        let mut read = 0;
        let mut reused = 0;
        let mut changed = false;
        let mut samples = Vec::with_capacity(processes.len());
        let mut fresh: Vec<&StatInfo> = Vec::new();
        for info in &processes {
            let statm = sampler.read(info.pid, "statm").unwrap_or_default();
            let want_maps = all_mappings || info.pid == focus;
            // A process that is new or whose statm moved has changed; a periodic full re-read
            // alone does not count (it must not drag the exact refresh along).
            changed |= cache.get(&info.pid).is_none_or(|c| c.statm != statm);
            match cache.get(&info.pid) {
                Some(c)
                    if c.statm == statm
                        && start.duration_since(c.read_at) < config.full_every
                        && (!want_maps || c.sample.mappings.is_some()) =>
                {
                    samples.push(c.sample.clone());
                    reused += 1;
                }
                _ => fresh.push(info),
            }
        }
        // Changed processes are read in parallel, as `report` does.
        let options = |pid: u32| SampleOptions {
            mappings: all_mappings || pid == focus,
            ..SampleOptions::default()
        };
        let new: Vec<ProcessSample> = {
            use rayon::prelude::*;
            fresh.par_iter().map(|info| sampler.sample_one(info, options(info.pid))).collect()
        };
        for sample in new {
            read += 1;
            let statm = sampler.read(sample.pid, "statm").unwrap_or_default();
            cache.insert(sample.pid, Cached { statm, sample: sample.clone(), read_at: start });
            samples.push(sample);
        }
        let alive: std::collections::HashSet<u32> = processes.iter().map(|p| p.pid).collect();
        let before = cache.len();
        cache.retain(|pid, _| alive.contains(pid));
        changed |= cache.len() != before;

        let mut snapshot = Snapshot {
            taken_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            privileged: sampler.privileged(),
            processes: samples,
            pfn_table: None,
            page_size: crate::sampler::page_size(),
        };
        // After a change, exact figures wait `EXACT_BUDGET` times what the last exact pass
        // cost (so they take at most ~2 % of a core), and at least `exact_every`: a small tree
        // is recomputed at every change, 33 GiB of mappings every ~20 s.
        let spacing = config.exact_every.max(last_exact_cost * EXACT_BUDGET);
        let exact_due = config.exact
            && last_exact.as_ref().is_none_or(|(at, _)| {
                let age = start.duration_since(*at);
                age >= config.exact_full_every || (changed && age >= spacing)
            });
        if exact_due {
            let exact_start = Instant::now();
            sampler.sample_exact(&mut snapshot, config.dedup);
            if config.dedup {
                sampler.sample_content(&mut snapshot);
            }
            last_exact_cost = exact_start.elapsed();
        }
        let mut accounting = account(&snapshot, &grouping);
        if exact_due {
            last_exact = Some((start, accounting.clone()));
        } else if let Some((_, exact)) = &last_exact {
            carry_exact(&mut accounting, exact);
        }
        let update = Update {
            accounting,
            at: start,
            exact_at: last_exact.as_ref().map(|(at, _)| *at),
            read,
            reused,
            cost: start.elapsed(),
            target_gone: gone,
        };
        if tx.send(update).is_err() || gone {
            return;
        }
        if !sleep_until(start + config.interval.max(start.elapsed()), &controls) {
            return;
        }
    }
}

/// The processes to sample now, how to group them, and whether the target is gone.
fn discover(sampler: &Sampler, watch: &Watch, self_pid: u32) -> (Vec<StatInfo>, Grouping, bool) {
    match watch {
        Watch::Machine => {
            let mut all = sampler.scan().unwrap_or_default();
            all.retain(|p| p.pid != self_pid);
            (all, Grouping::Machine, false)
        }
        Watch::Pids(pids) => {
            let alive: Vec<u32> =
                pids.iter().copied().filter(|p| sampler.stat(*p).is_ok()).collect();
            if alive.is_empty() {
                return (Vec::new(), Grouping::Roots(pids.clone()), true);
            }
            let mut found = sampler.descendants(&alive).unwrap_or_default();
            found.retain(|p| p.pid != self_pid);
            (found, Grouping::Roots(alive), false)
        }
        Watch::Children => {
            let mut found = sampler.descendants(&[self_pid]).unwrap_or_default();
            found.retain(|p| p.pid != self_pid);
            let roots: Vec<u32> =
                found.iter().filter(|p| p.ppid == self_pid).map(|p| p.pid).collect();
            let gone = roots.is_empty();
            (found, Grouping::Roots(roots), gone)
        }
    }
}

/// Puts the last exact figures on a round that did not recompute them (same pids, same trees).
fn carry_exact(accounting: &mut Accounting, exact: &Accounting) {
    let rows: HashMap<u32, &crate::model::tree::ProcessRow> =
        exact.processes().map(|p| (p.pid, p)).collect();
    for tree in &mut accounting.trees {
        for row in &mut tree.processes {
            if let Some(old) = rows.get(&row.pid) {
                row.exact = old.exact.clone();
                row.dedup = old.dedup.clone();
            }
        }
        if let Some(old) = exact.trees.iter().find(|t| t.root_pid == tree.root_pid) {
            if let Some(e) = old.totals.exact.clone() {
                tree.totals.set_exact(e);
            }
            tree.totals.dedup = old.totals.dedup.clone();
        }
    }
    if let Some(e) = exact.totals.exact.clone() {
        accounting.totals.set_exact(e);
    }
    accounting.totals.dedup = exact.totals.dedup.clone();
}

/// Sleeps until `deadline` in short steps; `false` when asked to quit.
fn sleep_until(deadline: Instant, controls: &Controls) -> bool {
    loop {
        if controls.quit.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}
