//! Sampler layer: the shared sampler. Every command takes its snapshots from a [`Session`]:
//! `report` (one round), `report -- CMD` (a snapshot every interval until CMD exits),
//! `compare` (one round per workload), the dashboard's thread (a round every interval), and
//! the faces to come (record, serve). A session owns:
//!
//! - the target's process set: the trees under given pids, the whole machine, or memtree's own
//!   descendants (a followed command, started workloads), rediscovered every round;
//! - privilege, checked once (by the [`Sampler`] it is built on);
//! - leaving memtree itself out (it is never part of what it measures, except in a capture);
//! - change detection: with a [`Cadence`], a process whose `statm` (~10 µs; for a forked
//!   worker that shares anonymous memory with its parent, `stat`'s fault counts, size and
//!   resident pages, which a copy-on-write moves: `memory_fingerprint`) did not move keeps
//!   its last smaps_rollup figures (a rollup of a 1 GiB process is a ~20 ms page-table walk
//!   under its mmap lock), and is read in full again only every `full_every`;
//! - the cadence and budget of the costly passes (pagemap + kpagecount, page contents):
//!   recomputed only after a change, no sooner than `exact_every` nor than their last cost
//!   divided by their share of a core (at most `1/exact_budget`, less when the rest of the
//!   session leaves less of `1/session_budget`), and at least every `exact_full_every`; in
//!   between, the last exact figures are carried over with their age.
//!
//! This is the one place a [`Snapshot`] is built. Nothing here formats: progress of a long pass
//! is reported as [`Progress`] events to whoever shows it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::pagemap::{Claimed, PagesHint};
use super::stages::{More, Step, two_stage};
use super::{ReadError, SampleOptions, Sampler, StatInfo, page_size};
use crate::model::{Accounting, Grouping, ProcessSample, Snapshot, Unreadable, account};

/// What a session watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The trees under these pids. Each must exist at the first round; one that exits later
    /// leaves the target, and when all have, the target is gone.
    Pids(Vec<u32>),
    /// Every process of the machine, grouped into trees under init.
    Machine,
    /// Every descendant of this memtree (the command or workloads it started): its children
    /// are the roots; when it has none left, the target is gone.
    Children,
}

/// A process read in a pass, with its frames' claims when the pass reads pages.
type Read = (ProcessSample, Option<Result<Claimed, Unreadable>>);

/// How a pass reads each process ([`Session::reading`]).
struct Reading {
    options: SampleOptions,
    pages_inline: bool,
    claims: Option<super::pagemap::FrameClaims>,
    page_size: u64,
}

/// How often a long-lived session reads what (the dashboard, a recording, an exporter). A
/// session without one reads everything at every round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Every process is read in full at least this often, whether its statm moved or not.
    pub full_every: Duration,
    /// After a change, exact figures are recomputed no sooner than this…
    pub exact_every: Duration,
    /// …nor than this many times the CPU time the last exact pass took (100: at most ~1 % of
    /// a core)…
    pub exact_budget: u32,
    /// …and, within that budget, at least this often, changed or not.
    pub exact_full_every: Duration,
    /// All of memtree's CPU time (reading, accounting, a face's drawing, the costly passes)
    /// within 1/this of a core: the costly passes get what the rest left over the last
    /// window, at most `1/exact_budget` and never less than a quarter of it. On a tree the
    /// rest is little and the passes keep their 1 %; on a whole machine, where some process
    /// always moves and every round re-accounts thousands, they make room for it.
    pub session_budget: u32,
    /// Carry the last exact figures even onto a tree that moved since by more than 2 % (the
    /// exporter: a series keeps its `method` label, and its age is a series of its own); the
    /// dashboard and recordings show the PSS estimate there instead ([`Accounting::carry_exact_from`]).
    pub keep_moved_exact: bool,
    /// A process's rollup (a walk of its page tables under its mmap lock, during which it
    /// cannot map or unmap memory) is read again no sooner than this many times what its
    /// last read took, however often its statm moves: 50 keeps the stalls memtree causes
    /// under 2 % of the process's time (a 1 GiB process: a 15 ms walk, at most every 0.75 s).
    pub walk_budget: u32,
}

impl Cadence {
    /// Whether a process read `age` ago at a cost of `cost` keeps its figures: its statm has
    /// not moved and it is not due for a full re-read, or reading it again would break its
    /// walk budget.
    pub fn reuse(&self, unchanged: bool, age: Duration, cost: Duration) -> bool {
        (unchanged && age < self.full_every) || age < cost * self.walk_budget
    }

    /// The dashboard's: a refresh every `interval`.
    pub fn every(interval: Duration) -> Cadence {
        Cadence {
            full_every: Duration::from_secs(60),
            exact_every: interval,
            exact_budget: 100,
            exact_full_every: Duration::from_secs(300),
            // 1.8 %: the dashboard's goal is 2 % of a core.
            session_budget: 55,
            keep_moved_exact: false,
            walk_budget: 50,
        }
    }

    /// The share of a core the costly passes may take when the rest of the session took
    /// `rest` of one (a fraction) over the last window.
    pub fn exact_share(&self, rest: f64) -> f64 {
        let most = 1.0 / f64::from(self.exact_budget.max(1));
        (1.0 / f64::from(self.session_budget.max(1)) - rest).clamp(most / 4.0, most)
    }
}

/// How far a long pass has come, for the face that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Page contents hashed so far, of `total` bytes (`--dedup`).
    Content { done: u64, total: u64 },
    /// The content pass is over.
    ContentDone,
}

/// A receiver of [`Progress`] events (called from a sampler thread).
pub type ProgressFn = Box<dyn Fn(Progress) + Send + Sync>;

/// One snapshot of the target, with how to group it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub snapshot: Snapshot,
    pub grouping: Grouping,
    /// Every root of the target is gone (the snapshot holds what was left, maybe nothing).
    pub target_gone: bool,
}

/// One round of a session, accounted. The accounting is shared: a paced round in which nothing
/// changed hands on the last one again, without building it anew.
#[derive(Debug, Clone)]
pub struct Round {
    pub accounting: Arc<Accounting>,
    /// When the round started.
    pub at: Instant,
    /// When the exact figures in `accounting` were read (`None`: none yet, or not asked for).
    pub exact_at: Option<Instant>,
    /// Whether this round read them itself (not carried over from an earlier one).
    pub exact_fresh: bool,
    /// Processes whose rollup was read this round, and processes reused from an earlier one.
    pub read: usize,
    pub reused: usize,
    /// What the round cost, wall time.
    pub cost: Duration,
    pub target_gone: bool,
}

struct Cached {
    statm: Vec<u8>,
    /// `None` only while lent to a round's snapshot.
    sample: Option<ProcessSample>,
    read_at: Instant,
    /// What reading it took (its page-table walks, mostly).
    cost: Duration,
    /// When its statm last moved (or it was first read).
    moved_at: Instant,
}

/// A process whose statm has not moved for this long is a quiet one…
const QUIET: Duration = Duration::from_secs(60);
/// …looked at only every this many rounds.
const QUIET_STRIDE: u64 = 4;

/// A hasher for pids (the maps a paced session keeps are keyed by them, thousands of times a
/// round): one multiplication, whose high bits the table uses.
#[derive(Default)]
struct PidHasher(u64);

impl std::hash::Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type PidMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<PidHasher>>;

/// What a paced session keeps between rounds so that a steady target costs a directory listing
/// and one `pread` per process: the pids /proc listed, the target's processes found then, and
/// each process's `statm` held open (re-read at offset 0; a read fails once the process has
/// exited, even if its pid is reused).
#[derive(Default)]
struct Membership {
    listed: Vec<u32>,
    /// The stat of every process /proc listed, kept up to date round by round.
    known: PidMap<StatInfo>,
    processes: Vec<StatInfo>,
    gone: bool,
    /// Each process's held `statm` (or, for a fault-watched worker, `stat`: the flag).
    statm: PidMap<(std::fs::File, bool)>,
    /// A held file failed: discover again at the next round.
    stale: bool,
}

/// The CPU time this process has used, all threads.
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let tv = |t: nix::sys::time::TimeVal| {
            Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
        };
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// Hands memory the allocator holds free back to the system (glibc's `malloc_trim`).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// What of `/proc/PID/stat` tells that a process's memory moved: its minor and major fault
/// counts, its virtual size and its resident pages. The fault counts are what catch a
/// copy-on-write: a worker writing to a page it shares with its parent takes a fault and gets
/// a frame of its own, and neither its size nor its resident pages move (statm would not
/// tell). CPU times and the rest, which move all the time, are left out. Text that does not
/// parse is kept whole (any change then counts).
fn memory_fingerprint(stat: &[u8]) -> Vec<u8> {
    let after = stat.iter().rposition(|&b| b == b')').map_or(stat, |i| &stat[i + 1..]);
    let fields: Vec<&[u8]> = after.split(|&b| b == b' ').filter(|f| !f.is_empty()).collect();
    // Fields 10, 12, 23 and 24 of proc(5), counted from the state (field 3).
    let wanted = [7, 9, 20, 21];
    if fields.len() <= 21 {
        return stat.to_vec();
    }
    let mut out = Vec::with_capacity(64);
    for i in wanted {
        out.extend_from_slice(fields[i]);
        out.push(b' ');
    }
    out
}

/// Files held open by a paced session at most (the rest are opened each round), below the
/// soft limit on open files.
fn statm_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft).unwrap_or(1024).saturating_sub(256).min(1 << 16)
}

/// The shared sampler (see the module documentation).
pub struct Session {
    sampler: Sampler,
    target: Target,
    options: SampleOptions,
    cadence: Option<Cadence>,
    /// memtree's own pid, left out of every snapshot (`None` on a captured /proc).
    self_pid: Option<u32>,
    /// Per-mapping smaps for every process, or for one (the dashboard's views ask).
    all_mappings: bool,
    focus: Option<u32>,
    rounds: u64,
    cache: PidMap<Cached>,
    last_exact: Option<(Instant, Accounting)>,
    last_exact_cost: Duration,
    /// When the last costly pass ended, and memtree's CPU time then: what the rest of the
    /// session has taken since ([`Cadence::exact_share`]).
    since_exact: Option<(Instant, Duration)>,
    /// Whether any process moved (or came or went) since the last exact pass: a pass taken
    /// while the tree was still changing is refreshed once its spacing allows, even if the
    /// round that allows it saw nothing move.
    changed_since_exact: bool,
    progress: Option<ProgressFn>,
    membership: Membership,
    /// The last paced round's accounting, handed on again while nothing changes.
    last_accounting: Option<Arc<Accounting>>,
    /// The last paced discovery found other processes than the round before.
    membership_changed: bool,
    /// Group the processes by name instead of by tree.
    by_name: bool,
    /// Forked workers that shared anonymous memory with their parent at the last exact pass:
    /// their change detection reads `stat`'s fault counts, which a copy-on-write moves (statm,
    /// cheaper, does not).
    fault_watched: HashSet<u32>,
}

impl Session {
    /// A session over `target` that reads what `options` asks for at every round. Exact passes
    /// are asked for only where they can be had: otherwise every exact figure is absent with
    /// the reason ([`Session::exact_refusal`]).
    pub fn new(sampler: Sampler, target: Target, options: SampleOptions) -> Session {
        let self_pid = (!sampler.is_captured()).then(std::process::id);
        Session {
            sampler,
            target,
            all_mappings: options.mappings,
            options,
            cadence: None,
            self_pid,
            focus: None,
            rounds: 0,
            cache: PidMap::default(),
            last_exact: None,
            last_exact_cost: Duration::ZERO,
            since_exact: None,
            changed_since_exact: false,
            fault_watched: HashSet::new(),
            progress: None,
            membership: Membership::default(),
            last_accounting: None,
            membership_changed: true,
            by_name: false,
        }
    }

    /// Reads on `cadence` instead of everything at every round.
    pub fn with_cadence(mut self, cadence: Cadence) -> Session {
        self.cadence = Some(cadence);
        self
    }

    /// Groups the target's processes by name ([`Grouping::Names`]) instead of into trees.
    pub fn grouped_by_name(mut self) -> Session {
        self.by_name = true;
        self
    }

    /// Sends progress of long passes to `progress`.
    pub fn on_progress(mut self, progress: ProgressFn) -> Session {
        self.progress = Some(progress);
        self
    }

    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn options(&self) -> SampleOptions {
        self.options
    }

    pub fn privileged(&self) -> bool {
        self.sampler.privileged()
    }

    /// Why exact figures cannot be read here, if they cannot (no privilege, a captured /proc).
    pub fn exact_refusal(&self) -> Option<Unreadable> {
        self.sampler.exact_refusal(self.privileged())
    }

    /// Asks for the per-mapping smaps of every process (`all`) and of `focus` from the next
    /// round on.
    pub fn set_mappings(&mut self, all: bool, focus: Option<u32>) {
        self.all_mappings = all || self.options.mappings;
        self.focus = focus;
    }

    /// The processes of the target now (parents before children, memtree left out), and
    /// whether the target is gone. At the first round a root pid that does not exist is an
    /// error naming it.
    pub fn discover(&self) -> Result<(Vec<StatInfo>, bool), ReadError> {
        let mut found = match &self.target {
            Target::Machine => self.sampler.scan()?,
            Target::Pids(pids) if self.rounds == 0 => self.sampler.descendants(pids)?,
            Target::Pids(pids) => {
                let alive: Vec<u32> =
                    pids.iter().copied().filter(|p| self.sampler.stat(*p).is_ok()).collect();
                if alive.is_empty() {
                    return Ok((Vec::new(), true));
                }
                self.sampler.descendants(&alive).unwrap_or_default()
            }
            Target::Children => {
                let me = self.self_pid.unwrap_or_else(std::process::id);
                self.sampler.descendants(&[me]).unwrap_or_default()
            }
        };
        if let Some(me) = self.self_pid {
            found.retain(|p| p.pid != me);
        }
        let gone = match &self.target {
            Target::Children => {
                let me = self.self_pid.unwrap_or_else(std::process::id);
                !found.iter().any(|p| p.ppid == me)
            }
            _ => false,
        };
        Ok((found, gone))
    }

    /// How the processes of `snapshot` group into the target's trees.
    pub fn grouping(&self, snapshot: &Snapshot) -> Grouping {
        if self.by_name {
            return Grouping::Names;
        }
        let present: HashSet<u32> = snapshot.processes.iter().map(|p| p.pid).collect();
        match &self.target {
            Target::Machine => Grouping::Machine,
            Target::Pids(pids) => {
                let alive: Vec<u32> =
                    pids.iter().copied().filter(|p| present.contains(p)).collect();
                Grouping::Roots(if alive.is_empty() { pids.clone() } else { alive })
            }
            Target::Children => {
                // CMD (or each workload), and any orphan of its tree re-parented to memtree.
                let me = self.self_pid.unwrap_or_else(std::process::id);
                Grouping::Roots(
                    snapshot.processes.iter().filter(|p| p.ppid == me).map(|p| p.pid).collect(),
                )
            }
        }
    }

    /// One snapshot of the target with every pass asked for, read now (no cadence, no cache).
    pub fn sample(&mut self) -> Result<Sample, ReadError> {
        // The roots of a --pid target are read (rollup and pages) while their trees are
        // walked, and the rest as soon as the walk has found them, on whichever core is free:
        // a lone large process is read in the time of its rollup, and a large root does not
        // hold up its workers.
        let roots: Vec<StatInfo> = match &self.target {
            Target::Pids(pids) if pids.len() <= 4 => {
                pids.iter().filter_map(|&p| self.sampler.stat(p).ok()).collect()
            }
            _ => Vec::new(),
        };
        let early_pids: HashSet<u32> = roots.iter().map(|r| r.pid).collect();
        let reading = self.reading(self.options);
        let discover: More<StatInfo, _> = Box::new(|| match self.discover() {
            Ok((processes, target_gone)) => {
                let rest =
                    processes.iter().filter(|i| !early_pids.contains(&i.pid)).cloned().collect();
                (rest, Ok((processes, target_gone)))
            }
            Err(e) => (Vec::new(), Err(e)),
        });
        let (read, discovered) =
            two_stage(roots, Some(discover), &|info| self.read_first(&reading, &info), &|p| {
                self.read_second(&reading, p)
            });
        let discovered: Result<_, ReadError> = discovered.expect("discovery runs in the pass");
        self.rounds += 1;
        let (processes, target_gone) = discovered?;
        // In the walk's order (parents before children), each process once.
        let mut read: HashMap<u32, Read> = read.into_iter().map(|r| (r.0.pid, r)).collect();
        let kept: Vec<Read> = processes.iter().filter_map(|info| read.remove(&info.pid)).collect();
        // A root read early that the walk no longer found (it exited in between) leaves the
        // snapshot, but the frames it was the first to claim were counted only there: its
        // claims stay, or its workers' shared frames would read as mapped 0 times.
        let strays = read.into_values().filter_map(|(_, claimed)| claimed?.ok()).collect();
        let snapshot = self.assemble(reading, kept, strays);
        let grouping = self.grouping(&snapshot);
        Ok(Sample { snapshot, grouping, target_gone })
    }

    /// One round, accounted: without a cadence, everything read now; with one, unchanged
    /// processes reused and the costly passes on their own schedule.
    pub fn round(&mut self) -> Result<Round, ReadError> {
        let at = Instant::now();
        if self.cadence.is_none() {
            let sample = self.sample()?;
            let accounting = account(&sample.snapshot, &sample.grouping);
            let target_gone = sample.target_gone;
            let read = sample.snapshot.processes.len();
            // Its pages are megabytes given back page by page: not while the report waits.
            rayon::spawn(move || drop(sample));
            let exact = self.options.exact || self.options.dedup;
            return Ok(Round {
                accounting: Arc::new(accounting),
                at,
                exact_at: exact.then_some(at),
                exact_fresh: exact,
                read,
                reused: 0,
                cost: at.elapsed(),
                target_gone,
            });
        }
        self.paced_round(at)
    }

    /// Reads the processes of `infos` — found by an earlier [`Session::discover`] or
    /// [`Sampler::descendants`] — with every pass asked for, now.
    pub fn read(&self, infos: &[StatInfo]) -> Snapshot {
        self.read_all_with(infos, self.options)
    }

    /// Reads every process of `infos` (in parallel on the available cores) into a snapshot.
    fn read_all_with(&self, infos: &[StatInfo], options: SampleOptions) -> Snapshot {
        let reading = self.reading(options);
        let (read, _) = two_stage::<_, _, _, ()>(
            infos.iter().collect(),
            None,
            &|info| self.read_first(&reading, info),
            &|p| self.read_second(&reading, p),
        );
        // In the order of `infos`.
        let mut read: HashMap<u32, Read> = read.into_iter().map(|r| (r.0.pid, r)).collect();
        let read = infos.iter().filter_map(|info| read.remove(&info.pid)).collect();
        self.assemble(reading, read, Vec::new())
    }

    /// What a pass reads with `options`: each process's pages right after its rollup, in the
    /// same parallel pass, and its frames claimed and counted there too (`FrameClaims`).
    fn reading(&self, options: SampleOptions) -> Reading {
        let exact = options.exact || options.dedup;
        let pages_inline = exact && self.exact_refusal().is_none();
        let claims = pages_inline.then(|| self.sampler.frame_claims(self.privileged())).flatten();
        Reading { options, pages_inline, claims, page_size: page_size() }
    }

    /// The first stage of one process of a pass: its rollup (and mappings where asked); what is
    /// left when the pass reads pages is their stage (see [`two_stage`]).
    fn read_first(&self, reading: &Reading, info: &StatInfo) -> Step<Read, ProcessSample> {
        let wants = self.all_mappings || self.focus == Some(info.pid);
        let options = SampleOptions { mappings: wants, ..reading.options };
        let mut p = self.sampler.sample_one(info, options);
        if !reading.pages_inline {
            return Step::Done((p, None));
        }
        if info.is_kernel_thread() {
            // No address space, so no pages, for the reason it has no rollup: settled here,
            // so that the pass has nothing left unread and its claims make the frame table.
            if let Err(reason) = &p.rollup {
                p.pages = Some(Err(reason.clone()));
            }
            return Step::Done((p, None));
        }
        Step::Then(p)
    }

    /// The second stage of one process of a pass that reads pages: its pages, read as its
    /// rollup says is best (huge pages, a sparse address space), and its frames' claims.
    fn read_second(&self, reading: &Reading, mut p: ProcessSample) -> Read {
        p.pages = Some(match &p.rollup {
            Ok(fields) => {
                self.sampler.read_pages(p.pid, reading.page_size, PagesHint::from_rollup(fields))
            }
            Err(reason) => Err(reason.clone()),
        });
        let claimed = match (&reading.claims, &p.pages) {
            (Some(claims), Some(Ok(pages))) => Some(claims.claim(pages)),
            _ => None,
        };
        (p, claimed)
    }

    /// The snapshot of a pass's processes, with the frame table their claims make and the
    /// costly passes that need every process read.
    /// `strays`: the claims of processes read but not kept (see [`Session::sample`]).
    fn assemble(&self, reading: Reading, read: Vec<Read>, strays: Vec<Claimed>) -> Snapshot {
        let options = reading.options;
        let (processes, claimed): (Vec<ProcessSample>, Vec<_>) = read.into_iter().unzip();
        let mut snapshot = self.snapshot_of(processes);
        // The claims hold only while no huge page must be split (one that another process maps
        // page by page): else the frame table is made again from the pages.
        let good: Vec<&Claimed> =
            claimed.iter().flatten().filter_map(|c| c.as_ref().ok()).chain(&strays).collect();
        if let Some(claims) = reading.claims.filter(|claims| claims.hold(&good)) {
            let mut counted = strays;
            let mut refused = None;
            for c in claimed.into_iter().flatten() {
                match c {
                    Ok(c) => counted.push(c),
                    Err(reason) => refused = Some(reason),
                }
            }
            snapshot.pfn_table = Some(match refused {
                Some(reason) => Err(reason),
                None => Ok(claims.into_table(&counted)),
            });
        }
        self.costly_passes(&mut snapshot, options);
        snapshot
    }

    fn snapshot_of(&self, processes: Vec<ProcessSample>) -> Snapshot {
        // A capture was taken when it was captured, not when it is read back.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Snapshot {
            taken_at_unix: self.sampler.captured_at().unwrap_or(now),
            privileged: self.privileged(),
            processes,
            pfn_table: None,
            page_size: page_size(),
        }
    }

    /// The exact pass (pages of every process not read yet, kpagecount) and the content pass.
    fn costly_passes(&self, snapshot: &mut Snapshot, options: SampleOptions) {
        if options.exact || options.dedup {
            self.sampler.sample_exact(snapshot, options.dedup);
        }
        if options.dedup {
            let progress = self.progress.as_deref();
            if self.exact_refusal().is_none() {
                self.sampler.sample_content(snapshot, progress);
            } else if !self.sampler.is_captured() {
                // Without root: the pages each process alone maps, for those memtree may read.
                self.sampler.sample_content_exclusive(snapshot, progress);
            } else {
                self.sampler.sample_content(snapshot, progress);
            }
        }
    }

    /// The target's processes for a paced round: found again only when the pids /proc lists
    /// changed (a fork or an exit) or a held file failed, else the last ones.
    fn paced_discover(&mut self) -> Result<(Vec<StatInfo>, bool), ReadError> {
        let mut listed = self.sampler.all_pids()?;
        listed.sort_unstable();
        let m = &self.membership;
        if self.rounds > 0 && !m.stale && m.listed == listed {
            self.rounds += 1;
            self.membership_changed = false;
            return Ok((m.processes.clone(), m.gone));
        }
        self.membership_changed = true;
        // The first round (and a stale membership) walks the target as `discover` does; later
        // ones update a stat of every process incrementally.
        let first = self.rounds == 0 || self.membership.stale || self.membership.known.is_empty();
        let result =
            if first { self.full_membership(&listed) } else { self.update_membership(&listed) };
        self.rounds += 1;
        let (processes, gone) = result?;
        self.membership.listed = listed;
        self.membership.processes = processes.clone();
        self.membership.gone = gone;
        self.membership.stale = false;
        Ok((processes, gone))
    }

    /// Every process's stat read (in parallel), and the target found in them; at the first
    /// round a missing root is an error, as with `discover`.
    fn full_membership(&mut self, listed: &[u32]) -> Result<(Vec<StatInfo>, bool), ReadError> {
        if self.rounds == 0
            && let Target::Pids(pids) = &self.target
        {
            for &pid in pids {
                self.sampler.stat(pid)?;
            }
        }
        let sampler = &self.sampler;
        let read: Vec<(u32, StatInfo)> = listed
            .par_iter()
            .filter_map(|&pid| sampler.stat(pid).ok().map(|info| (pid, info)))
            .collect();
        let known: PidMap<StatInfo> = read.into_iter().collect();
        self.membership.known = known;
        Ok(self.select_target())
    }

    /// The stats updated for what changed since the last round: new pids read, exited ones
    /// dropped, and the children of exited ones read again (re-parented, their parent is
    /// another now). Nothing else can change a process's parent.
    fn update_membership(&mut self, listed: &[u32]) -> Result<(Vec<StatInfo>, bool), ReadError> {
        let now: HashSet<u32> = listed.iter().copied().collect();
        let known = &mut self.membership.known;
        let exited: HashSet<u32> = known.keys().copied().filter(|p| !now.contains(p)).collect();
        known.retain(|pid, _| !exited.contains(pid));
        let mut again: Vec<u32> = known
            .values()
            .filter(|info| exited.contains(&info.ppid))
            .map(|info| info.pid)
            .collect();
        again.extend(listed.iter().copied().filter(|p| !known.contains_key(p)));
        let sampler = &self.sampler;
        let read: Vec<(u32, Option<StatInfo>)> =
            again.par_iter().map(|&pid| (pid, sampler.stat(pid).ok())).collect();
        for (pid, info) in read {
            match info {
                Some(info) => known.insert(pid, info),
                None => known.remove(&pid),
            };
        }
        Ok(self.select_target())
    }

    /// The target's processes among the known stats (parents before children), memtree left
    /// out, and whether the target is gone.
    fn select_target(&self) -> (Vec<StatInfo>, bool) {
        let known = &self.membership.known;
        let me = self.self_pid;
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for info in known.values() {
            children.entry(info.ppid).or_default().push(info.pid);
        }
        for list in children.values_mut() {
            list.sort_unstable();
        }
        let walk = |roots: &[u32]| -> Vec<StatInfo> {
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            let mut queue: std::collections::VecDeque<u32> = roots.iter().copied().collect();
            while let Some(pid) = queue.pop_front() {
                if !seen.insert(pid) {
                    continue;
                }
                if let Some(info) = known.get(&pid) {
                    out.push(info.clone());
                    queue.extend(children.get(&pid).into_iter().flatten());
                }
            }
            out
        };
        let (mut found, gone) = match &self.target {
            Target::Machine => {
                let mut all: Vec<StatInfo> = known.values().cloned().collect();
                all.sort_unstable_by_key(|info| info.pid);
                (all, false)
            }
            Target::Pids(pids) => {
                let alive: Vec<u32> =
                    pids.iter().copied().filter(|p| known.contains_key(p)).collect();
                let gone = alive.is_empty();
                (walk(&alive), gone)
            }
            Target::Children => {
                let me = me.unwrap_or_else(std::process::id);
                let roots = children.get(&me).cloned().unwrap_or_default();
                (walk(&roots), roots.is_empty())
            }
        };
        if let Some(me) = me {
            found.retain(|p| p.pid != me);
        }
        (found, gone)
    }

    /// `statm` of `pid`, through the file held open for it (opened now, while under `budget`
    /// files are held); empty when it cannot be read, which marks the membership stale.
    fn statm(&mut self, pid: u32, budget: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let faults = self.fault_watched.contains(&pid);
        let name = if faults { "stat" } else { "statm" };
        let m = &mut self.membership;
        if m.statm.get(&pid).is_some_and(|(_, f)| *f != faults) {
            m.statm.remove(&pid);
        }
        if !m.statm.contains_key(&pid) && m.statm.len() < budget && !self.sampler.is_captured() {
            let path = self.sampler.root().join(pid.to_string()).join(name);
            if let Ok(file) = std::fs::File::open(path) {
                m.statm.insert(pid, (file, faults));
            }
        }
        let fingerprint = |bytes: &[u8]| {
            if faults { memory_fingerprint(bytes) } else { bytes.to_vec() }
        };
        let Some((file, _)) = m.statm.get(&pid) else {
            return fingerprint(&self.sampler.read(pid, name).unwrap_or_default());
        };
        let mut buf = [0u8; 1024];
        match file.read_at(&mut buf, 0) {
            Ok(n) => fingerprint(&buf[..n]),
            Err(_) => {
                m.statm.remove(&pid);
                m.stale = true;
                Vec::new()
            }
        }
    }

    fn paced_round(&mut self, at: Instant) -> Result<Round, ReadError> {
        let cadence = self.cadence.expect("a paced session has a cadence");
        let (processes, target_gone) = self.paced_discover()?;
        let mut changed = false;
        let mut fresh: Vec<usize> = Vec::new();
        // The statm read this round, for the processes read (a quiet one keeps its cached one).
        let mut statms: Vec<Option<Vec<u8>>> = Vec::with_capacity(processes.len());
        let budget = statm_budget();
        let round = self.rounds;
        for (index, info) in processes.iter().enumerate() {
            // A process whose memory has not moved for a minute is looked at every 4th round
            // (staggered by pid): on a whole machine most are, and their statm reads would be
            // most of the dashboard's cost.
            if let Some(c) = self.cache.get(&info.pid)
                && c.sample.is_some()
                && at.duration_since(c.moved_at) > QUIET
                && at.duration_since(c.read_at) < cadence.full_every
                && !(round + u64::from(info.pid)).is_multiple_of(QUIET_STRIDE)
                && (!self.all_mappings && self.focus != Some(info.pid)
                    || c.sample.as_ref().is_some_and(|s| s.mappings.is_some()))
            {
                statms.push(None);
                continue;
            }
            let statm = self.statm(info.pid, budget);
            let want_maps = self.all_mappings || self.focus == Some(info.pid);
            // A process that is new or whose statm moved has changed; a periodic full re-read
            // alone does not count (it must not drag the exact refresh along).
            let cached = self.cache.get(&info.pid);
            changed |= cached.is_none_or(|c| c.statm != statm);
            let reusable = cached.is_some_and(|c| {
                let Some(sample) = &c.sample else { return false };
                let maps_ok = !want_maps || sample.mappings.is_some();
                maps_ok && cadence.reuse(c.statm == statm, at.duration_since(c.read_at), c.cost)
            });
            if !reusable {
                fresh.push(index);
            }
            if let Some(c) = self.cache.get_mut(&info.pid)
                && c.statm != statm
            {
                c.moved_at = at;
            }
            statms.push(Some(statm));
        }
        if self.cache.len() != processes.len() || self.membership_changed {
            let alive: HashSet<u32> = processes.iter().map(|p| p.pid).collect();
            let before = self.cache.len();
            self.cache.retain(|pid, _| alive.contains(pid));
            self.membership.statm.retain(|pid, _| alive.contains(pid));
            changed |= self.cache.len() != before;
        }
        self.changed_since_exact |= changed;
        let moved = self.changed_since_exact;
        // What the rest of the session took of a core since the last pass (read only when a
        // pass could be due).
        let rest = || {
            self.since_exact.map_or(0.0, |(when, cpu)| {
                let wall = at.duration_since(when).as_secs_f64();
                if wall < 1.0 { 0.0 } else { cpu_time().saturating_sub(cpu).as_secs_f64() / wall }
            })
        };
        let exact_due = (self.options.exact || self.options.dedup)
            && self.last_exact.as_ref().is_none_or(|(when, _)| {
                let age = at.duration_since(*when);
                let share = cadence.exact_share(rest());
                let spacing = cadence.exact_every.max(self.last_exact_cost.div_f64(share));
                // The budget holds even for the periodic refresh (a 200 GB process is not
                // walked every five minutes if a walk takes 4 s).
                age >= spacing && (moved || age >= cadence.exact_full_every)
            });
        let (read, reused) = (fresh.len(), processes.len() - fresh.len());
        // Nothing moved: the last round's accounting again, nothing read, copied or rebuilt.
        if fresh.is_empty()
            && !changed
            && !exact_due
            && let Some(last) = &self.last_accounting
        {
            return Ok(Round {
                accounting: last.clone(),
                at,
                exact_at: self.last_exact.as_ref().map(|(when, _)| *when),
                exact_fresh: false,
                read,
                reused,
                cost: at.elapsed(),
                target_gone,
            });
        }
        let options = |pid: u32| SampleOptions {
            mappings: self.all_mappings || self.focus == Some(pid),
            ..SampleOptions::default()
        };
        let sampler = &self.sampler;
        // A changed process may have exec'd: its name and parent are read again with it.
        let new: Vec<(ProcessSample, Duration)> = fresh
            .par_iter()
            .map(|&index| {
                let info = &processes[index];
                let started = Instant::now();
                let info = sampler.stat(info.pid).unwrap_or_else(|_| info.clone());
                let sample = sampler.sample_one(&info, options(info.pid));
                (sample, started.elapsed())
            })
            .collect();
        let mut new = new.into_iter().zip(fresh).peekable();
        // The snapshot borrows the cached samples (moved out and back, never copied: a process
        // with 60,000 mappings is tens of MB of them).
        let mut samples = Vec::with_capacity(processes.len());
        for (index, (info, statm)) in processes.iter().zip(statms).enumerate() {
            if new.peek().is_some_and(|(_, i)| *i == index) {
                let ((sample, cost), _) = new.next().expect("peeked");
                let moved_at = self.cache.get(&info.pid).map_or(at, |c| c.moved_at);
                // A process read this round had its statm read (only quiet ones skip it).
                let statm = statm.unwrap_or_default();
                let cached = Cached { statm, sample: None, read_at: at, cost, moved_at };
                self.cache.insert(info.pid, cached);
                samples.push(sample);
            } else if let Some(sample) = self.cache.get_mut(&info.pid).and_then(|c| c.sample.take())
            {
                samples.push(sample);
            }
        }
        let mut snapshot = self.snapshot_of(samples);
        if exact_due {
            // Its cost in CPU time (the pass runs on every core): the budget is a share of one.
            let started = cpu_time();
            self.costly_passes(&mut snapshot, self.options);
            let ended = cpu_time();
            self.last_exact_cost = ended.saturating_sub(started);
            self.since_exact = Some((Instant::now(), ended));
        }
        let grouping = self.grouping(&snapshot);
        let mut accounting = account(&snapshot, &grouping);
        if exact_due {
            self.changed_since_exact = false;
            self.fault_watched = accounting
                .processes()
                .filter(|p| matches!(&p.erosion, Some(Ok(e)) if e.shared_anon > 0))
                .map(|p| p.pid)
                .collect();
            self.last_exact = Some((at, accounting.without_mappings()));
        } else if let Some((_, exact)) = &self.last_exact {
            accounting.carry_exact_from(exact, cadence.keep_moved_exact);
        }
        // The samples go back to the cache, without the pages and contents of this round.
        for mut sample in snapshot.processes {
            sample.pages = None;
            sample.unframed = None;
            sample.content = None;
            if let Some(c) = self.cache.get_mut(&sample.pid) {
                c.sample = Some(sample);
            }
        }
        let accounting = Arc::new(accounting);
        self.last_accounting = Some(accounting.clone());
        // Mappings read again free as many as they take, in other threads' malloc arenas:
        // given back to the system, or memtree's resident size creeps up with every re-read.
        if read > 0 && self.all_mappings {
            release_free_memory();
        }
        Ok(Round {
            accounting,
            at,
            exact_at: self.last_exact.as_ref().map(|(when, _)| *when),
            exact_fresh: exact_due,
            read,
            reused,
            cost: at.elapsed(),
            target_gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_costly_passes_get_what_the_rest_of_the_session_leaves() {
        let cadence = Cadence::every(Duration::from_secs(1));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // A tree: the rest takes 0.3 % of a core, the passes keep their 1 %.
        assert!(close(cadence.exact_share(0.003), 0.01));
        // A whole machine whose rounds take 1.4 %: 1.8 % − 1.4 % is left.
        assert!(close(cadence.exact_share(0.014), 1.0 / 55.0 - 0.014));
        // Rounds that take everything still leave the passes a quarter of their share.
        assert!(close(cadence.exact_share(0.05), 0.0025));
    }

    #[test]
    fn a_changed_process_waits_for_its_walk_budget() {
        let cadence = Cadence::every(Duration::from_secs(1));
        let ms = Duration::from_millis;
        // A 1 GiB process (a 15 ms walk) that changes every second: read again after 0.75 s.
        assert!(cadence.reuse(false, ms(500), ms(15)));
        assert!(!cadence.reuse(false, ms(800), ms(15)));
        // A 33 GiB one (500 ms): its figures are kept for 25 s, however much it changes.
        assert!(cadence.reuse(false, ms(20_000), ms(500)));
        assert!(!cadence.reuse(false, ms(26_000), ms(500)));
        // Unchanged: kept until the periodic full re-read.
        assert!(cadence.reuse(true, ms(59_000), ms(1)));
        assert!(!cadence.reuse(true, ms(61_000), ms(1)));
    }

    #[test]
    fn the_fingerprint_moves_with_faults_and_size_not_with_cpu_time() {
        let stat = |utime: u32, minflt: u32| {
            format!(
                "42 (a ) b) S 1 42 42 0 -1 4194560 {minflt} 0 3 0 {utime} 7 0 0 20 0 1 0 100 \
                 8192000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
            )
        };
        let fp = |s: String| memory_fingerprint(s.as_bytes());
        assert_eq!(fp(stat(1, 10)), fp(stat(99, 10)), "CPU time is not memory");
        assert_ne!(fp(stat(1, 10)), fp(stat(1, 11)), "a copy-on-write fault is");
        assert_eq!(fp(stat(1, 10)), b"10 3 8192000 500 ");
        assert_eq!(memory_fingerprint(b"garbage"), b"garbage");
    }
}
